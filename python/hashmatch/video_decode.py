"""One decode of a video feeding every hash at once: planned and parallel where the stream allows.

A *sink* is one hash being computed (vPDQ, TMK). It says which frames it needs, makes a
*part* per stretch of the stream, and merges the parts' results in stream order. With a
plan (see video_plan), the stretches are segments between clean keyframes, decoded on
`threads` worker threads, each with its own demuxer and decoder; packets whose frames no
sink needs are sent with skip_frame=NONREF, so the decoder drops them unless later frames
refer to them. Every frame the decoder outputs is checked against the plan; any
disagreement, or any decode error, drops the plan and decodes the whole stream again in one
sequential pass that numbers frames by counting them, so hashes never depend on the plan.
"""

from __future__ import annotations

import queue
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Iterator, List, Optional, Protocol, Tuple

import numpy as np

from .errors import ResourceLimitError
from .video_plan import Segment, StreamPlan, plan_stream


class FramePart(Protocol):
    """One sink's work on one stretch of the stream."""

    def push(self, n: int, t: float, frame: object) -> None:
        """Take output frame n (t seconds from the stream's start)."""

    def finish(self) -> object:
        """The stretch's result, for the sink to merge."""


class FrameSink(Protocol):
    """One hash computed from the decoded frames."""

    def wanted(self, plan: StreamPlan) -> np.ndarray:
        """Which of the plan's frames this hash needs (bool per output frame)."""

    def part(self, planned: bool) -> FramePart:
        """A new part; planned=False when it will see every frame of the stream, in order."""

    def add(self, result: object) -> None:
        """Merge one part's result; parts arrive in stream order."""

    def reset(self) -> None:
        """Forget every result merged so far (the planned decode is being redone sequentially)."""


class _PlanMismatch(Exception):
    """The decoder did not do what the plan predicted: decode sequentially instead."""


def frame_time(frame: "object", n: int, start: float, fps: float) -> float:
    """Seconds from the stream's start to frame n: from its timestamp, else from its number."""
    if frame.pts is not None and frame.time is not None:
        return max(0.0, float(frame.time) - start)
    return n / fps if fps else 0.0


def decode_into(open_video: Callable[[], "object"], video: "object", sinks: Dict[str, FrameSink],
                threads: int, reopenable: bool) -> None:
    """Decode `video` (an open _Video) once into every sink: planned and parallel if possible."""
    plan = None
    if reopenable:
        import av

        try:
            with open_video() as probe:
                max_pts = int(probe.max_duration / probe.stream.time_base) + 1 if probe.stream.time_base else None
                plan = plan_stream(probe.container, probe.stream, max_pts=max_pts)
        except av.error.FFmpegError:
            plan = None  # the sequential pass reports what is wrong with the file
    if plan is not None:
        try:
            _decode_planned(open_video, plan, sinks, max(1, threads))
            return
        except _PlanMismatch:
            for sink in sinks.values():
                sink.reset()
    parts = {name: sink.part(planned=False) for name, sink in sinks.items()}
    for n, t, frame in video.frames():
        for part in parts.values():
            part.push(n, t, frame)
    for name, part in parts.items():
        sinks[name].add(part.finish())


def _decode_planned(open_video: Callable[[], "object"], plan: StreamPlan, sinks: Dict[str, FrameSink],
                    threads: int) -> None:
    wanted = {name: sink.wanted(plan) for name, sink in sinks.items()}
    needed = np.logical_or.reduce(list(wanted.values())) if plan.can_skip else None
    workers = min(threads, len(plan.segments))
    readers: "queue.SimpleQueue" = queue.SimpleQueue()
    opened: List[object] = []

    def run(segment: Segment) -> Dict[str, object]:
        try:
            reader = readers.get_nowait()
        except queue.Empty:
            reader = open_video()
            opened.append(reader)
            # Parallel segments keep every core busy; a lone segment gets FFmpeg's own threads.
            reader.stream.thread_type = "AUTO" if workers == 1 else "SLICE"
            reader.stream.thread_count = threads if workers == 1 else 1
        try:
            return _decode_segment(reader, plan, segment, sinks, wanted, needed)
        finally:
            readers.put(reader)

    pending: deque = deque()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            segments = iter(plan.segments)
            try:
                # A bounded window of segments in flight: results merge in order, memory stays flat.
                for segment in segments:
                    pending.append(pool.submit(run, segment))
                    if len(pending) >= 2 * workers:
                        break
                while pending:
                    results = pending.popleft().result()
                    for name, result in results.items():
                        sinks[name].add(result)
                    for segment in segments:
                        pending.append(pool.submit(run, segment))
                        break
            finally:
                for future in pending:
                    future.cancel()
    finally:
        for reader in opened:
            reader.close()


