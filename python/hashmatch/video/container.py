"""An open video (FFmpeg, bundled in the PyAV wheel): its first video stream, checked bounds, frames.

Frames are numbered in decode output order and timed from the stream's presentation
timestamps, not from a frame counter. Which frames are decoded, and on which threads, is
``video.decode``'s business; what is computed from them is the signals'.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Iterator, Optional, Tuple, Union

from ..config import MAX_DURATION, MAX_FRAME_PIXELS
from ..errors import DecodeError, InputTypeError, MediaNotFoundError, ResourceLimitError
from ..media import checked_path

VideoInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the first video stream."""

    width: int
    height: int
    fps: float
    duration: Optional[float]
    codec: str


class VideoReader:
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

    def __enter__(self) -> "VideoReader":
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
        return checked_path(video, "video")
    if isinstance(video, (bytes, bytearray, memoryview)):
        if len(video) == 0:
            raise DecodeError("video bytes are empty")
        return io.BytesIO(bytes(video))
    if hasattr(video, "read"):
        return video
    raise InputTypeError(f"video must be a path, bytes or a file object, not {type(video).__name__}")


def video_info(video: VideoInput, *, max_frame_pixels: int = MAX_FRAME_PIXELS,
               max_duration: float = MAX_DURATION) -> VideoInfo:
    """Size, frame rate, duration and codec of a video's first video stream, without decoding it."""
    with VideoReader(video, max_frame_pixels, max_duration) as v:
        return v.info

