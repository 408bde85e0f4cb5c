"""Resource bounds: hostile headers and lines are refused from what they claim, in bounded memory.

Each refusal runs in a fresh interpreter that reports its peak resident memory before and after
(``ru_maxrss``), so "bounded" is measured, not assumed: every case below claims gigabytes.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

import hashmatch
from hashmatch import HashFormatError, ResourceLimitError
from hashmatch import lists as exchange
from hashmatch.index import HammingIndex
from hashmatch.signals.tmk import TMK, TMK_HEADER as _HEADER, TMK_MAGIC as _MAGIC

# Peak RSS growth allowed for a refusal: the largest legitimate working set here is a 16 MiB
# line bound plus one 1 MiB read chunk; anything that started to honour a claim would be >= 1 GiB.
_BOUND_MB = 64


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _y4m(width: int, height: int, rate: str = "30:1", frames: int = 1) -> bytes:
    frame = b"FRAME\n" + b"\x80" * 4096
    return f"YUV4MPEG2 W{width} H{height} F{rate} Ip A1:1 C420jpeg\n".encode() + frame * frames


def _refusal(setup: str, call: str) -> dict:
    """Run `call` in a fresh interpreter after `setup` and a warm-up; its error type and peak RSS growth."""
    code = textwrap.dedent(f"""
        import json, resource, sys
        import numpy as np
        import hashmatch
        hashmatch.pdq(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))  # warm up
        {setup}
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        error = None
        try:
            {call}
        except Exception as e:
            error = [type(e).__name__, str(e), isinstance(e, hashmatch.HashmatchError)]
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"error": error, "growth_mb": (after - before) / 1024}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_png_claiming_50000_squared_is_refused_from_its_header():
    result = _refusal(f"data = {_png_header(50_000, 50_000)!r}", "hashmatch.pdq(data)")
    assert result["error"][0] == "ResourceLimitError" and "max_pixels" in result["error"][1]
    assert result["growth_mb"] < _BOUND_MB
    # With a limit above Pillow's own bomb check, Pillow refuses first: still a ResourceLimitError.
    result = _refusal(f"data = {_png_header(50_000, 50_000)!r}", "hashmatch.pdq(data, max_pixels=10**10)")
    assert result["error"][0] == "ResourceLimitError" and result["growth_mb"] < _BOUND_MB


def test_video_claiming_100000_squared_frames_is_refused_before_decoding(tmp_path):
    # FFmpeg itself refuses frame sizes past ~16k x 16k (av_image_check_size) while opening:
    # that arrives as a DecodeError, still without touching the claimed size.
    (tmp_path / "huge.y4m").write_bytes(_y4m(100_000, 100_000))
    result = _refusal(f"path = {str(tmp_path / 'huge.y4m')!r}", "hashmatch.vpdq(path)")
    assert result["error"][2], result  # a HashmatchError
    assert result["growth_mb"] < _BOUND_MB
    # Below FFmpeg's cap, our max_frame_pixels refuses from the header: a 16000x16000 RGB frame is 768 MB.
    (tmp_path / "big.y4m").write_bytes(_y4m(16_000, 16_000))
    for fn in ("vpdq", "tmk", "video_hashes", "video_info"):
        result = _refusal(f"path = {str(tmp_path / 'big.y4m')!r}", f"hashmatch.{fn}(path)")
        assert result["error"][0] == "ResourceLimitError" and "max_frame_pixels" in result["error"][1], result
        assert result["growth_mb"] < _BOUND_MB


def test_video_running_past_max_duration_stops_at_the_first_late_frame():
    # One frame every 100,000 s: the container cannot say the duration, the frame timestamps do.
    with pytest.raises(ResourceLimitError, match="max_duration"):
        hashmatch.vpdq(_y4m(64, 64, rate="1:100000", frames=3))


