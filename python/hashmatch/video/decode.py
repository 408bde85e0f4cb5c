"""One decode of a video feeding every hash at once: planned and parallel where the stream allows.

A *sink* is one hash being computed (vPDQ, TMK). It says which frames it needs, makes a
*part* per stretch of the stream, and merges the parts' results in stream order. With a
plan (see video_plan), the stretches are segments between clean keyframes, decoded on
`threads` worker threads, each with its own demuxer and decoder. Packets after the last
needed frame of a keyframe run are not decoded at all, and (H.264/HEVC) other packets whose
frames no sink needs are sent with skip_frame=NONREF, so the decoder drops them unless
later frames refer to them. Every frame the decoder outputs is checked against the plan; any
disagreement, or any decode error, drops the plan and decodes the whole stream again in one
sequential pass that numbers frames by counting them, so hashes never depend on the plan.
"""

from __future__ import annotations

import threading
from typing import Callable, Dict, Iterator, List, Optional, Protocol, Tuple

import numpy as np

from .container import frame_time
from .plan import Segment, StreamPlan, plan_stream


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

    def part(self) -> FramePart:
        """A new part, for one segment of a plan (after wanted()) or, after reset(), the whole stream."""

    def add(self, result: object) -> None:
        """Merge one part's result; parts arrive in stream order."""

    def reset(self) -> None:
        """Forget every result merged so far (the planned decode is being redone sequentially)."""


class _PlanMismatch(Exception):
    """The decoder did not do what the plan predicted: decode sequentially instead."""


def decode_into(open_video: Callable[[], "object"], video: "object", sinks: Dict[str, FrameSink],
                threads: int, reopenable: bool) -> None:
    """Decode `video` (an open VideoReader) once into every sink: planned and parallel if possible."""
    plan = None
    if reopenable:  # the sequential pass may have to start again from a fresh open
        import av

        try:
            tb = video.stream.time_base
            plan = plan_stream(video.container, video.stream,
                               max_pts=int(video.max_duration / tb) + 1 if tb else None)
        except av.error.FFmpegError:
            plan = None  # the sequential pass reports what is wrong with the file
        video.used = True
    if plan is not None:
        try:
            _decode_planned(open_video, video, plan, sinks, max(1, threads))
            return
        except _PlanMismatch:
            for sink in sinks.values():
                sink.reset()
    if video.used:
        with open_video() as fresh:
            _decode_sequential(fresh, sinks)
    else:
        _decode_sequential(video, sinks)


def _decode_sequential(video: "object", sinks: Dict[str, FrameSink]) -> None:
    parts = {name: sink.part() for name, sink in sinks.items()}
    for n, t, frame in video.frames():
        for part in parts.values():
            part.push(n, t, frame)
    for name, part in parts.items():
        sinks[name].add(part.finish())


class _Schedule:
    """Hands segments to the decode threads and their results back to the merge, in stream order.

    Threads take the largest unstarted segment within a window ahead of the merge, so a long
    segment does not start last and leave the other threads idle at the end; the window
    bounds how many results wait to be merged.
    """

    def __init__(self, segments: List[Segment], window: int) -> None:
        self.sizes = [s.end_packet - s.first_packet for s in segments]
        self.window = window
        self.started = [False] * len(segments)
        self.results: Dict[int, Dict[str, object]] = {}
        self.merged = 0
        self.failure: Optional[BaseException] = None
        self.cond = threading.Condition()

    def take(self) -> Optional[int]:
        """The next segment for a decode thread to run; None when there is nothing left."""
        with self.cond:
            while self.failure is None:
                ahead = range(self.merged, min(len(self.sizes), self.merged + self.window))
                todo = [i for i in ahead if not self.started[i]]
                if todo:
                    i = max(todo, key=self.sizes.__getitem__)
                    self.started[i] = True
                    return i
                if all(self.started):
                    return None
                self.cond.wait()
            return None

    def done(self, i: int, result: Dict[str, object]) -> None:
        """Segment i decoded."""
        with self.cond:
            self.results[i] = result
            self.cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """Stop every thread; the merge raises error."""
        with self.cond:
            if self.failure is None:
                self.failure = error
            self.cond.notify_all()

    def next_result(self) -> Dict[str, object]:
        """The next segment's result in stream order (waits for it)."""
        with self.cond:
            while self.merged not in self.results and self.failure is None:
                self.cond.wait()
            if self.failure is not None:
                raise self.failure
            result = self.results.pop(self.merged)
            self.merged += 1
            self.cond.notify_all()
            return result