def _decode_segment(reader: "object", plan: StreamPlan, segment: Segment, sinks: Dict[str, FrameSink],
                    wanted: Dict[str, np.ndarray], needed: Optional[np.ndarray]) -> Dict[str, object]:
    import av

    a, b = segment.first_packet, segment.end_packet
    ctx = reader.stream.codec_context
    parts = {name: sink.part(planned=True) for name, sink in sinks.items()}
    check = _OutputCheck(plan, segment, needed)
    try:
        packet, packets = _start_of(reader, plan, a)
        # Plain lists: read once per packet, where numpy scalars cost microseconds each.
        packet_pts, packet_frame = plan.packet_pts[a:b].tolist(), plan.packet_frame[a:b].tolist()
        skipping = None
        for i in range(b - a):
            if i:
                packet = next(packets, None)
                if packet is None or packet.pts != packet_pts[i]:
                    raise _PlanMismatch
            if needed is not None:
                n = packet_frame[i]
                skip = n < 0 or not needed[n]
                if skip is not skipping:
                    ctx.skip_frame = "NONREF" if skip else "DEFAULT"
                    skipping = skip
            for frame in packet.decode():
                _deliver(reader, check, frame, parts, wanted)
        drain = av.Packet()  # an empty packet drains the decoder; its time base times the frames
        drain.time_base = reader.stream.time_base
        for frame in ctx.decode(drain):
            _deliver(reader, check, frame, parts, wanted)
    except av.error.FFmpegError as e:
        raise _PlanMismatch from e  # the sequential pass reports it, exactly as it would without a plan
    check.done()
    return {name: part.finish() for name, part in parts.items()}


def _start_of(reader: "object", plan: StreamPlan, a: int) -> Tuple["object", Iterator["object"]]:
    """Position the reader's demuxer at packet a: (that packet, an iterator over the ones after it)."""
    stream, container = reader.stream, reader.container
    pts, dts = int(plan.packet_pts[a]), int(plan.packet_dts[a])
    # Demuxers index keyframes by pts (MP4, Matroska) or dts: try pts first, which lands on the
    # keyframe itself in the common case, then the lower of the two.
    for target in ((None,) if not reader.used else (pts, min(pts, dts))):
        if target is not None:
            container.seek(target, stream=stream, backward=True, any_frame=False)
            stream.codec_context.flush_buffers()
        reader.used = True
        packets = (p for p in container.demux(stream) if p.size)
        for packet in packets:  # after a seek, demuxing may restart a little before the segment
            if packet.pts == pts and packet.dts == dts:
                return packet, packets
            if packet.dts is not None and packet.dts > dts:
                break  # past it: seek lower
    raise _PlanMismatch


def _deliver(reader: "object", check: "_OutputCheck", frame: "object", parts: Dict[str, FramePart],
             wanted: Dict[str, np.ndarray]) -> None:
    n = check.frame(frame)
    if frame.width * frame.height > reader.max_frame_pixels:
        raise ResourceLimitError(f"{reader.name}: frame {n} is {frame.width}x{frame.height}, over "
                                 f"max_frame_pixels={reader.max_frame_pixels:,}")
    t = frame_time(frame, n, reader.start, reader.fps)
    for name, part in parts.items():
        if wanted[name][n]:
            part.push(n, t, frame)


class _OutputCheck:
    """Checks a segment's output frames against the plan: right timestamps, order and durations."""

    def __init__(self, plan: StreamPlan, segment: Segment, needed: Optional[np.ndarray]) -> None:
        a, b = segment.first_frame, segment.end_frame
        self.first, self.end = a, b
        # Plain lists: these are read once per frame, where numpy scalars cost microseconds each.
        self.pts = plan.frame_pts[a:b].tolist()
        self.durations = plan.frame_durations[a:b].tolist()
        self.needed = needed[a:b].tolist() if needed is not None else None
        self.expect = 0  # within the segment

    def frame(self, frame: "object") -> int:
        """The output index of a decoded frame; _PlanMismatch unless it is the plan's next."""
        pts, k = frame.pts, self.expect
        if pts is None:
            raise _PlanMismatch
        while k < len(self.pts) and self.pts[k] < pts:
            k += 1
        if k == len(self.pts) or self.pts[k] != pts:
            raise _PlanMismatch
        self._skipped_up_to(k)
        # The plan's durations place TMK's frames in their 15-fps slots: they must be the decoder's.
        if (frame.duration or 0) != self.durations[k]:
            raise _PlanMismatch
        self.expect = k + 1
        return self.first + k

    def done(self) -> None:
        """The segment ended: every frame not output must be one the decoder was allowed to skip."""
        self._skipped_up_to(len(self.pts))

    def _skipped_up_to(self, k: int) -> None:
        if k > self.expect and (self.needed is None or any(self.needed[self.expect:k])):
            raise _PlanMismatch
