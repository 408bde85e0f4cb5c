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

from fractions import Fraction
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _core
from ..errors import DecodeError, ResourceLimitError
from ..video.frames import rgb_pixels
from ..config import TMK_FEATURE_DIMENSION, TMK_FOURIER_COEFFICIENTS, TMK_FRAMES_PER_SECOND, TMK_PERIODS
from .tmk import TMK, TMK_ALGORITHM, poullot_coefficients

TMK_FRAME_SIZE = 64  # the reference scales every frame to 64x64 before PDQF
_BATCH = 64  # 64x64 frames per native call: ~0.8 MB, enough to amortise the call


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
        drift = Fraction(t * self.rate - self.next_slot)  # exact, whether t is a Fraction or a float
        length = _length(None if duration is None else duration * self.rate, self.default_duration)
        before, count = _decide(drift.numerator, drift.denominator, length)
        self.next_slot += count
        return before, count - before


_ONE_POINT_ONE = Fraction(1.1)  # the float 1.1 exactly: the drift is compared with it exactly


def _length(duration_slots: Union[Fraction, float, None], default: float) -> float:
    """A frame's length in slots: its duration rounded as FFmpeg rounds it (lrintf), else the default."""
    slots = round(duration_slots) if duration_slots is not None else 0
    return float(slots) if slots > 0 else default


def _decide(drift_num: int, den: int, length: float) -> Tuple[int, int]:
    """(slots the previous frame fills again, slots in all) for a frame drift_num / den slots from the next one.

    FFmpeg's constant-frame-rate sync, in integers where it compares exactly: the frame is
    dropped when it ends more than 1.1 slots early, duplicated when it runs more than 1.1
    slots long, and when it starts more than 1.1 slots late the gap is filled with the
    previous frame.
    """
    delta = drift_num / den + length  # int / int rounds correctly, as float(Fraction) does
    before, count = 0, 1
    if delta < -1.1:
        count = 0
    elif delta > 1.1:
        count = round(delta)  # llrintf: to nearest, ties to even
        # (FFmpeg clips a negative drift to 0 first, which only matters to this test: never late.)
        if drift_num * _ONE_POINT_ONE.denominator > _ONE_POINT_ONE.numerator * den:
            before = round(drift_num / den - 0.6)
    return min(before, count), count


def plan_slots(pts: Sequence[int], durations: Sequence[int], time_base: Fraction, start: Fraction,
               stream_fps: float) -> Tuple[np.ndarray, np.ndarray]:
    """(first slot, slot count) of every frame, for frames at `pts` lasting `durations` (time_base units).

    The same decisions as SlotClock.push over the frames in order, in integer arithmetic (a
    Fraction per frame cost ~10 us). A frame's slots are the ones the clock gives it plus
    those it fills again before the next frame that has slots of its own (FFmpeg repeats
    the last frame it output), so each frame's slots are one contiguous run and frames with
    none need not be decoded.
    """
    rate = TMK_FRAMES_PER_SECOND
    n, d = time_base.numerator, time_base.denominator
    # A frame's position in slots is (pts * n * sn_d - start_n * d) * rate / (d * start_d), exactly.
    scale, shift, den = n * start.denominator * rate, start.numerator * d * rate, d * start.denominator
    default = min(rate / stream_fps, 1.0) if stream_fps > 0 else 1.0
    lengths = {dur: _length(Fraction(dur) * time_base * rate if dur else None, default) for dur in set(durations)}
    first, count = np.zeros(len(pts), np.int64), np.zeros(len(pts), np.int64)
    previous, next_slot = -1, 0
    for i, (p, dur) in enumerate(zip(pts, durations)):
        drift_num = max(0, p * scale - shift) - next_slot * den  # drift = drift_num / den
        before, own = _decide(drift_num, den, lengths[dur])
        next_slot += own
        own -= before
        if previous < 0:
            before, own = 0, before + own  # FFmpeg fills leading slots with the first frame itself
        if before:
            count[previous] += before
        if own:
            first[i], count[i], previous = next_slot - own, own, i
    return first, count


