"""``vpdq``: per-frame PDQ hashes of a video: the value type, its text formats, matching, its frame sink.

Two serialisations are read and written: the reference tool's text file (one
``frame_number,quality,hex,timestamp`` line per frame, timestamp to 3 decimals) and
python-threatexchange's compact signal string (a JSON list of ``"hex,quality,timestamp"``).
Matching follows the reference: unique frame hashes, quality filter, frame distance
threshold, and the percentages of query and compared frames that found a match.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from ..config import (ANIMATION_EVERY_FRAME_MAX, MAX_HASHED_FRAMES, VPDQ_COMPARED_MATCH_PERCENT, VPDQ_MAX_DISTANCE,
                      VPDQ_MIN_QUALITY, VPDQ_QUERY_MATCH_PERCENT)
from ..errors import HashFormatError, InvalidInputError, ResourceLimitError
from ..media import trim_pixels
from ..video.frames import rgb_pixels
from .base import Code, IndexSpec, Serialized, SignalType, Stored, register
from .pdq import DIHEDRAL_NAMES, PDQ, PDQ_HEX_CHARS

_BATCH = 32  # frames per native hashing call: enough to amortise the call, small in memory
_BATCH_PIXELS = 1 << 26  # ...and at most ~200 MB of RGB frames in one batch, whatever their size


@dataclass(frozen=True)
class VPDQFrame:
    """One hashed video frame: its number in decode order, PDQ quality and hex, time in seconds."""

    frame_number: int
    quality: int
    hex: str
    timestamp: float

    @property
    def pdq(self) -> PDQ:
        """The frame's hash as a PDQ value."""
        return PDQ.from_hex(self.hex, self.quality)


@dataclass(frozen=True)
class VPDQMatch:
    """How two vPDQ hashes overlap, in percent of each one's unique good-quality frames."""

    query_match_percent: float
    compared_match_percent: float

    def is_match(self, query_percent: float = VPDQ_QUERY_MATCH_PERCENT,
                 compared_percent: float = VPDQ_COMPARED_MATCH_PERCENT) -> bool:
        """The reference's decision: both percentages at or above their thresholds."""
        return self.query_match_percent >= query_percent and self.compared_match_percent >= compared_percent


def _check_frame(frame: VPDQFrame, where: str) -> VPDQFrame:
    h = frame.hex
    if len(h) != PDQ_HEX_CHARS or any(c not in "0123456789abcdef" for c in h):
        raise HashFormatError(f"{where}: hash must be {PDQ_HEX_CHARS} lower-case hex characters, got {h!r:.80}")
    if not 0 <= frame.quality <= 100:
        raise HashFormatError(f"{where}: quality must be in 0..100, got {frame.quality}")
    if frame.frame_number < 0:
        raise HashFormatError(f"{where}: frame number must be >= 0, got {frame.frame_number}")
    if not (math.isfinite(frame.timestamp) and frame.timestamp >= 0):
        raise HashFormatError(f"{where}: timestamp must be a finite number >= 0, got {frame.timestamp}")
    return frame


def dumps(frames: Iterable[VPDQFrame]) -> str:
    """The reference tool's text format: ``frame_number,quality,hex,timestamp`` lines."""
    return "".join(f"{f.frame_number},{f.quality},{f.hex},{f.timestamp:.3f}\n" for f in frames)


def loads(text: str, *, source: str = "<vpdq>") -> List[VPDQFrame]:
    """Parse the reference tool's text format; errors name the source, line and field."""
    frames = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        parts = line.strip().split(",")
        if len(parts) != 4:
            raise HashFormatError(f"{where}: expected frame_number,quality,hex,timestamp, got {line[:120]!r}")
        number, quality, hex_, timestamp = parts
        frame = VPDQFrame(_int(number, where, "frame_number"), _int(quality, where, "quality"),
                          hex_.lower(), _float(timestamp, where, "timestamp"))
        frames.append(_check_frame(frame, where))
    return frames


def to_signal(frames: Iterable[VPDQFrame]) -> str:
    """python-threatexchange's compact signal string: a JSON list of ``"hex,quality,timestamp"``."""
    # threatexchange formats the timestamp with 3 significant digits (``:.3``), and so do we,
    # so that our strings are byte-identical to its own.
    return json.dumps([f"{_check_frame(f, 'frame').hex},{f.quality},{f.timestamp:.3}" for f in frames])


