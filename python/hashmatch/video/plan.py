"""A video's frame plan from one demux pass (no decoding): frame order, times, and clean cut points.

Decoding is most of the cost of hashing a video, and the hashes need only some frames:
vPDQ one a second, TMK about half. Knowing every frame before decoding lets the decoder
skip what no hash needs and lets independent stretches of the stream decode in parallel.

The demuxer gives each packet's presentation timestamp (pts). The frames a full decode
outputs are the packets' pts in increasing order, leaving out packets the container marks
as discarded (edit lists). A cut at a keyframe is clean when every packet before it in
decode order shows earlier and every packet from it on shows at or after it: a decoder
started there outputs exactly the frames from that point on. Streams where this cannot be
known (no or repeated timestamps, too many packets) get no plan and are decoded in one
sequential pass, which numbers frames by counting them.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from fractions import Fraction
from typing import List, Optional

import numpy as np

#: Demuxers that give one packet per frame, where skipping a packet skips exactly one frame.
ONE_FRAME_PER_PACKET = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm"})
#: Decoders whose skip_frame=NONREF drops exactly the non-reference frames, leaving others bit-identical.
SKIPS_NONREF = frozenset({"h264", "hevc"})
#: Frames per parallel segment, at least: seeking and restarting a decoder costs about a frame's work,
#: and smaller segments balance the decode threads better.
MIN_SEGMENT_FRAMES = 32
#: Above this many packets a plan's arrays and demux pass stop paying for themselves.
MAX_PLANNED_PACKETS = 4_000_000


@dataclass(frozen=True)
class Segment:
    """Packets [first_packet, end_packet) in decode order; they output frames [first_frame, end_frame)."""

    first_packet: int
    end_packet: int
    first_frame: int
    end_frame: int


@dataclass(frozen=True)
class StreamPlan:
    """Every frame of a video stream, in output order, and where its decode can be split."""

    time_base: Fraction
    frame_pts: np.ndarray  # int64, output order
    frame_durations: np.ndarray  # int64 in time_base units, 0 when unknown; output order
    packet_pts: np.ndarray  # int64, decode order
    packet_dts: np.ndarray  # int64, decode order (pts where the container gives none)
    packet_frame: np.ndarray  # int64: the output index of each packet's frame, -1 for discarded packets
    cuts: np.ndarray  # int64: every clean cut (packet index, 0 first), where a decoder may start afresh
    segments: List[Segment]
    can_skip: bool  # packets whose frames no hash needs may be dropped with skip_frame=NONREF

    @property
    def frame_count(self) -> int:
        """How many frames a full decode outputs."""
        return len(self.frame_pts)


def plan_stream(container, stream, *, max_pts: Optional[int] = None,
                max_packets: int = MAX_PLANNED_PACKETS) -> Optional[StreamPlan]:
    """Demux `stream` of an open container from its start and plan its decode; None if it cannot be planned.

    Stops reading early (returning None) past max_pts or max_packets, so an endless or
    absurd stream costs no more than the bound.
    """
    if stream.time_base is None:
        return None
    pts, dts, dur, key, discard = array("q"), array("q"), array("q"), array("b"), array("b")
    try:
        for packet in container.demux(stream):
            if not _keep(packet, pts, dts, dur, key, discard, max_pts, max_packets):
                return None
    except IndexError:  # PyAV's demuxer met a stream that appeared after the file was opened
        return None
    if not pts:
        return None
    return _plan(stream, np.frombuffer(pts, np.int64), np.frombuffer(dts, np.int64), np.frombuffer(dur, np.int64),
                 np.frombuffer(key, np.int8).astype(bool), np.frombuffer(discard, np.int8).astype(bool),
                 container.format.name)


def _keep(packet: "object", pts: array, dts: array, dur: array, key: array, discard: array,
          max_pts: Optional[int], max_packets: int) -> bool:
    """Record one demuxed packet; False when the stream cannot be planned (no pts, over a bound)."""
    if not packet.size:
        return True  # the demuxer's end-of-stream marker
    if packet.pts is None or len(pts) >= max_packets or (max_pts is not None and packet.pts > max_pts):
        return False
    pts.append(packet.pts)
    dts.append(packet.dts if packet.dts is not None else packet.pts)
    dur.append(packet.duration or 0)
    key.append(packet.is_keyframe)
    discard.append(packet.is_discard)
    return True


def _plan(stream, pts: np.ndarray, dts: np.ndarray, dur: np.ndarray, key: np.ndarray, discard: np.ndarray,
          container_format: str) -> Optional[StreamPlan]:
    shown = np.flatnonzero(~discard)
    order = shown[np.argsort(pts[shown], kind="stable")]
    frame_pts = pts[order]
    if len(frame_pts) == 0 or np.any(np.diff(frame_pts) == 0):
        return None  # repeated timestamps: output order is the decoder's to decide, not ours
    packet_frame = np.full(len(pts), -1, np.int64)
    packet_frame[order] = np.arange(len(order))
    cuts = _clean_cuts(pts, key & ~discard)
    segments = _segments(cuts, packet_frame, MIN_SEGMENT_FRAMES)
    can_skip = (stream.codec_context.name in SKIPS_NONREF
                and bool(ONE_FRAME_PER_PACKET.intersection(container_format.split(","))))
    return StreamPlan(Fraction(stream.time_base), frame_pts, dur[order], pts, dts, packet_frame, cuts, segments,
                      can_skip)


def _clean_cuts(pts: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Packet 0 and every keyframe that no packet crosses in presentation order."""
    before_max = np.maximum.accumulate(pts)  # before_max[k - 1]: latest pts before packet k
    from_min = np.minimum.accumulate(pts[::-1])[::-1]  # from_min[k]: earliest pts from packet k on
    clean = np.zeros(len(pts), bool)
    clean[0] = True
    clean[1:] = key[1:] & (before_max[:-1] < pts[1:]) & (from_min[1:] == pts[1:])
    return np.flatnonzero(clean).astype(np.int64)


def _segments(clean: np.ndarray, packet_frame: np.ndarray, min_frames: int) -> List[Segment]:
    """Group the runs between clean cuts into segments of at least min_frames packets."""
    n = len(packet_frame)
    cuts = [0]
    for k in clean[1:]:
        if k - cuts[-1] >= min_frames and n - k >= min_frames // 2:
            cuts.append(int(k))
    cuts.append(n)
    segments = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        frames = packet_frame[a:b]
        frames = frames[frames >= 0]
        if len(frames) == 0:
            return [Segment(0, n, 0, int(packet_frame.max()) + 1)]  # only discarded packets: do not split
        segments.append(Segment(a, b, int(frames.min()), int(frames.max()) + 1))
    # A clean cut makes each segment's frames a contiguous run of the output order.
    for s, t in zip(segments[:-1], segments[1:]):
        if s.end_frame != t.first_frame:
            return [Segment(0, n, 0, segments[-1].end_frame)]
    return segments
