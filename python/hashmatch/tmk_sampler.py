"""TMK+PDQF from decoded frames: 15-fps time slots as the reference's FFmpeg command fills them.

The reference pipes each video through ``ffmpeg -i VIDEO -s 64:64 -an -f rawvideo -pix_fmt
rgb24 -r 15 -``. There ``-r 15`` is not a filter: FFmpeg's constant-frame-rate output sync
decides, frame by frame, how many 15-fps slots each decoded frame fills (0: dropped, 2 or
more: duplicated), from the frame's timestamp and duration in 1/15 s units. ``SlotClock``
makes the same decisions (FFmpeg 5.1's rules, the reference's FFmpeg here), so the same
frames land in the same slots; ``-s 64:64`` is swscale's bicubic scaler straight to RGB24,
which PyAV's reformat runs too.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from typing import List, Optional, Tuple, Union

import numpy as np

from . import _core
from .errors import DecodeError, ResourceLimitError
from .tmk import (TMK, TMK_ALGORITHM, TMK_FEATURE_DIMENSION, TMK_FOURIER_COEFFICIENTS, TMK_FRAMES_PER_SECOND,
                  TMK_PERIODS, poullot_coefficients)

TMK_FRAME_SIZE = 64  # the reference scales every frame to 64x64 before PDQF
_BATCH = 64  # 64x64 frames per native call: ~0.8 MB, enough to amortise the call
_IN_FLIGHT = 32  # decoded frames waiting for the scaler: bounds the memory they hold


class SlotClock:
    """How many output slots each input frame fills, as FFmpeg's constant-frame-rate sync decides."""

    def __init__(self, rate: int = TMK_FRAMES_PER_SECOND, stream_fps: float = 0.0) -> None:
        self.rate = rate
        self.next_slot = 0
        # The fallback duration (in slots) of a frame with no duration of its own: one input
        # frame period, but never more than one output slot.
        self.default_duration = min(rate / stream_fps, 1.0) if stream_fps > 0 else 1.0

    def push(self, t: Union[Fraction, float], duration: Union[Fraction, float, None]) -> Tuple[int, int]:
        """(slots for the previous frame, slots for this one), for a frame at t seconds lasting duration."""
        # Exact times (Fractions) keep a frame at 4.1 s on slot 61.5, as FFmpeg's rational
        # rescaling does, where 4.1 * 15 in floats would fall just short of it.
        position = t * self.rate
        length = self.default_duration
        if duration is not None and round(duration * self.rate) > 0:
            length = float(round(duration * self.rate))  # FFmpeg rounds the packet duration (lrintf)
        drift = position - self.next_slot
        delta = drift + length
        if drift < 0 < delta:
            drift = 0.0  # the frame started inside the previous slot: clip it (does not change delta)
        before, count = 0, 1
        if delta < -1.1:
            count = 0
        elif delta > 1.1:
            count = round(delta)  # llrintf: to nearest, ties to even
            if drift > 1.1:
                before = round(drift - 0.6)
        before = min(before, count)
        self.next_slot += count
        return before, count - before


class TMKSampler:
    """Feeds one decode pass into TMK running sums: 64x64 RGB frames, PDQF and sums in the core."""

    def __init__(self, stream_fps: float, max_frames: int, start: Fraction = Fraction(0)) -> None:
        from av.video.reformatter import VideoReformatter

        # One reformatter for the whole pass: it keeps its swscale context, where
        # VideoFrame.reformat would build (and fill bicubic tables for) one per frame.
        self._scaler = VideoReformatter()
        self.start = start
        self.clock = SlotClock(TMK_FRAMES_PER_SECOND, stream_fps)
        self.max_frames = max_frames
        self.periods = np.array(TMK_PERIODS, np.int32)
        self.coefficients = poullot_coefficients()
        d, block = TMK_FEATURE_DIMENSION, len(TMK_PERIODS) * TMK_FOURIER_COEFFICIENTS * TMK_FEATURE_DIMENSION
        self._sums = (np.zeros(d), np.zeros(block), np.zeros(block))
        self._pool = ThreadPoolExecutor(max_workers=1)  # one worker: the sums are updated in order
        self._pending: List[Future] = []
        self._frames: List[Future] = []  # each resolves to a 64x64x3 array
        self._scaling: deque = deque()
        self._index: List[int] = []
        self._times: List[int] = []
        self._previous: Optional[Future] = None
        self._slots = 0

    def push(self, n: int, t: float, frame: "object") -> None:
        """Place one decoded frame (at t seconds from the stream's start) into its 15-fps slots."""
        duration = None
        if frame.time_base is not None:
            if frame.pts is not None:
                t = max(Fraction(0), frame.pts * frame.time_base - self.start)
            if frame.duration:
                duration = frame.duration * frame.time_base
        before, count = self.clock.push(t, duration)
        if self._previous is None:
            before, count = 0, before + count  # FFmpeg fills leading slots with the first frame itself
        if before + count == 0:
            return
        if self._slots + before + count > self.max_frames:
            raise ResourceLimitError(f"more than max_frames={self.max_frames:,} 15-fps frames for TMK")
        if before:
            self._add(self._previous, before)
        if count:
            # Scaling runs on the worker (swscale releases the GIL) while FFmpeg decodes on.
            small = self._pool.submit(self._scale, frame)
            self._scaling.append(small)
            if len(self._scaling) > _IN_FLIGHT:
                self._scaling.popleft().result()
            self._previous = small
            self._add(small, count)

    def _scale(self, frame: "object") -> np.ndarray:
        import av

        try:
            return self._scaler.reformat(frame, width=TMK_FRAME_SIZE, height=TMK_FRAME_SIZE, format="rgb24",
                                         interpolation="BICUBIC").to_ndarray()
        except (av.error.FFmpegError, ValueError) as e:
            raise DecodeError(f"a decoded frame could not be scaled to 64x64 RGB ({e})") from e

    def _add(self, pixels: Future, slots: int) -> None:
        self._frames.append(pixels)
        index = len(self._frames) - 1
        for _ in range(slots):
            self._index.append(index)
            self._times.append(self._slots)
            self._slots += 1
        if len(self._frames) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self._frames:
            return
        index, times = np.array(self._index, np.int32), np.array(self._times, np.int64)
        # The single worker runs tasks in order: every scaling future here is done when this runs.
        self._pending.append(self._pool.submit(self._ingest, self._frames, index, times))
        self._frames, self._index, self._times = [], [], []

    def _ingest(self, frames: List[Future], index: np.ndarray, times: np.ndarray) -> None:
        pixels = np.ascontiguousarray(np.stack([f.result() for f in frames]))
        _core.tmk_ingest(pixels, index, times, self.periods, len(self.coefficients), *self._sums)

    def abort(self) -> None:
        """Stop without a result (the decode failed): wait for in-flight batches, drop them."""
        self._pool.shutdown(wait=True)

    def finish(self) -> TMK:
        """The TMK of every frame pushed."""
        self._flush()
        try:
            for future in self._pending:
                future.result()
        finally:
            self._pool.shutdown()
        pure, cos, sin = _core.tmk_finish(self.periods, self.coefficients, self._slots, *self._sums)
        shape = (len(self.periods), len(self.coefficients), TMK_FEATURE_DIMENSION)
        return TMK(TMK_ALGORITHM, TMK_FRAMES_PER_SECOND, self._slots, self.periods.copy(), self.coefficients,
                   pure, cos.reshape(shape), sin.reshape(shape))