def from_signal(text: str, *, source: str = "<vpdq signal>") -> List[VPDQFrame]:
    """Parse python-threatexchange's compact signal string (frame numbers are not kept there)."""
    try:
        items = json.loads(text or "[]")
    except json.JSONDecodeError as e:
        raise HashFormatError(f"{source}: not a JSON list of frames ({e})") from None
    except RecursionError:
        raise HashFormatError(f"{source}: not a JSON list of frames (nested too deeply)") from None
    if not isinstance(items, list):
        raise HashFormatError(f"{source}: expected a JSON list of frames, got {type(items).__name__}")
    frames = []
    for i, item in enumerate(items):
        where = f"{source}[{i}]"
        if not isinstance(item, str) or item.count(",") != 2:
            raise HashFormatError(f"{where}: expected \"hex,quality,timestamp\", got {item!r:.120}")
        hex_, quality, timestamp = item.split(",")
        frame = VPDQFrame(i, _int(quality, where, "quality"), hex_.lower(), _float(timestamp, where, "timestamp"))
        frames.append(_check_frame(frame, where))
    return frames


def _int(text: str, where: str, field: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise HashFormatError(f"{where}: {field} must be an integer, got {text!r:.40}") from None


def _float(text: str, where: str, field: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise HashFormatError(f"{where}: {field} must be a number, got {text!r:.40}") from None


def unique_good_frames(frames: Sequence[VPDQFrame], min_quality: int = VPDQ_MIN_QUALITY) -> List[VPDQFrame]:
    """First occurrence of each distinct hash, then those with quality >= min_quality (reference order)."""
    seen, out = set(), []
    for f in frames:
        if f.hex not in seen:
            seen.add(f.hex)
            out.append(f)
    return [f for f in out if f.quality >= min_quality]


def codes(frames: Sequence[VPDQFrame]) -> np.ndarray:
    """The frames' hashes as an (n, 32) uint8 array."""
    return np.frombuffer(bytes.fromhex("".join(f.hex for f in frames)), np.uint8).reshape(len(frames), 32)


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All pairwise Hamming distances between (n, 32) and (m, 32) uint8 codes."""
    out = np.empty((len(a), len(b)), np.int32)
    step = max(1, 4_000_000 // max(1, 32 * len(b)))  # bound the temporary to ~4 MB
    for i in range(0, len(a), step):
        x = np.bitwise_xor(a[i:i + step, None, :], b[None, :, :])
        out[i:i + step] = _POPCOUNT[x].sum(axis=2, dtype=np.int32)
    return out


def match(query: Sequence[VPDQFrame], compared: Sequence[VPDQFrame], *,
          max_distance: int = VPDQ_MAX_DISTANCE, min_quality: int = VPDQ_MIN_QUALITY) -> VPDQMatch:
    """Compare two vPDQ hashes as the reference does: percent of each side's frames matched."""
    q = unique_good_frames(query, min_quality)
    c = unique_good_frames(compared, min_quality)
    if not q or not c:
        return VPDQMatch(0.0, 0.0)
    close = distance_matrix(codes(q), codes(c)) <= max_distance
    return VPDQMatch(100.0 * close.any(axis=1).sum() / len(q), 100.0 * close.any(axis=0).sum() / len(c))


def frame_step(fps: float, seconds_per_hash: float) -> int:
    """Hash every n-th decoded frame, n as the reference computes it (at least 1)."""
    if seconds_per_hash < 0:
        raise InvalidInputError(f"seconds_per_hash must be >= 0 (0: every frame), got {seconds_per_hash}")
    return max(1, int(seconds_per_hash * fps))


class VPDQSampler:
    """vPDQ as a frame sink: one frame every `step` output frames, hashed by the core in batches."""

    def __init__(self, fps: float, seconds_per_hash: float, max_frames: int, trim_borders: bool = False, *,
                 as_displayed: bool = False, dihedral: bool = False) -> None:
        self.step = frame_step(fps, seconds_per_hash)
        self.as_displayed = as_displayed
        self.trim_borders = trim_borders
        self.max_frames = max_frames
        # dihedral: each frame also hashed rotated and flipped (from its one DCT), for queries.
        self.names = DIHEDRAL_NAMES if dihedral else DIHEDRAL_NAMES[:1]
        self.frames: Dict[str, List[VPDQFrame]] = {name: [] for name in self.names}

    def wanted(self, plan: "object") -> np.ndarray:
        """Every step-th output frame, as the reference samples them."""
        wanted = np.zeros(plan.frame_count, bool)
        wanted[::self.step] = True
        if (plan.frame_count + self.step - 1) // self.step > self.max_frames:
            raise ResourceLimitError(f"more than max_frames={self.max_frames:,} frames to hash")
        return wanted

    def part(self) -> "_VPDQPart":
        """Hashes the sampled frames of one stretch of the stream."""
        return _VPDQPart(self)

    def add(self, frames: Dict[str, List[VPDQFrame]]) -> None:
        """Append one stretch's frames (stretches arrive in order; wanted() or the part enforced max_frames)."""
        for name, out in frames.items():
            self.frames[name].extend(out)

    def result(self) -> List[VPDQFrame]:
        """Every hashed frame, in stream order."""
        return self.frames["original"]

    def variants(self) -> List[Tuple[str, List[VPDQFrame]]]:
        """(dihedral name, frames) for each variant hashed: the plain frames first."""
        return [(name, self.frames[name]) for name in self.names]

    def reset(self) -> None:
        """Drop the frames merged so far."""
        self.frames = {name: [] for name in self.names}


class _VPDQPart:
    def __init__(self, sampler: VPDQSampler) -> None:
        from av.video.reformatter import VideoReformatter

        self.sampler = sampler
        # Reused: VideoFrame.to_ndarray would build a new swscale context for every frame.
        self._rgb = VideoReformatter()
        self.out: Dict[str, List[VPDQFrame]] = {name: [] for name in sampler.names}
        self._meta: List[Tuple[int, float]] = []
        self._pixels: List[np.ndarray] = []
        self._batch_pixels = 0

    def push(self, n: int, t: float, frame: "object") -> None:
        if n % self.sampler.step:
            return
        if len(self.out["original"]) + len(self._pixels) >= self.sampler.max_frames:
            raise ResourceLimitError(f"more than max_frames={self.sampler.max_frames:,} frames to hash")
        # The reference converts with swscale to packed RGB24 at full size; so do we.
        pixels = rgb_pixels(self._rgb, frame, as_displayed=self.sampler.as_displayed)
        self._pixels.append(trim_pixels(pixels) if self.sampler.trim_borders else pixels)
        self._meta.append((n, t))
        self._batch_pixels += frame.width * frame.height
        if len(self._pixels) >= _BATCH or self._batch_pixels >= _BATCH_PIXELS:
            self._hash()

    def _hash(self) -> None:
        if self._pixels:
            # One core thread: the decode runs a part per worker thread, and they fill the cores.
            names = self.sampler.names
            hashes, qualities = _core.pdq_hash_many(self._pixels, 1, len(names) > 1)
            for (n, t), h, q in zip(self._meta, hashes, qualities):
                for name, bits in zip(names, h if len(names) > 1 else (h,)):
                    self.out[name].append(VPDQFrame(n, q, bits.hex(), t))
            self._meta, self._pixels, self._batch_pixels = [], [], 0

    def finish(self) -> Dict[str, List[VPDQFrame]]:
        self._hash()
        return self.out


class VPDQSignal(SignalType):
    """vPDQ frames, exchanged as python-threatexchange's compact signal string, stored as the reference's text.

    Its distance is the percent of the first hash's unique good frames matched (a similarity).
    Its frames share the ``pdq`` Hamming space, so images match video frames and back.
    """

    name = "vpdq"
    media_type = "video"
    threshold = VPDQ_QUERY_MATCH_PERCENT
    similarity = True
    version = "vpdq-1"
    computed_from = "frames"
    default = True
    complete = True
    file_suffix = ".txt"
    index = IndexSpec("hamming", space="pdq", bits=256, frames=True)

    def loads(self, data: Serialized, *, source: str = "<value>") -> List[VPDQFrame]:
        """Frames from the compact signal string, or from the reference's text lines."""
        if isinstance(data, (list, tuple)) and all(isinstance(f, VPDQFrame) for f in data):
            return list(data)
        if isinstance(data, (bytes, bytearray)):
            try:
                data = bytes(data).decode("utf-8")
            except UnicodeDecodeError:
                raise HashFormatError(f"{source}: vpdq value is not UTF-8 text") from None
        if not isinstance(data, str):
            raise HashFormatError(f"{source}: vpdq value must be text, not {type(data).__name__}")
        text = data.strip()
        frames = from_signal(text, source=source) if text.startswith("[") else loads(text, source=source)
        if not frames:
            raise HashFormatError(f"{source}: vpdq value has no frames")
        return frames

    def dumps(self, value: Sequence[VPDQFrame]) -> str:
        """python-threatexchange's compact signal string."""
        return to_signal(value)

    def value_of(self, item: Any) -> Optional[List[VPDQFrame]]:
        """A non-empty sequence of VPDQFrame is a vPDQ value."""
        if isinstance(item, (list, tuple)) and item and all(isinstance(f, VPDQFrame) for f in item):
            return list(item)
        return None

    def to_stored(self, value: Sequence[VPDQFrame]) -> Stored:
        """The reference's text lines (they keep frame numbers)."""
        return Stored(dumps(value))

    def computed_params(self, options: Dict[str, Any]) -> Dict[str, Any]:
        """The sampling the frames were hashed at (0: every frame)."""
        if options.get("animation") is not None:
            return {"seconds_per_hash": 0.0 if _every_frame(options["animation"]) else 1.0}
        return {"seconds_per_hash": options.get("seconds_per_hash", 1.0)}

    def from_animation(self, animation: Any, options: Dict[str, Any]) -> List[Tuple[str, List[VPDQFrame]]]:
        """An animated image's frames, timed by its own delays: every one of a short animation (at most
        ANIMATION_EVERY_FRAME_MAX frames), else the frame on screen at each whole second."""
        names = DIHEDRAL_NAMES if options.get("dihedral") else DIHEDRAL_NAMES[:1]
        out: Dict[str, List[VPDQFrame]] = {name: [] for name in names}
        every, next_ms = _every_frame(animation), 0
        batch: List[Any] = []
        for frame in animation.frames():
            end = round((frame.timestamp + frame.duration) * 1000)
            if not every:
                if end <= next_ms:
                    continue  # off screen before the next whole second
                next_ms = -(-end // 1000) * 1000
            batch.append(frame)
            if len(batch) >= _BATCH:
                _hash_animation_frames(batch, names, out)
                batch = []
        _hash_animation_frames(batch, names, out)
        return [(name, out[name]) for name in names]

    def from_stored(self, value: str, data: Optional[bytes]) -> List[VPDQFrame]:
        """Frames from the stored text lines."""
        return loads(value, source="vpdq fingerprint")

    def as_line(self, value: str, data: Optional[bytes]) -> str:
        """The compact signal string: one line."""
        return to_signal(self.from_stored(value, data))

    def distance(self, a: Sequence[VPDQFrame], b: Sequence[VPDQFrame]) -> float:
        """Percent of a's unique good frames that match one of b's (the reference's query percent)."""
        return float(match(self.loads(a), self.loads(b)).query_match_percent)

    def video_sink(self, video: Any, options: Dict[str, Any]) -> VPDQSampler:
        """One frame per seconds_per_hash, hashed in the core."""
        return VPDQSampler(video.fps, options.get("seconds_per_hash", 1.0),
                           options.get("max_frames", MAX_HASHED_FRAMES), options.get("trim_borders", False),
                           as_displayed=self.as_displayed, dihedral=options.get("dihedral", False))

    def sink_variants(self, sink: VPDQSampler) -> List[Tuple[str, List[VPDQFrame]]]:
        """The plain frames, then (dihedral=True) the same frames rotated and flipped."""
        return sink.variants()

    def index_codes(self, value: Sequence[VPDQFrame]) -> List[Code]:
        """Each unique frame hash once (as the reference matches them), with its quality, number and time."""
        seen, out = set(), []
        for f in value:
            if f.hex not in seen:
                seen.add(f.hex)
                out.append(Code(bytes.fromhex(f.hex), f.quality, f.frame_number, f.timestamp))
        return out

    def query_codes(self, value: Sequence[VPDQFrame], min_quality: int) -> Tuple[List[Code], Optional[str]]:
        """The unique good-quality frames, as the reference compares them."""
        frames = unique_good_frames(value, min_quality)
        if not frames:
            return [], f"no frame of quality >= {min_quality}"
        return [Code(bytes.fromhex(f.hex), f.quality, f.frame_number, f.timestamp) for f in frames], None


def _every_frame(animation: Any) -> bool:
    return animation.frame_count <= ANIMATION_EVERY_FRAME_MAX


def _hash_animation_frames(batch: List[Any], names: Sequence[str], out: Dict[str, List[VPDQFrame]]) -> None:
    if not batch:
        return
    hashes, qualities = _core.pdq_hash_many([f.pixels for f in batch], 1, len(names) > 1)
    for f, h, q in zip(batch, hashes, qualities):
        for name, bits in zip(names, h if len(names) > 1 else (h,)):
            out[name].append(VPDQFrame(f.index, q, bits.hex(), f.timestamp))


VPDQ_SIGNAL = register(VPDQSignal())
