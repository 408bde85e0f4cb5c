"""``tmk_pdqf``: TMK+PDQF video hashes: the value type, the reference's ``.tmk`` layout, scores, the codec.

A ``.tmk`` file is a 32-byte header (``TMK1``, ``FVEC``, the frame-feature algorithm
``PDQF``, then five little-endian int32: frames per second, number of periods P, number of
Fourier coefficients m, feature dimension d, frame count), followed by the P int32 periods,
the m float32 coefficients, the d float32 pure average, then the P*m*d float32 cos features
and the P*m*d float32 sin features, period-major.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import IO, Optional, Union

import numpy as np

from .. import _core
from ..config import (TMK_FEATURE_DIMENSION, TMK_FOURIER_COEFFICIENTS, TMK_KERNEL_BETA, TMK_LEVEL1_THRESHOLD,
                      TMK_LEVEL2_THRESHOLD, TMK_MAX_BYTES, TMK_MAX_COEFFICIENTS, TMK_MAX_DIMENSION,
                      TMK_MAX_LEVEL2_WORK, TMK_MAX_PERIOD, TMK_MAX_PERIODS, TMK_NEAR_EXACT_THRESHOLD)
from ..errors import HashFormatError, InvalidInputError, ResourceLimitError
from .base import IndexSpec, Serialized, SignalType, Stored, register

TMK_ALGORITHM = "PDQF"
#: The bounds of the core (hashmatch.config), under the names this module has always used.
MAX_LEVEL2_WORK = TMK_MAX_LEVEL2_WORK
MAX_PERIOD = TMK_MAX_PERIOD
DEFAULT_MAX_TMK_BYTES = TMK_MAX_BYTES

#: The .tmk header: magic, frame-feature algorithm, then five little-endian int32.
TMK_MAGIC = b"TMK1FVEC"
TMK_HEADER = struct.Struct("<8s4s5i")

PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]


def poullot_coefficients(count: int = TMK_FOURIER_COEFFICIENTS, beta: float = TMK_KERNEL_BETA) -> np.ndarray:
    """The Fourier coefficients of the TMK periodic kernel, as float32 (the reference's values)."""
    return _core.tmk_kernel_coefficients(count, beta)


@dataclass(frozen=True, eq=False)
class TMK:
    """A TMK+PDQF video hash: the pure average and the cos/sin features for each period and coefficient."""

    algorithm: str
    frames_per_second: int
    frame_count: int
    periods: np.ndarray  # (P,) int32
    coefficients: np.ndarray  # (m,) float32
    pure_average: np.ndarray  # (d,) float32
    cos_features: np.ndarray  # (P, m, d) float32
    sin_features: np.ndarray  # (P, m, d) float32

    def __post_init__(self) -> None:
        # Hold exactly the file's dtypes and shapes, so scores and .tmk bytes never see surprises.
        fields = {"periods": np.int32, "coefficients": np.float32, "pure_average": np.float32,
                  "cos_features": np.float32, "sin_features": np.float32}
        for name, dtype in fields.items():
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype))
        p, m, d = len(self.periods), len(self.coefficients), len(self.pure_average)
        if self.periods.ndim != 1 or self.coefficients.ndim != 1 or self.pure_average.ndim != 1:
            raise InvalidInputError("TMK periods, coefficients and pure_average must be 1-D")
        for name in ("cos_features", "sin_features"):
            if getattr(self, name).shape != (p, m, d):
                raise InvalidInputError(f"TMK {name} must have shape {(p, m, d)}, got {getattr(self, name).shape}")
        if len(self.algorithm.encode("ascii", "replace")) != 4:
            raise InvalidInputError(f"TMK algorithm must be a 4-character magic, got {self.algorithm!r}")
        problem = _shape_problem(self.periods, m)
        if problem:
            raise InvalidInputError(f"TMK {problem}")

    @property
    def dimension(self) -> int:
        """The frame-feature dimension d."""
        return int(self.pure_average.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TMK):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    # -- scores ---------------------------------------------------------------------------
    def _check_compatible(self, other: "TMK") -> None:
        if not isinstance(other, TMK):
            raise InvalidInputError(f"can only compare a TMK with a TMK, not {type(other).__name__}")
        if self.algorithm != other.algorithm or self.dimension != other.dimension:
            raise InvalidInputError(f"incompatible TMKs: {self.algorithm}/{self.dimension}-d vs "
                                    f"{other.algorithm}/{other.dimension}-d features")
        if not np.array_equal(self.periods, other.periods):
            raise InvalidInputError(f"incompatible TMKs: periods {self.periods.tolist()} vs {other.periods.tolist()}")
        if not np.array_equal(self.coefficients, other.coefficients):
            raise InvalidInputError("incompatible TMKs: different Fourier coefficients")

    def level1(self, other: "TMK") -> float:
        """Level-1 score: the cosine similarity of the two pure averages (-1..1)."""
        self._check_compatible(other)
        return float(_core.tmk_level1(self.pure_average, other.pure_average))

    def level2(self, other: "TMK") -> float:
        """Level-2 score: the best normalised kernel score over periods and time offsets (1 is identical)."""
        self._check_compatible(other)
        return float(_core.tmk_level2(self.periods, len(self.coefficients), self.dimension,
                                      self.cos_features.reshape(-1), self.sin_features.reshape(-1),
                                      other.cos_features.reshape(-1), other.sin_features.reshape(-1)))

    def is_match(self, other: "TMK", level1_threshold: float = TMK_LEVEL1_THRESHOLD,
                 level2_threshold: float = TMK_LEVEL2_THRESHOLD) -> bool:
        """The reference's two-level decision: level 1, then level 2, each at or above its threshold."""
        return self.level1(other) >= level1_threshold and self.level2(other) >= level2_threshold

    # -- the .tmk file --------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The reference's ``.tmk`` bytes."""
        p, m, d = len(self.periods), len(self.coefficients), self.dimension
        header = TMK_HEADER.pack(TMK_MAGIC, self.algorithm.encode("ascii"), self.frames_per_second, p, m, d,
                              self.frame_count)
        return b"".join([header, self.periods.astype("<i4").tobytes(), self.coefficients.astype("<f4").tobytes(),
                         self.pure_average.astype("<f4").tobytes(), self.cos_features.astype("<f4").tobytes(),
                         self.sin_features.astype("<f4").tobytes()])

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "<tmk>", max_bytes: int = DEFAULT_MAX_TMK_BYTES) -> "TMK":
        """Parse ``.tmk`` bytes; malformed input raises HashFormatError naming what is wrong."""
        data = bytes(data)
        fps, p, m, d, count, expected = parse_header(data, source, max_bytes)
        if len(data) != expected:
            what = "truncated" if len(data) < expected else "has trailing bytes"
            raise HashFormatError(f"{source}: {what}: {len(data)} bytes, the header says {expected}")
        offset = TMK_HEADER.size
        parts = []
        for n, dtype in zip([p, m, d, p * m * d, p * m * d], ["<i4", "<f4", "<f4", "<f4", "<f4"]):
            parts.append(np.frombuffer(data, dtype, n, offset).astype(dtype[1:]))
            offset += 4 * n
        periods, coefficients, pure, cos, sin = parts
        problem = _shape_problem(periods, m)
        if problem:
            raise HashFormatError(f"{source}: {problem}")
        if not all(np.isfinite(a).all() for a in (coefficients, pure, cos, sin)):
            raise HashFormatError(f"{source}: feature values must be finite numbers")
        return cls(TMK_ALGORITHM, fps, count, periods, coefficients, pure, cos.reshape(p, m, d), sin.reshape(p, m, d))

    def write(self, path_or_file: PathOrFile) -> None:
        """Write the ``.tmk`` file to a path or a binary file object."""
        data = self.to_bytes()
        if hasattr(path_or_file, "write"):
            path_or_file.write(data)
        else:
            with open(path_or_file, "wb") as f:
                f.write(data)

    @classmethod
    def read(cls, path_or_file: PathOrFile, *, max_bytes: int = DEFAULT_MAX_TMK_BYTES) -> "TMK":
        """Read a ``.tmk`` file from a path or a binary file object (at most max_bytes long)."""
        if hasattr(path_or_file, "read"):
            return _read_stream(path_or_file, getattr(path_or_file, "name", "<file>"), max_bytes)
        path = os.fspath(path_or_file)
        with open(path, "rb") as f:
            return _read_stream(f, path, max_bytes)


