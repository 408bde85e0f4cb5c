"""Video decoding (FFmpeg, bundled in the PyAV wheel) and frame sampling for the video hashes.

One decode pass feeds every video format at once (video_decode runs it). Frames are
numbered in decode output order and timed from the stream's presentation timestamps, not
from a frame counter. vPDQ's sampled frames are converted to RGB and hashed by the core in
batches.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Iterator, List, Optional, Tuple, Union

import numpy as np

from . import _core
from .errors import DecodeError, InputTypeError, InvalidInputError, MediaNotFoundError, ResourceLimitError
from .image import _trim
from .vpdq_frames import VPDQFrame

VideoInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]

#: Resource bounds, each overridable per call: frame size, duration, hashed frames.
DEFAULT_MAX_FRAME_PIXELS = 8192 * 8192
DEFAULT_MAX_DURATION = 6 * 3600.0
DEFAULT_MAX_HASHED_FRAMES = 200_000

_BATCH = 32  # frames per native hashing call: enough to amortise the call, small in memory
_BATCH_PIXELS = 1 << 26  # ...and at most ~200 MB of RGB frames in one batch, whatever their size


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the first video stream."""

    width: int
    height: int
    fps: float
    duration: Optional[float]
    codec: str


class _Video:
    """An open video: the container, its first video stream, and checked limits."""

    def __init__(self, video: VideoInput, max_frame_pixels: int, max_duration: float) -> None:
        import av

        self.name = _name_of(video)
        source = _source(video)
        try:
            self.container = av.open(source, mode="r")
        except FileNotFoundError as e:
            raise MediaNotFoundError(f"no such file: {self.name!r}") from e
        except (av.error.FFmpegError, ValueError, OSError, UnicodeDecodeError) as e:
            raise DecodeError(f"{self.name}: not a decodable video ({e})") from e
        streams = self.container.streams.video
        if not streams:
            self.container.close()
            raise DecodeError(f"{self.name}: has no video stream")
        self.stream = stream = streams[0]
        # Slice threads only: frame threading conceals damage differently from one thread (and
        # from run to run), and a video's hashes must not depend on how it was decoded.
        stream.thread_type = "SLICE"
        ctx = stream.codec_context
        if ctx is None:  # FFmpeg has no decoder for it (an unknown or damaged codec tag)
            self.close()
            raise DecodeError(f"{self.name}: no decoder for its video stream (an unknown or damaged codec)")
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width <= 0 or height <= 0:
            self.close()
            raise DecodeError(f"{self.name}: video stream has no frame size")
        if width * height > max_frame_pixels:
            self.close()
            raise ResourceLimitError(f"{self.name}: frames are {width}x{height}, over max_frame_pixels="
                                     f"{max_frame_pixels:,}")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = float(rate) if rate else 0.0
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif self.container.duration is not None:
            duration = self.container.duration / 1_000_000
        if duration is not None and duration > max_duration:
            self.close()
            raise ResourceLimitError(f"{self.name}: {duration:.0f} s long, over max_duration={max_duration:.0f} s")
        self.max_duration = max_duration
        self.max_frame_pixels = max_frame_pixels
        self.info = VideoInfo(width, height, self.fps, duration, ctx.name)
        self.exact_start = (stream.start_time * stream.time_base
                            if stream.start_time is not None and stream.time_base is not None else Fraction(0))
        self.start = float(self.exact_start)
        self.used = False  # a decode has started: the next one must seek

    def frames(self) -> Iterator[Tuple[int, float, "object"]]:
        """(frame number, timestamp in seconds, av.VideoFrame) for every decoded frame."""
        import av

        n = 0
        try:
            for frame in self.container.decode(self.stream):
                t = frame_time(frame, n, self.start, self.fps)
                if t > self.max_duration:
                    raise ResourceLimitError(f"{self.name}: runs past max_duration={self.max_duration:.0f} s")
                self.check_frame_size(frame, n)
                yield n, t, frame
                n += 1
        except av.error.FFmpegError as e:
            raise DecodeError(f"{self.name}: corrupt video after {n} frames ({e})") from e
        except IndexError as e:  # PyAV's demuxer knows only the streams present when the file opened
            raise DecodeError(f"{self.name}: a new stream appeared after {n} frames, which PyAV cannot "
                              "demux (MPEG-TS does this); remux the file") from e
        if n == 0:
            raise DecodeError(f"{self.name}: no frames could be decoded")

    def check_frame_size(self, frame: "object", n: int) -> None:
        """ResourceLimitError if decoded frame n is over max_frame_pixels."""
        # The stream header is only a claim: a stream may change frame size mid-way.
        if frame.width * frame.height > self.max_frame_pixels:
            raise ResourceLimitError(f"{self.name}: frame {n} is {frame.width}x{frame.height}, over "
                                     f"max_frame_pixels={self.max_frame_pixels:,}")

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "_Video":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def frame_time(frame: "object", n: int, start: float, fps: float) -> float:
    """Seconds from the stream's start to frame n: from its timestamp, else from its number."""
    if frame.pts is not None and frame.time is not None:
        return max(0.0, float(frame.time) - start)
    return n / fps if fps else 0.0