def test_one_gigabyte_list_line_is_refused_from_a_sparse_file(tmp_path):
    path = tmp_path / "huge-line.txt"
    with open(path, "wb") as f:
        f.write(b"pdq ")
        f.truncate(1 << 30)  # sparse: 1 GiB on paper, nothing on disk
    result = _refusal("from hashmatch import lists as exchange", f"exchange.read_file({str(path)!r})")
    assert result["error"][0] == "ResourceLimitError" and "max_line_bytes" in result["error"][1], result
    assert result["error"][1].startswith(f"{path}:1:")
    assert result["growth_mb"] < _BOUND_MB


class _EndlessLine(io.RawIOBase):
    """A stream that claims a line without end: it never runs out of bytes and never sends a newline."""

    def __init__(self, lines_before: int = 0) -> None:
        self.head = b"".join(b"pdq " + b"ab" * 32 + b"\n" for _ in range(lines_before))
        self.served = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        assert n > 0, "the reader must read in chunks, never to the end"
        out = (self.head[self.served:self.served + n] or b"x" * n)[:n]
        self.served += len(out)
        return out


def test_endless_line_from_a_stream_stops_after_the_bound():
    stream = _EndlessLine(lines_before=3)
    with pytest.raises(ResourceLimitError, match=r"^<stream>:4: .*max_line_bytes=1,000"):
        exchange.read_stream(stream, "<stream>", max_line_bytes=1000)
    assert stream.served <= 2 << 20  # at most the chunk that crossed the bound
    stream = _EndlessLine()
    with pytest.raises(ResourceLimitError):
        exchange.read_stream(stream, "<stream>")
    assert stream.served <= exchange.DEFAULT_MAX_LINE_BYTES + (1 << 20)


def test_line_bound_applies_to_bytes_and_is_configurable():
    hex_ = "ab" * 32
    data = f"pdq {hex_}\n".encode() * 3
    assert len(exchange.read_bytes(data, "l.txt")) == 3
    with pytest.raises(ResourceLimitError, match="^l.txt:1: "):
        exchange.read_bytes(data, "l.txt", max_line_bytes=10)
    assert len(exchange.read_bytes(data, "l.txt", max_line_bytes=len("pdq ") + 64)) == 3
    # A line exactly at the bound is read; one byte more is refused, wherever the chunks split.
    long_line = b"# " + b"x" * ((1 << 20) + 5)
    assert exchange.read_bytes(long_line + b"\n" + data, "c.txt", max_line_bytes=len(long_line)) != []
    with pytest.raises(ResourceLimitError, match="^c.txt:1: "):
        exchange.read_bytes(long_line + b"\n" + data, "c.txt", max_line_bytes=len(long_line) - 1)


def _tmk_header(p: int, m: int, d: int) -> bytes:
    return _HEADER.pack(_MAGIC, b"PDQF", 15, p, m, d, 10)


def test_tmk_claiming_two_gigabytes_is_refused_from_its_header(tmp_path):
    path = tmp_path / "huge.tmk"
    with open(path, "wb") as f:
        f.write(_tmk_header(64, 1024, 4096))
        f.truncate(2_200_000_000)  # sparse, and as long as the header says
    result = _refusal("from hashmatch import lists as exchange, TMK", f"exchange.read_file({str(path)!r})")
    assert result["error"][0] == "ResourceLimitError" and "max_bytes" in result["error"][1], result
    assert result["growth_mb"] < _BOUND_MB
    result = _refusal("from hashmatch import TMK", f"TMK.read({str(path)!r})")
    assert result["error"][0] == "ResourceLimitError" and result["growth_mb"] < _BOUND_MB
    with pytest.raises(ResourceLimitError):
        TMK.from_bytes(_tmk_header(64, 1024, 4096))


def test_tmk_size_bound_is_configurable():
    rng = np.random.default_rng(0)
    t = TMK("PDQF", 15, 10, np.array([3, 5]), rng.random(4), rng.random(8), rng.random((2, 4, 8)),
            rng.random((2, 4, 8)))
    data = t.to_bytes()
    assert TMK.from_bytes(data, max_bytes=len(data)) == t
    assert TMK.read(io.BytesIO(data), max_bytes=len(data)) == t
    with pytest.raises(ResourceLimitError, match="max_bytes"):
        TMK.read(io.BytesIO(data), max_bytes=len(data) - 1)
    with pytest.raises(ResourceLimitError):
        exchange.read_bytes(data, "t.tmk", max_tmk_bytes=len(data) - 1)
    assert len(exchange.read_bytes(data, "t.tmk", max_tmk_bytes=len(data))) == 1