def _decode_planned(open_video: Callable[[], "object"], video: "object", plan: StreamPlan,
                    sinks: Dict[str, FrameSink], threads: int) -> None:
    wanted = {name: sink.wanted(plan) for name, sink in sinks.items()}
    needed = np.logical_or.reduce(list(wanted.values()))
    workers = min(threads, len(plan.segments))
    schedule = _Schedule(plan.segments, 4 * workers)

    def work(reader: "object") -> None:
        try:
            # Parallel segments keep every core busy; a lone thread gets FFmpeg's slice threads.
            reader.stream.thread_type = "SLICE"
            reader.stream.thread_count = threads if workers == 1 else 1
            # Damage the decoder would conceal is concealed from what came before, which a
            # segment started afresh (or a skipped frame) does not have: make it an error,
            # which sends the video to the sequential pass, where it is concealed as ever.
            reader.stream.codec_context.options = {"err_detect": "explode"}
            while (i := schedule.take()) is not None:
                schedule.done(i, _decode_segment(reader, plan, plan.segments[i], sinks, wanted, needed))
        except BaseException as e:  # noqa: B036 - handed to the merging thread, which raises it
            schedule.fail(e)
        finally:
            if reader is not video:
                reader.close()

    def start(first: bool) -> threading.Thread:
        def run() -> None:
            try:
                reader = video if first else open_video()
            except BaseException as e:  # noqa: B036
                schedule.fail(e)
                return
            work(reader)
        thread = threading.Thread(target=run, name="hashmatch-decode", daemon=True)
        thread.start()
        return thread

    threads_ = [start(k == 0) for k in range(workers)]
    try:
        for _ in plan.segments:
            for name, result in schedule.next_result().items():
                sinks[name].add(result)
    except BaseException as e:
        schedule.fail(e)
        raise
    finally:
        for thread in threads_:
            thread.join()


def _decode_segment(reader: "object", plan: StreamPlan, segment: Segment, sinks: Dict[str, FrameSink],
                    wanted: Dict[str, np.ndarray], needed: np.ndarray) -> Dict[str, object]:
    import av

    a, b = segment.first_packet, segment.end_packet
    ctx = reader.stream.codec_context
    parts = {name: sink.part() for name, sink in sinks.items()}
    send = _packets_to_send(plan, a, b, needed)
    frame_of = plan.packet_frame[a:b]
    # Frames allowed not to come out: those of packets left out, and (NONREF) any frame no hash needs.
    may_miss = np.zeros(segment.end_frame - segment.first_frame, bool)
    unsent = frame_of[~send]
    may_miss[unsent[unsent >= 0] - segment.first_frame] = True
    if plan.can_skip:
        may_miss |= ~needed[segment.first_frame:segment.end_frame]
    check = _OutputCheck(plan, segment, may_miss)
    sent = np.flatnonzero(send)
    if len(sent) == 0:
        check.done()
        return {name: part.finish() for name, part in parts.items()}
    first, last = int(sent[0]), int(sent[-1])
    # NONREF for the packets whose frame no hash needs (discarded packets have no frame).
    skip_nonref = ((frame_of < 0) | ~needed[np.maximum(frame_of, 0)]).tolist() if plan.can_skip else None
    # Plain lists: read once per packet, where numpy scalars cost microseconds each.
    packet_pts, send = plan.packet_pts[a:b].tolist(), send.tolist()
    try:
        packet, packets = _start_of(reader, plan, a + first)
        skipping, gap = None, False
        for i in range(first, last + 1):
            if i > first:
                packet = next(packets, None)
                if packet is None or packet.pts != packet_pts[i]:
                    raise _PlanMismatch
            if not send[i]:
                gap = True  # the rest of this keyframe's run: nothing needed depends on it
                continue
            if gap:  # restart at the clean cut after a left-out run, as after a seek
                _drain(reader, check, parts, wanted)
                ctx.flush_buffers()
                gap = False
            if skip_nonref is not None:
                skip = skip_nonref[i]
                if skip is not skipping:
                    ctx.skip_frame = "NONREF" if skip else "DEFAULT"
                    skipping = skip
            for frame in packet.decode():
                _deliver(reader, check, frame, parts, wanted)
        _drain(reader, check, parts, wanted)
    except (av.error.FFmpegError, IndexError) as e:
        # The sequential pass reports it, exactly as it would without a plan. (IndexError: PyAV's
        # demuxer met a stream that appeared after the file was opened.)
        raise _PlanMismatch from e
    check.done()
    return {name: part.finish() for name, part in parts.items()}