def _shape_problem(periods: np.ndarray, coefficients: int) -> str:
    """Why periods and a coefficient count make no usable TMK, or ''."""
    if (periods <= 0).any():
        return f"periods must be positive, got {periods.tolist()}"
    if (periods > MAX_PERIOD).any():
        return f"periods must be at most {MAX_PERIOD:,} frames, got {periods.tolist()}"
    if int(periods.astype(np.int64).sum()) * coefficients > MAX_LEVEL2_WORK:
        return (f"periods {periods.tolist()} x {coefficients} coefficients exceed the level-2 work bound "
                f"{MAX_LEVEL2_WORK:,} (the reference's shape needs ~1M)")
    return ""


def parse_header(data: bytes, source: str, max_bytes: int = DEFAULT_MAX_TMK_BYTES):
    """(fps, P, m, d, frame count, expected file size) from a checked header."""
    if len(data) < TMK_HEADER.size:
        raise HashFormatError(f"{source}: {len(data)} bytes, shorter than the {TMK_HEADER.size}-byte .tmk header")
    magic, algo, fps, p, m, d, count = TMK_HEADER.unpack_from(data)
    if magic != TMK_MAGIC:
        raise HashFormatError(f"{source}: not a TMK feature-vector file (magic {magic!r}, expected {TMK_MAGIC!r})")
    if algo != TMK_ALGORITHM.encode():
        raise HashFormatError(f"{source}: frame-feature algorithm {algo!r}, expected {TMK_ALGORITHM!r}")
    for name, value, high in [("frames per second", fps, 1000), ("periods", p, TMK_MAX_PERIODS),
                              ("Fourier coefficients", m, TMK_MAX_COEFFICIENTS), ("dimension", d, TMK_MAX_DIMENSION)]:
        if not 1 <= value <= high:
            raise HashFormatError(f"{source}: number of {name} must be in 1..{high}, got {value}")
    if count < 0:
        raise HashFormatError(f"{source}: frame count must be >= 0, got {count}")
    size = TMK_HEADER.size + 4 * (p + m + d + 2 * p * m * d)
    if size > max_bytes:
        raise ResourceLimitError(f"{source}: the .tmk header says {size:,} bytes, over max_bytes={max_bytes:,}")
    return fps, p, m, d, count, size