def test_tmk_periods_that_would_hang_level2_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(hashmatch.InvalidInputError, match="periods must be at most"):
        TMK("PDQF", 15, 10, np.array([2 ** 31 - 1]), rng.random(2), rng.random(2), rng.random((1, 2, 2)),
            rng.random((1, 2, 2)))
    with pytest.raises(hashmatch.InvalidInputError, match="level-2 work"):
        TMK("PDQF", 15, 10, np.array([2 ** 20] * 40), rng.random(2), rng.random(2), rng.random((40, 2, 2)),
            rng.random((40, 2, 2)))
    # The reference's own shape is far inside the bound.
    ref = TMK("PDQF", 15, 10, np.array([2731, 4391, 9767, 14653]), rng.random(32), rng.random(256),
              rng.random((4, 32, 256)), rng.random((4, 32, 256)))
    assert TMK.from_bytes(ref.to_bytes()).level2(ref) > 0.99
    for period in (2 ** 31 - 1, 2 ** 28):  # 2**28 passes the work bound with 1 coefficient: 4 GiB of tables
        with pytest.raises(ValueError, match="too large"):
            hashmatch._core.tmk_level2(np.array([period], np.int32), 1, 1, *[np.ones(1, np.float32)] * 4)


def test_index_file_claiming_huge_count_is_refused_without_reading(tmp_path):
    path = tmp_path / "claims.idx"
    path.write_bytes(struct.pack("<8sIIqQ", b"HMHAMIDX", 1, 0, 0, 2 ** 60) + b"\0" * 64)
    with pytest.raises(HashFormatError, match="header implies"):
        HammingIndex.load(path)


def test_knn_result_bound():
    index = HammingIndex()
    index.add(np.zeros((3, 32), np.uint8), [1, 2, 3])
    with pytest.raises(ResourceLimitError, match="smaller k"):
        index.search(np.zeros((2, 32), np.uint8), k=2 ** 31 - 1)
    d, i = index.search(np.zeros((2, 32), np.uint8), k=5)
    assert d.shape == (2, 5) and i[0].tolist() == [1, 2, 3, -1, -1]


def test_thread_counts_past_the_limit_are_clamped_not_fatal():
    # Thousands of requested threads used to be started as asked; past the process limit that
    # threw from std::thread with workers running, which is std::terminate.
    index = hashmatch._core.HammingIndex(0, 0)
    index.add(np.zeros((4, 32), np.uint8), np.arange(4, dtype=np.int64))
    lims, _, ids = index.range_search(np.zeros((5000, 32), np.uint8), 0, 2 ** 31 - 1)
    assert lims[-1] == 5000 * 4 and set(ids.tolist()) == {0, 1, 2, 3}


def _m4v(size: int, frames: int = 3) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="m4v") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        rng = np.random.default_rng(size)
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def test_frames_larger_than_the_header_claims_are_refused_when_decoded():
    # The stream header says 32x32; three frames later the stream switches to 128x128.
    data = _m4v(32) + _m4v(128)
    assert hashmatch.video_info(data, max_frame_pixels=32 * 32).width == 32
    assert len(hashmatch.vpdq(data, seconds_per_hash=0)) == 6
    for fn in (hashmatch.vpdq, hashmatch.tmk):
        with pytest.raises(ResourceLimitError, match="frame 3 is 128x128"):
            fn(data, max_frame_pixels=32 * 32)


def test_core_checks_shapes_before_converting_a_broadcast_array():
    # 129**4 zero-stride uint8 elements: converting first would copy 1.1 GB of float32.
    result = _refusal("from hashmatch import _core",
                      "_core.pdq_features(np.broadcast_to(np.zeros((), np.uint8), (129,) * 4))")
    assert result["error"][0] == "ValueError" and "2-D" in result["error"][1], result
    assert result["growth_mb"] < _BOUND_MB