def _packets_to_send(plan: StreamPlan, a: int, b: int, needed: np.ndarray) -> np.ndarray:
    """Packets a..b-1 worth decoding: from each clean cut up to the last one whose frame a hash needs.

    A frame depends only on packets before it in decode order, and nothing after a clean cut
    depends on anything before it, so the packets after the last needed one of each run
    between cuts feed nothing: they are not decoded at all.
    """
    frame_of = plan.packet_frame[a:b]
    want = np.zeros(b - a, bool)
    shown = frame_of >= 0
    want[shown] = needed[frame_of[shown]]
    cuts = plan.cuts[(plan.cuts >= a) & (plan.cuts < b)] - a
    run = np.searchsorted(cuts, np.arange(b - a), side="right") - 1
    last = np.full(len(cuts), -1)
    np.maximum.at(last, run[want], np.flatnonzero(want))
    return np.arange(b - a) <= last[run]


def _drain(reader: "object", check: "_OutputCheck", parts: Dict[str, FramePart], wanted: Dict[str, np.ndarray]
           ) -> None:
    import av

    drain = av.Packet()  # an empty packet drains the decoder; its time base times the frames
    drain.time_base = reader.stream.time_base
    for frame in reader.stream.codec_context.decode(drain):
        _deliver(reader, check, frame, parts, wanted)


def _start_of(reader: "object", plan: StreamPlan, a: int) -> Tuple["object", Iterator["object"]]:
    """Position the reader's demuxer at packet a: (that packet, an iterator over the ones after it)."""
    stream, container = reader.stream, reader.container
    pts, dts = int(plan.packet_pts[a]), int(plan.packet_dts[a])
    # Demuxers index keyframes by pts (MP4, Matroska) or dts: try pts first, which lands on the
    # keyframe itself in the common case, then the lower of the two.
    for target in ((None,) if a == 0 and not reader.used else (pts, min(pts, dts))):
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
    reader.check_frame_size(frame, n)
    t = frame_time(frame, n, reader.start, reader.fps)
    for name, part in parts.items():
        if wanted[name][n]:
            part.push(n, t, frame)


class _OutputCheck:
    """Checks a segment's output frames against the plan: right timestamps, order and durations."""

    def __init__(self, plan: StreamPlan, segment: Segment, may_miss: np.ndarray) -> None:
        a, b = segment.first_frame, segment.end_frame
        self.first = a
        # Plain lists: these are read once per frame, where numpy scalars cost microseconds each.
        self.pts = plan.frame_pts[a:b].tolist()
        self.durations = plan.frame_durations[a:b].tolist()
        self.may_miss = may_miss.tolist()
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
        if k > self.expect and not all(self.may_miss[self.expect:k]):
            raise _PlanMismatch