def _name_of(video: VideoInput) -> str:
    if isinstance(video, (str, os.PathLike)):
        return os.fspath(video)
    return getattr(video, "name", "<bytes>" if isinstance(video, (bytes, bytearray, memoryview)) else "<file>")


def _source(video: VideoInput):
    if isinstance(video, (str, os.PathLike)):
        path = os.fspath(video)
        if not os.path.exists(path):
            raise MediaNotFoundError(f"no such file: {path!r}")
        if os.path.isdir(path):
            raise InvalidInputError(f"{path!r} is a directory, not a video file")
        return path
    if isinstance(video, (bytes, bytearray, memoryview)):
        if len(video) == 0:
            raise DecodeError("video bytes are empty")
        return io.BytesIO(bytes(video))
    if hasattr(video, "read"):
        return video
    raise InputTypeError(f"video must be a path, bytes or a file object, not {type(video).__name__}")


def frame_step(fps: float, seconds_per_hash: float) -> int:
    """Hash every n-th decoded frame, n as the reference computes it (at least 1)."""
    if seconds_per_hash < 0:
        raise InvalidInputError(f"seconds_per_hash must be >= 0 (0: every frame), got {seconds_per_hash}")
    return max(1, int(seconds_per_hash * fps))


class VPDQSampler:
    """vPDQ as a frame sink: one frame every `step` output frames, hashed by the core in batches."""

    def __init__(self, fps: float, seconds_per_hash: float, max_frames: int, trim_borders: bool = False) -> None:
        self.step = frame_step(fps, seconds_per_hash)
        self.trim_borders = trim_borders
        self.max_frames = max_frames
        self.frames: List[VPDQFrame] = []

    def wanted(self, plan: "object") -> np.ndarray:
        """Every step-th output frame, as the reference samples them."""
        wanted = np.zeros(plan.frame_count, bool)
        wanted[::self.step] = True
        if (plan.frame_count + self.step - 1) // self.step > self.max_frames:
            raise ResourceLimitError(f"more than max_frames={self.max_frames:,} frames to hash")
        return wanted

    def part(self, planned: bool) -> "_VPDQPart":
        """Hashes the sampled frames of one stretch of the stream."""
        return _VPDQPart(self)

    def add(self, frames: List[VPDQFrame]) -> None:
        """Append one stretch's frames (stretches arrive in order; wanted() or the part enforced max_frames)."""
        self.frames.extend(frames)

    def reset(self) -> None:
        """Drop the frames merged so far."""
        self.frames = []


class _VPDQPart:
    def __init__(self, sampler: VPDQSampler) -> None:
        from av.video.reformatter import VideoReformatter

        self.sampler = sampler
        # Reused: VideoFrame.to_ndarray would build a new swscale context for every frame.
        self._rgb = VideoReformatter()
        self.out: List[VPDQFrame] = []
        self._meta: List[Tuple[int, float]] = []
        self._pixels: List[np.ndarray] = []
        self._batch_pixels = 0

    def push(self, n: int, t: float, frame: "object") -> None:
        if n % self.sampler.step:
            return
        if len(self.out) + len(self._pixels) >= self.sampler.max_frames:
            raise ResourceLimitError(f"more than max_frames={self.sampler.max_frames:,} frames to hash")
        # The reference converts with swscale to packed RGB24 at full size; so do we.
        pixels = self._rgb.reformat(frame, format="rgb24").to_ndarray()
        self._pixels.append(_trim(pixels) if self.sampler.trim_borders else pixels)
        self._meta.append((n, t))
        self._batch_pixels += frame.width * frame.height
        if len(self._pixels) >= _BATCH or self._batch_pixels >= _BATCH_PIXELS:
            self._hash()

    def _hash(self) -> None:
        if self._pixels:
            # One core thread: the decode runs a part per worker thread, and they fill the cores.
            hashes, qualities = _core.pdq_hash_many(self._pixels, 1)
            self.out.extend(VPDQFrame(n, q, h.hex(), t) for (n, t), h, q in zip(self._meta, hashes, qualities))
            self._meta, self._pixels, self._batch_pixels = [], [], 0

    def finish(self) -> List[VPDQFrame]:
        self._hash()
        return self.out


def video_info(video: VideoInput, *, max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
               max_duration: float = DEFAULT_MAX_DURATION) -> VideoInfo:
    """Size, frame rate, duration and codec of a video's first video stream, without decoding it."""
    with _Video(video, max_frame_pixels, max_duration) as v:
        return v.info

