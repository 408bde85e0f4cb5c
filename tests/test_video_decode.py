"""The planned, parallel decode gives exactly the hashes of one sequential pass, on every kind of stream.

Paths and bytes are decoded from a demux plan: segments between clean keyframes on
several threads, and packets no hash needs skipped (NONREF). A file object is decoded in
one sequential pass that counts frames; that pass is the oracle here (test_vpdq and
test_tmk check it, and the planned path, against the reference tools).
"""

from __future__ import annotations

import dataclasses
import io
from fractions import Fraction

import numpy as np
import pytest

import hashmatch
from hashmatch.video import decode as video_decode, plan as video_plan
from hashmatch.signals.vpdq import VPDQSampler, frame_step
from videos import encode, textured

FRAMES = 240
STREAMS = {
    # name: (encoder, options, extra encode arguments)
    "x264_bframes.mp4": ("libx264", {"g": "30", "bf": "3", "preset": "veryfast"}, {}),
    "x264_bframes.mkv": ("libx264", {"g": "30", "bf": "3", "preset": "veryfast"}, {}),
    "x264_open_gop.mp4": ("libx264", {"x264-params": "keyint=30:open-gop=1:bframes=3"}, {}),
    "x264_no_bframes.mp4": ("libx264", {"g": "25", "bf": "0"}, {}),
    "x264_vfr.mp4": ("libx264", {"g": "30", "bf": "3"},
                     {"pts": lambda i: i * 33 + (i % 7) * 5 + (i // 40) * 100, "time_base": Fraction(1, 1000)}),
    "x265.mp4": ("libx265", {"x265-params": "log-level=error:keyint=30:bframes=4"}, {}),
    "mpeg4.avi": ("mpeg4", {"g": "30", "bf": "2"}, {}),
    "vp9_altref.webm": ("libvpx-vp9", {"g": "30", "auto-alt-ref": "1", "lag-in-frames": "16",
                                       "deadline": "realtime", "cpu-used": "8"}, {}),
    "mpeg2.ts": ("mpeg2video", {"g": "15", "bf": "2"}, {}),
}


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    d = tmp_path_factory.mktemp("streams")
    frame = textured(7, 160, 120, FRAMES)
    return {name: encode(d / name, frame, FRAMES, 30, codec, options, **extra)
            for name, (codec, options, extra) in STREAMS.items()}


def _sequential(path, **kwargs):
    """The oracle: a file object gets one sequential pass, frames numbered by counting."""
    with open(path, "rb") as f:
        return hashmatch.video_hashes(f, ("vpdq", "tmk_pdqf"), **kwargs)


def _plan_of(path):
    import av

    with av.open(str(path)) as c:
        return video_plan.plan_stream(c, c.streams.video[0])


def _same(a, b):
    assert a.vpdq == b.vpdq
    assert a.tmk.frame_count == b.tmk.frame_count
    # Segments' TMK sums are added in stream order: equal up to float summation order.
    np.testing.assert_allclose(a.tmk.pure_average, b.tmk.pure_average, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.tmk.cos_features, b.tmk.cos_features, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.tmk.sin_features, b.tmk.sin_features, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", sorted(STREAMS))
@pytest.mark.parametrize("seconds_per_hash", [0.5, 0])
def test_planned_decode_equals_one_sequential_pass(streams, name, seconds_per_hash):
    path = streams[name]
    planned = hashmatch.video_hashes(path, ("vpdq", "tmk_pdqf"), seconds_per_hash=seconds_per_hash)
    _same(planned, _sequential(path, seconds_per_hash=seconds_per_hash))
    step = frame_step(planned.info.fps, seconds_per_hash)
    assert [f.frame_number for f in planned.vpdq] == list(range(0, FRAMES, step))


REMUXES = {
    # name: (the system ffmpeg's arguments before and after -i SOURCE): stream copies of x264_bframes.mp4
    "edit_list.mp4": (["-ss", "0.55"], []),  # starts mid-GOP: an edit list, packets marked discard
    "offset.mp4": ([], ["-output_ts_offset", "10"]),  # timestamps start at 10 s
    "two_video_tracks.mkv": ([], ["-map", "0:v", "-map", "0:v"]),
    "with_audio.mp4": ([], ["-f", "lavfi", "-i", "sine=duration=8", "-map", "0:v", "-map", "1:a", "-c:a", "aac"]),
}


@pytest.mark.parametrize("name", sorted(REMUXES))
def test_remuxed_streams_plan_and_decode_as_the_sequential_pass(streams, name, tmp_path):
    import subprocess

    source, out = streams["x264_bframes.mp4"], tmp_path / name
    before, after = REMUXES[name]
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", *before, "-i", str(source), *after, "-c:v", "copy",
                    str(out)], check=True)
    plan = _plan_of(out)
    assert plan is not None and len(plan.segments) > 1
    planned = hashmatch.video_hashes(out, ("vpdq", "tmk_pdqf"), seconds_per_hash=0.5)
    _same(planned, _sequential(out, seconds_per_hash=0.5))
    if name == "edit_list.mp4":
        import av

        with av.open(str(out)) as c:
            assert any(p.is_discard for p in c.demux(c.streams.video[0]))
        assert plan.frame_count < FRAMES - 15


def test_the_plan_splits_and_skips_where_the_stream_allows(streams):
    closed = _plan_of(streams["x264_bframes.mp4"])
    assert closed.frame_count == FRAMES and closed.can_skip
    assert len(closed.segments) >= 4  # a clean keyframe every 30 frames, segments of >= 32
    assert [s.first_frame for s in closed.segments[1:]] == [s.end_frame for s in closed.segments[:-1]]
    assert closed.segments[-1].end_frame == FRAMES
    # MPEG-TS may carry a frame in several packets: split and checked, never skipped.
    assert not _plan_of(streams["mpeg2.ts"]).can_skip
    assert not _plan_of(streams["vp9_altref.webm"]).can_skip  # libvpx has no non-reference skipping


def test_thread_counts_and_inputs_agree(streams):
    path = streams["x264_bframes.mp4"]
    one = hashmatch.video_hashes(path, ("vpdq", "tmk_pdqf"), threads=1)
    for other in (hashmatch.video_hashes(path, ("vpdq", "tmk_pdqf"), threads=3),
                  hashmatch.video_hashes(path.read_bytes(), ("vpdq", "tmk_pdqf"), threads=2),
                  hashmatch.video_hashes(bytearray(path.read_bytes()), ("vpdq", "tmk_pdqf"))):
        _same(one, other)


def test_a_wrong_plan_falls_back_to_the_sequential_pass(streams, monkeypatch):
    path = streams["x264_bframes.mp4"]
    real = video_plan._plan
    fallbacks = []

    def shifted(*args):
        plan = real(*args)
        pts = plan.frame_pts.copy()
        pts[100:] += 1  # frames from 100 on are "expected" one tick late
        return dataclasses.replace(plan, frame_pts=pts)

    original = video_decode._decode_planned

    def spy(*args):
        try:
            return original(*args)
        except video_decode._PlanMismatch:
            fallbacks.append(True)
            raise

    monkeypatch.setattr(video_plan, "_plan", shifted)
    monkeypatch.setattr(video_decode, "_decode_planned", spy)
    _same(hashmatch.video_hashes(path, ("vpdq", "tmk_pdqf")), _sequential(path))
    assert fallbacks == [True]


def test_streams_without_timestamps_get_no_plan(tmp_path):
    raw = encode(tmp_path / "raw.h264", textured(3, 96, 64, 60), 60, 30, "libx264", {"bf": "2"})
    assert _plan_of(raw) is None  # an elementary stream has no pts: frames are counted instead
    planned = hashmatch.video_hashes(raw, ("vpdq", "tmk_pdqf"))
    _same(planned, _sequential(raw))
    assert [f.frame_number for f in planned.vpdq] == list(range(0, 60, frame_step(planned.info.fps, 1.0)))


def _damaged(path, tmp_path, packets):
    """A copy of path with the payload of the given packets (decode-order indexes) overwritten."""
    import av

    with av.open(str(path)) as c:
        where = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size]
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for i in packets:
        pos, size = where[i]
        data[pos + 8:pos + size] = rng.integers(0, 256, size - 8, dtype=np.uint8).tobytes()
    out = tmp_path / f"damaged_{'_'.join(map(str, packets))}.mp4"
    out.write_bytes(bytes(data))
    return out


def _outcome(video):
    try:
        return hashmatch.video_hashes(video, ("vpdq",)).vpdq
    except hashmatch.HashmatchError as e:
        return type(e)


def test_damage_where_no_hash_looks_is_not_decoded_and_elsewhere_is_handled_as_before(streams, tmp_path):
    path = streams["x264_bframes.mp4"]
    plan = _plan_of(path)
    needed = VPDQSampler(30.0, 1.0, 10**6).wanted(plan)
    send = video_decode._packets_to_send(plan, 0, len(plan.packet_pts), needed)
    assert not send.all()  # after each run's last sampled frame, nothing is decoded
    # Damage only packets that are never sent: the planned hashes are those of the intact file.
    left_out = np.flatnonzero(~send)[[0, -1]].tolist()
    assert _outcome(_damaged(path, tmp_path, left_out)) == _outcome(path)
    # Damage a packet every hash needs (a keyframe): the same outcome as one sequential pass.
    hit = _damaged(path, tmp_path, [int(plan.cuts[2])])
    with open(hit, "rb") as f:
        assert _outcome(hit) == _outcome(f)


def test_damage_the_decoder_conceals_at_a_cut_is_concealed_as_in_the_sequential_pass(streams, tmp_path):
    """A flipped bit in a keyframe is concealed from the frames before it: the plan gives way."""
    import av

    path = streams["x264_bframes.mp4"]
    key = int(_plan_of(path).cuts[3])
    with av.open(str(path)) as c:
        pos, size = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size][key]
    intact, data = _outcome(path), path.read_bytes()
    concealed = 0
    for offset in range(size // 4, size, max(1, size // 16)):
        flipped = bytearray(data)
        flipped[pos + offset] ^= 0x10
        sequential = _outcome(io.BytesIO(bytes(flipped)))
        if isinstance(sequential, list) and sequential != intact:
            concealed += 1
            assert _outcome(bytes(flipped)) == sequential
    assert concealed  # at least one flip was concealed rather than refused


@pytest.mark.parametrize("fps, time_base, start", [(10, Fraction(1, 10), Fraction(0)),
                                                    (24, Fraction(1, 12288), Fraction(1, 24)),
                                                    (30, Fraction(1, 15360), Fraction(0)),
                                                    (29.97, Fraction(1, 30000), Fraction(1001, 30000)),
                                                    (60, Fraction(1, 1000), Fraction(7, 1000))])
def test_plan_slots_match_the_frame_by_frame_clock(fps, time_base, start):
    from hashmatch.signals.tmk_sampler import SlotClock, plan_slots

    rng = np.random.default_rng(int(fps))
    tick = Fraction(1, 1) / Fraction(fps).limit_denominator(1001) / time_base  # one frame, in time_base units
    pts = np.cumsum([int(tick * k) for k in rng.integers(0, 4, 300)]).tolist()
    durations = [int(tick) if k else 0 for k in rng.integers(0, 3, 300)]
    first, count = plan_slots(pts, durations, time_base, start, float(fps))
    clock, owner, slots = SlotClock(15, float(fps)), -1, []
    for i, (p, d) in enumerate(zip(pts, durations)):
        before, own = clock.push(max(Fraction(0), p * time_base - start), d * time_base if d else None)
        if owner < 0:
            before, own = 0, before + own
        slots += [owner] * before + [i] * own
        owner = i if own else owner
    expect = [(i, slots.index(i), slots.count(i)) for i in sorted(set(slots))]
    assert [(i, int(first[i]), int(count[i])) for i in np.flatnonzero(count)] == expect
    assert int(count.sum()) == len(slots)