class TMKSampler:
    """TMK+PDQF as a frame sink: 64x64 RGB frames into PDQF and kernel sums, all in the core."""

    def __init__(self, stream_fps: float, max_frames: int, start: Fraction = Fraction(0), *,
                 as_displayed: bool = True) -> None:
        self.start = start
        self.as_displayed = as_displayed
        self.stream_fps = stream_fps
        self.max_frames = max_frames
        self.periods = np.array(TMK_PERIODS, np.int32)
        self.coefficients = poullot_coefficients()
        self._slots: Optional[Tuple[np.ndarray, np.ndarray]] = None
        self._sums = _zero_sums()
        self._filled = 0

    def wanted(self, plan: "object") -> np.ndarray:
        """The frames that fill at least one 15-fps slot."""
        first, count = plan_slots(plan.frame_pts.tolist(), plan.frame_durations.tolist(), plan.time_base,
                                  Fraction(self.start), self.stream_fps)
        if int(count.sum()) > self.max_frames:
            raise ResourceLimitError(f"more than max_frames={self.max_frames:,} 15-fps frames for TMK")
        self._slots = (first, count)
        return count > 0

    def part(self) -> "_TMKPart":
        """Ingests one stretch of the stream into its own sums (planned slots if wanted() made a plan)."""
        return _TMKPart(self, self._slots)

    def add(self, result: Tuple[Tuple[np.ndarray, ...], int]) -> None:
        """Add one stretch's sums (stretches arrive in order, so the total does not depend on timing)."""
        sums, filled = result
        for total, part in zip(self._sums, sums):
            total += part
        self._filled += filled

    def reset(self) -> None:
        """Drop the sums merged so far, and the plan's slots."""
        self._slots, self._sums, self._filled = None, _zero_sums(), 0

    def result(self) -> TMK:
        """The TMK of the whole stream."""
        pure, cos, sin = _core.tmk_finish(self.periods, self.coefficients, self._filled, *self._sums)
        shape = (len(self.periods), len(self.coefficients), TMK_FEATURE_DIMENSION)
        return TMK(TMK_ALGORITHM, TMK_FRAMES_PER_SECOND, self._filled, self.periods.copy(), self.coefficients,
                   pure, cos.reshape(shape), sin.reshape(shape))


def _zero_sums() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    block = len(TMK_PERIODS) * TMK_FOURIER_COEFFICIENTS * TMK_FEATURE_DIMENSION
    return np.zeros(TMK_FEATURE_DIMENSION), np.zeros(block), np.zeros(block)


class _TMKPart:
    """One stretch's frames: scaled, batched, and added to its own running sums at their slot times."""

    def __init__(self, sampler: TMKSampler, slots: Optional[Tuple[np.ndarray, np.ndarray]]) -> None:
        from av.video.reformatter import VideoReformatter

        # One reformatter per stretch: it keeps its swscale context, where VideoFrame.reformat
        # would build (and fill bicubic tables for) one per frame.
        self._scaler = VideoReformatter()
        self.sampler = sampler
        self.slots = slots
        self.clock = None if slots is not None else SlotClock(TMK_FRAMES_PER_SECOND, sampler.stream_fps)
        self._sums = _zero_sums()
        self._frames: List[np.ndarray] = []
        self._index: List[int] = []
        self._times: List[int] = []
        self._previous: Optional[np.ndarray] = None
        self._filled = 0

    def push(self, n: int, t: float, frame: "object") -> None:
        if self.slots is not None:
            first, count = int(self.slots[0][n]), int(self.slots[1][n])
            if count:
                self._add(self._scale(frame), range(first, first + count))
            return
        # No plan: decide the slots frame by frame, as FFmpeg does.
        duration = None
        if frame.time_base is not None:
            if frame.pts is not None:
                t = max(Fraction(0), frame.pts * frame.time_base - self.sampler.start)
            if frame.duration:
                duration = frame.duration * frame.time_base
        before, count = self.clock.push(t, duration)
        if self._previous is None:
            before, count = 0, before + count
        if before + count == 0:
            return
        if self._filled + before + count > self.sampler.max_frames:
            raise ResourceLimitError(f"more than max_frames={self.sampler.max_frames:,} 15-fps frames for TMK")
        if before:
            self._add(self._previous, range(self._filled, self._filled + before))
        if count:
            self._previous = self._scale(frame)
            self._add(self._previous, range(self._filled, self._filled + count))

    def _scale(self, frame: "object") -> np.ndarray:
        import av

        try:
            return rgb_pixels(self._scaler, frame, as_displayed=self.sampler.as_displayed, width=TMK_FRAME_SIZE,
                              height=TMK_FRAME_SIZE, interpolation="BICUBIC")
        except (av.error.FFmpegError, ValueError) as e:
            raise DecodeError(f"a decoded frame could not be scaled to 64x64 RGB ({e})") from e

    def _add(self, pixels: np.ndarray, slots: range) -> None:
        if not self._frames or self._frames[-1] is not pixels:
            self._frames.append(pixels)
        index = len(self._frames) - 1
        for slot in slots:
            self._index.append(index)
            self._times.append(slot)
        self._filled += len(slots)
        if len(self._frames) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._frames:
            _core.tmk_ingest(np.ascontiguousarray(np.stack(self._frames)), np.array(self._index, np.int32),
                             np.array(self._times, np.int64), self.sampler.periods,
                             len(self.sampler.coefficients), *self._sums)
            self._frames, self._index, self._times = [], [], []

    def finish(self) -> Tuple[Tuple[np.ndarray, ...], int]:
        self._flush()
        return self._sums, self._filled