def read_tmk_bytes(f: IO[bytes], source: str, max_bytes: int = DEFAULT_MAX_TMK_BYTES, head: bytes = b"") -> bytes:
    """The bytes of a .tmk file from a stream (after `head`, already read): what its header says, plus one."""
    # Read that much and one byte more (so trailing bytes are seen), never the whole stream.
    if len(head) < TMK_HEADER.size:
        head += f.read(TMK_HEADER.size - len(head))
    expected = parse_header(head, source, max_bytes)[-1]
    return head + f.read(max(0, expected + 1 - len(head)))


def _read_stream(f: IO[bytes], source: str, max_bytes: int = DEFAULT_MAX_TMK_BYTES) -> TMK:
    return TMK.from_bytes(read_tmk_bytes(f, source, max_bytes), source=source, max_bytes=max_bytes)


class TMKSignal(SignalType):
    """TMK+PDQF, exchanged as ``.tmk`` bytes; found by level-1 cosine search, confirmed at level 2.

    Its distance is the level-2 score (a similarity), 0.0 where level 1 already says no, as the
    reference's matcher decides.
    """

    name = "tmk_pdqf"
    media_type = "video"
    binary = True
    threshold = TMK_LEVEL1_THRESHOLD  # the vector search's; level 2 confirms at TMK_LEVEL2_THRESHOLD
    similarity = True
    version = "tmk-pdqf-1"
    computed_from = "frames"
    # tmkpy hashes what the ffmpeg binary writes, and the command line applies the display matrix.
    as_displayed = True
    default = True
    complete = True
    file_suffix = ".tmk"
    index = IndexSpec("vector", space="tmk_pdqf", dim=TMK_FEATURE_DIMENSION, metric="cosine")
    external_names = (("ncmec", "TMK_PDQF", "video"), ("stopncii", "VideoTMK", "video"),
                      ("cybertipline", "TMK_PDQF", "video"))
    #: Candidates are confirmed at level 2; a near-exact copy scores at least near_exact_threshold.
    confirm_field = "level2"
    confirm_threshold = TMK_LEVEL2_THRESHOLD
    level2_threshold = TMK_LEVEL2_THRESHOLD
    near_exact_threshold = TMK_NEAR_EXACT_THRESHOLD

    def loads(self, data: Serialized, *, source: str = "<value>") -> TMK:
        """A TMK from the bytes of a ``.tmk`` file (non-finite features are refused by the parser)."""
        if isinstance(data, TMK):
            return data
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise HashFormatError(f"{source}: tmk_pdqf values are .tmk bytes, not {type(data).__name__}")
        return TMK.from_bytes(bytes(data), source=source)

    def dumps(self, value: TMK) -> bytes:
        """The ``.tmk`` file bytes."""
        return value.to_bytes()

    def value_of(self, item: object) -> Optional[TMK]:
        """A TMK object is a TMK+PDQF value."""
        return item if isinstance(item, TMK) else None

    def to_stored(self, value: TMK) -> Stored:
        """The .tmk bytes, with its periods and coefficient count in the parameters."""
        return Stored("", value.to_bytes(), None, {"periods": [int(p) for p in value.periods],
                                                   "fourier_coefficients": int(len(value.coefficients)),
                                                   "frames_per_second": int(value.frames_per_second)})

    def distance(self, a: TMK, b: TMK) -> float:
        """The level-2 score, or 0.0 when level 1 already says no (as the reference's matcher does)."""
        a, b = self.loads(a), self.loads(b)
        return a.level2(b) if a.level1(b) >= TMK_LEVEL1_THRESHOLD else 0.0

    def is_match(self, a: TMK, b: TMK, threshold: Optional[float] = None) -> bool:
        """Level 1 at its threshold, then level 2 at `threshold` (default 0.7)."""
        return self.distance(a, b) >= (self.level2_threshold if threshold is None else threshold)

    def video_sink(self, video: object, options: dict) -> object:
        """15-fps 64x64 frames into PDQF and kernel sums, in the core."""
        from ..config import MAX_TMK_FRAMES
        from .tmk_sampler import TMKSampler

        return TMKSampler(video.fps, options.get("max_tmk_frames", MAX_TMK_FRAMES), video.exact_start,
                          as_displayed=self.as_displayed)

    def index_vector(self, value: TMK) -> np.ndarray:
        """The pure average: level 1 is its cosine."""
        return value.pure_average

    def rescore(self, query: TMK, stored: TMK, score: float) -> dict:
        """The level-2 score, and the level-1 cosine beside it."""
        return {"level1": float(score), "level2": float(query.level2(stored))}


TMK_SIGNAL = register(TMKSignal())
