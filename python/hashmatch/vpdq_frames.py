"""vPDQ values: per-frame PDQ hashes of a video, their text formats, and matching.

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
from typing import Iterable, List, Sequence, Tuple

import numpy as np

from .errors import HashFormatError
from .hashes import PDQ, PDQ_HEX_CHARS

#: The reference's defaults (vpdq and python-threatexchange).
VPDQ_MAX_DISTANCE = 31
VPDQ_MIN_QUALITY = 50
VPDQ_QUERY_MATCH_PERCENT = 80.0
VPDQ_COMPARED_MATCH_PERCENT = 0.0


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


def matched_frames(query: Sequence[VPDQFrame], compared: Sequence[VPDQFrame], *,
                   max_distance: int = VPDQ_MAX_DISTANCE) -> List[Tuple[VPDQFrame, VPDQFrame, int]]:
    """Each (query frame, nearest compared frame, distance) pair within max_distance."""
    if not query or not compared:
        return []
    d = distance_matrix(codes(query), codes(compared))
    best = d.argmin(axis=1)
    return [(qf, compared[j], int(d[i, j])) for i, (qf, j) in enumerate(zip(query, best)) if d[i, j] <= max_distance]
