"""Bad video input gets a clear HashmatchError, quickly and with bounded memory."""

from __future__ import annotations


import numpy as np
import pytest

import hashmatch
from videos import pan, photo, write_video


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("v") / "good.mp4", pan(photo("coffee"), 160, 120, 60), 60, 30)


def test_corrupt_and_not_a_video(tmp_path):
    for data in [np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes(),
                 b"just some text, not a video\n" * 100]:
        p = tmp_path / "bad.mp4"
        p.write_bytes(data)
        with pytest.raises(hashmatch.DecodeError, match="bad.mp4"):
            hashmatch.vpdq(p)
        with pytest.raises(hashmatch.DecodeError):
            hashmatch.vpdq(data)


def test_truncated(good, tmp_path):
    data = good.read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: nothing left to play
    with pytest.raises(hashmatch.DecodeError, match="cut.mp4"):
        hashmatch.vpdq(p)


def _audio_packets(out, stream, count=20):
    import av

    samples = np.zeros((1, 1152), np.int16)
    for _ in range(count):
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 44100
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def test_unknown_codec(good, tmp_path):
    p = tmp_path / "unknown.mp4"
    p.write_bytes(good.read_bytes().replace(b"avc1", b"zzzz"))  # a codec tag FFmpeg has no decoder for
    with pytest.raises(hashmatch.DecodeError, match="no decoder"):
        hashmatch.vpdq(p)
    with pytest.raises(hashmatch.DecodeError, match="no decoder"):
        hashmatch.video_info(p)


def test_zero_frames(tmp_path):
    import av

    p = tmp_path / "empty.mkv"
    with av.open(str(p), "w") as out:
        v = out.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        _audio_packets(out, out.add_stream("mp2", rate=44100))  # a video track that never gets a frame
    with pytest.raises(hashmatch.DecodeError, match="no frames"):
        hashmatch.vpdq(p)


def test_audio_only(tmp_path):
    import av

    p = tmp_path / "audio.mka"
    with av.open(str(p), "w") as out:
        _audio_packets(out, out.add_stream("mp2", rate=44100))
    with pytest.raises(hashmatch.DecodeError, match="no video stream"):
        hashmatch.vpdq(p)


def test_huge_dimensions_refused_from_the_header(tmp_path):
    p = tmp_path / "huge.y4m"
    p.write_bytes(b"YUV4MPEG2 W100000 H100000 F30:1 Ip A1:1 C420jpeg\nFRAME\n" + b"\x80" * 4096)
    # Refused before any frame is allocated (tests/test_limits.py bounds its peak memory).
    with pytest.raises((hashmatch.ResourceLimitError, hashmatch.DecodeError)):
        hashmatch.vpdq(p)


def test_limits_are_configurable(good):
    with pytest.raises(hashmatch.ResourceLimitError, match="max_frame_pixels"):
        hashmatch.vpdq(good, max_frame_pixels=160 * 120 - 1)
    with pytest.raises(hashmatch.ResourceLimitError, match="max_duration"):
        hashmatch.vpdq(good, max_duration=1.0)
    with pytest.raises(hashmatch.ResourceLimitError, match="max_frames"):
        hashmatch.vpdq(good, seconds_per_hash=0, max_frames=10)
    with pytest.raises(hashmatch.InvalidInputError, match="seconds_per_hash"):
        hashmatch.vpdq(good, seconds_per_hash=-1)


def test_missing_and_wrong_types(tmp_path):
    with pytest.raises(hashmatch.MediaNotFoundError):
        hashmatch.vpdq(tmp_path / "missing.mp4")
    with pytest.raises(hashmatch.InputTypeError):
        hashmatch.vpdq(42)
    with pytest.raises(hashmatch.DecodeError):
        hashmatch.vpdq(b"")


class _StreamAppearsLater:
    """A container whose demuxer, like PyAV's on an MPEG-TS that gains a stream, fails with IndexError."""

    def __init__(self, real, after: int = 20) -> None:
        self._real, self._after = real, after

    def __getattr__(self, name):
        return getattr(self._real, name)

    def _fail_after(self, items):
        for i, item in enumerate(items):
            if i == self._after:
                raise IndexError("list index out of range")
            yield item

    def demux(self, *args, **kwargs):
        return self._fail_after(self._real.demux(*args, **kwargs))

    def decode(self, *args, **kwargs):
        return self._fail_after(self._real.decode(*args, **kwargs))


def test_a_stream_appearing_mid_file_is_a_decode_error(good, monkeypatch):
    import av

    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: _StreamAppearsLater(real_open(*a, **k)))
    with open(good, "rb") as stream:
        for video in (good, good.read_bytes(), stream):  # planned and sequential passes alike
            with pytest.raises(hashmatch.DecodeError, match="new stream appeared"):
                hashmatch.video_hashes(video, ("vpdq", "tmk_pdqf"))
