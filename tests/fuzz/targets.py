"""Fuzz targets: every parser and native entry point that takes outside data.

Each target takes arbitrary bytes. The contract it checks: the call succeeds or raises a
``hashmatch.HashmatchError`` (the private ``_core`` may raise ValueError/TypeError, which
the public wrappers translate); anything else escaping a target is a finding. Crashes and
hangs are found by the runner (``run.py``), which runs targets in a child process.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib
from typing import Callable, Dict, List

import numpy as np

import hashmatch
from hashmatch import HashmatchError, _core, formats
from hashmatch import lists as exchange
from hashmatch.signals import vpdq as vpdq_frames
from hashmatch.index import HammingIndex
from hashmatch.signals.tmk import TMK

#: What a target may raise: the library's own errors, and (for the private core) ValueError/TypeError.
PUBLIC_ERRORS = (HashmatchError,)
CORE_ERRORS = (ValueError, TypeError)


class Bytes:
    """Reads structured choices (ints, floats, slices) from fuzzer bytes, zero when exhausted."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out.ljust(n, b"\0")

    def u8(self) -> int:
        return self.take(1)[0]

    def int_in(self, low: int, high: int) -> int:
        span = high - low + 1
        return low + int.from_bytes(self.take(8), "little") % span

    def choice(self, options):
        return options[self.u8() % len(options)]

    def any_int(self) -> int:
        """An int32/int64 edge value or a small one: what overflows and sign bugs are made of."""
        edges = [0, 1, -1, 2, 7, 8, 31, 32, 33, 255, 256, 257, 2 ** 31 - 1, -2 ** 31, 2 ** 32, 2 ** 63 - 1, -2 ** 63]
        return self.choice(edges) if self.u8() % 2 else self.int_in(-300, 300)

    def f64(self) -> float:
        return struct.unpack("<d", self.take(8))[0]

    def rest(self) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out


def _array(b: Bytes, shape, dtype=np.uint8) -> np.ndarray:
    """An array of `shape` filled from the fuzzer bytes, in one of several memory layouts."""
    size = int(np.prod(shape)) if len(shape) else 1
    if size > 1 << 20:  # the harness must not exhaust memory itself: a zero-stride view costs nothing
        return np.broadcast_to(np.zeros((), dtype), shape)
    raw = np.frombuffer(b.take(max(1, min(size, 4096))), np.uint8)
    base = np.resize(raw, size).reshape(shape) if size else np.zeros(shape, np.uint8)
    base = base.astype(dtype, copy=False) if dtype != np.uint8 else base
    layout = b.u8() % 6
    if layout == 1 and base.ndim >= 2:  # Fortran order
        return np.asfortranarray(base)
    if layout == 2 and base.ndim >= 1:  # negative stride
        return base[::-1]
    if layout == 3 and base.ndim >= 2:  # a strided view into a larger array
        big = np.repeat(np.repeat(base, 2, axis=0), 2, axis=1)
        return big[::2, ::2]
    if layout == 4 and base.ndim >= 1 and base.size:  # broadcast: zero strides
        return np.broadcast_to(base[:1], base.shape)
    if layout == 5:  # read-only
        base = base.copy()
        base.setflags(write=False)
    return base


# ----- public parsers -----------------------------------------------------------------

def image_pdq(data: bytes) -> None:
    """Decode bytes as an image and hash them (Pillow + the core)."""
    h = hashmatch.pdq(data)
    assert len(h.hex) == 64 and 0 <= h.quality <= 100


def image_media(data: bytes) -> None:
    """Bytes as a query: sniffing, the image decoders (HEIC/AVIF included) and animated frames as vPDQ."""
    from hashmatch.pipeline.records import query_of

    query = query_of(data)
    assert "pdq" in query.values


def pdq_hex(data: bytes) -> None:
    """PDQ hex parsing, and distances between parsed hashes."""
    text = data.decode("latin-1")
    h = hashmatch.PDQ.from_hex(text)
    assert hashmatch.PDQ.from_hex(h.hex) == h
    assert hashmatch.distance(h, text) == 0


def vpdq_text(data: bytes) -> None:
    """The reference vPDQ text lines and python-threatexchange's signal string, both ways."""
    text = data.decode("utf-8", "replace")
    for parse in (vpdq_frames.loads, vpdq_frames.from_signal):
        try:
            frames = parse(text)
        except HashmatchError:
            continue
        vpdq_frames.loads(vpdq_frames.dumps(frames))
        vpdq_frames.from_signal(vpdq_frames.to_signal(frames))
        vpdq_frames.match(frames, frames)


def format_codecs(data: bytes) -> None:
    """formats.loads for each registered format (text and bytes), then dumps and validate."""
    names = formats.names()
    name = names[data[0] % len(names)] if data else names[0]
    body = data[1:]
    value = body if (data[:1] and data[0] & 0x80) or formats.get(name).binary else body.decode("utf-8", "replace")
    parsed = formats.loads(name, value)
    out = formats.dumps(name, parsed)
    formats.validate(name, out)
    if formats.get(name).matchable:
        formats.distance(name, parsed, parsed)


def tmk_file(data: bytes) -> None:
    """The .tmk reader (bytes and stream), then both scores against itself."""
    t = TMK.from_bytes(data)
    assert TMK.read(io.BytesIO(data)) == t
    t.level1(t)
    t.level2(t)


def exchange_import(data: bytes) -> None:
    """Hash-list import: JSON Lines, CSV, 'format value' lists, vPDQ text and .tmk, sniffed from content."""
    exchange.read_bytes(data, "fuzz")


_INDEX_DIR = tempfile.mkdtemp(prefix="hashmatch-fuzz-")


def video(data: bytes) -> None:
    """A video from bytes: the demux plan, the parallel segment decode (or the sequential pass), every hash."""
    hashmatch.video_hashes(data, ("vpdq", "tmk_pdqf", "video_md5"), seconds_per_hash=0.2, threads=2)


def index_file(data: bytes) -> None:
    """The HammingIndex file loader (load and load_if_tagged), then a search of what loaded."""
    path = os.path.join(_INDEX_DIR, f"index-{os.getpid()}")
    with open(path, "wb") as f:
        f.write(data)
    if len(data) >= 24:
        HammingIndex.load_if_tagged(path, tag=struct.unpack_from("<q", data, 16)[0])
    index = HammingIndex.load(path)
    index.range_search(np.zeros((1, 32), np.uint8), radius=31)


def index_file_seeds() -> List[bytes]:
    """Valid index files (tagged and not) to mutate."""
    out = []
    for n, tag in [(0, None), (3, 7), (40, -1)]:
        index = HammingIndex()
        rng = np.random.default_rng(n)
        if n:
            index.add(rng.integers(0, 256, (n, 32), dtype=np.uint8), np.arange(n) * 3 - 5)
        path = os.path.join(_INDEX_DIR, "seed")
        index.save(path, tag=tag)
        with open(path, "rb") as f:
            out.append(f.read())
    return out


# ----- the native core through the bindings --------------------------------------------

def core_pdq(data: bytes) -> None:
    """pdq_hash, pdq_hash_dihedral, pdq_hash_many and pdq_features on arbitrary shapes, layouts and values."""
    b = Bytes(data)
    op = b.u8() % 4
    ndim = b.choice([2, 3, 3, 1, 4, 0])
    shape = tuple(b.choice([0, 1, 2, 3, 4, 5, 16, 63, 64, 65, 127, 128, 129, 200]) for _ in range(ndim))
    if ndim == 3:
        shape = shape[:2] + (b.choice([1, 3, 4, 2, 5, 0]),)
    dtype = b.choice([np.uint8, np.uint8, np.uint8, np.float32, np.int16, np.bool_])
    if op == 3:
        dtype = b.choice([np.float32, np.float32, np.float64, np.uint8])
    arr = _array(b, shape, dtype)
    if op == 3 and dtype != np.uint8 and 0 < arr.size <= 1 << 20:
        arr = arr.astype(np.float32) * np.float32(b.choice([1.0, -1.0, 1e30, np.nan, np.inf, 1e-30]))
    if op == 0:
        bits, q = _core.pdq_hash(arr)
        assert len(bits) == 32 and 0 <= q <= 100
    elif op == 1:
        hashes, q = _core.pdq_hash_dihedral(arr)
        assert len(hashes) == 8
    elif op == 2:
        items = [arr] * b.int_in(0, 3)
        if b.u8() % 8 == 0:
            items.append(b.choice([None, 3, "x", np.zeros(3, np.float64)]))
        _core.pdq_hash_many(items, b.any_int(), bool(b.u8() % 2))
    else:
        _core.pdq_features(arr)


def core_tmk(data: bytes) -> None:
    """The TMK kernels: coefficients, ingest into running sums, finish, level-1 and level-2 scores."""
    b = Bytes(data)
    op = b.u8() % 5
    periods = np.array([b.choice([1, 2, 3, 5, 17, 100, 0, -1, 2731, 2 ** 31 - 1])
                        for _ in range(b.int_in(0, 3))], np.int32)
    m = b.choice([1, 2, 4, 0, -1, 32, 5000, 2 ** 31 - 1])
    dim = b.choice([1, 3, 256, 0, -1, 70000])
    if op == 0:
        _core.tmk_kernel_coefficients(b.any_int(), b.f64())
    elif op == 1:
        k = b.int_in(0, 2)
        frames = _array(b, (k, b.choice([1, 2, 5, 64]), b.choice([1, 2, 5, 64]), b.choice([3, 3, 1])))
        n = b.int_in(0, 4)
        index = np.array([b.int_in(-1, 3) for _ in range(n)], np.int32)
        times = np.array([b.any_int() for _ in range(b.choice([n, n, n + 1]))], np.int64)
        block = max(0, len(periods)) * max(0, m if m < 64 else 1) * 256
        sums = [np.zeros(s, b.choice([np.float64, np.float64, np.float32])) for s in (256, block, block)]
        _core.tmk_ingest(frames, index, times, periods, m, *sums)
    elif op == 2:
        size = max(0, len(periods)) * max(0, m if m < 64 else 1) * max(0, dim if dim < 300 else 1)
        vecs = [np.frombuffer(b.take(8 * size), np.float64) if size else np.zeros(0) for _ in range(3)]
        coeffs = np.frombuffer(b.take(4 * max(0, m if m < 64 else 1)), np.float32)
        _core.tmk_finish(periods, coeffs, b.any_int(), np.zeros(max(0, dim if dim < 300 else 1)), vecs[1], vecs[2])
    elif op == 3:
        n = b.int_in(0, 300)
        a = np.frombuffer(b.take(4 * n), np.float32)
        c = np.frombuffer(b.take(4 * n), np.float32) if b.u8() % 4 else np.zeros(b.int_in(0, 5), np.float32)
        _core.tmk_level1(a, c)
    else:
        mm, dd = max(1, min(m, 4)), max(1, min(dim, 8))
        size = len(periods) * mm * dd
        vecs = [np.frombuffer(b.take(4 * size), np.float32) for _ in range(4)]
        _core.tmk_level2(periods, m if b.u8() % 3 == 0 else mm, dd, *vecs)


def core_hamming(data: bytes) -> None:
    """The native Hamming index: options, add/remove, range and k-NN search with arbitrary arguments."""
    b = Bytes(data)
    index = _core.HammingIndex(b.choice([0, 1, 4, 64, 2 ** 62]), b.choice([0, 1, 4, 1000]),
                               b.choice([0, 8, 9, 16, 31, 32, 33, 256, 1, -1, 257]), bool(b.u8() % 2),
                               bool(b.u8() % 2))
    for _ in range(b.int_in(0, 6)):
        op = b.u8() % 4
        if op == 0:
            n = b.int_in(0, 40)
            codes = _array(b, (n, b.choice([32, 32, 32, 31, 0])))
            ids = np.array([b.int_in(-3, 60) for _ in range(b.choice([n, n, n - 1 if n else 1]))], np.int64)
            index.add(np.ascontiguousarray(codes) if b.u8() % 2 else codes, ids)
        elif op == 1:
            index.remove(np.array([b.int_in(-3, 60) for _ in range(b.int_in(0, 5))], np.int64))
        elif op == 2:
            q = _array(b, (b.int_in(0, 4), 32))
            lims, dist, ids = index.range_search(q, b.any_int(), b.choice([0, 1, 2, -1, 64]))
            assert len(lims) == len(q) + 1 and lims[-1] == len(ids) == len(dist)
        else:
            q = _array(b, (b.int_in(0, 3), 32))
            index.knn(q, b.choice([1, 2, 5, 100, 0, -1, 2 ** 31 - 1]), b.choice([0, 1, 2, -7]))
    index.export_rows()
    assert index.memory_bytes() >= 0


# ----- seeds and the registry ------------------------------------------------------------

def _image_seeds() -> List[bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    out = []
    for fmt, mode in [("PNG", "RGB"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"),
                      ("WEBP", "RGB"), ("PNG", "LA"), ("PNG", "I;16"), ("ICO", "RGBA"), ("PPM", "RGB"),
                      ("HEIF", "RGB"), ("AVIF", "RGB")]:
        buf = io.BytesIO()
        im = Image.fromarray(pixels).convert(mode)
        try:
            im.save(buf, fmt)
        except (OSError, KeyError, ValueError):
            continue
        out.append(buf.getvalue())
    # Animations: GIF, APNG and WebP of 4 frames with their own delays.
    frames = [Image.fromarray(np.roll(pixels, 3 * i, axis=1)) for i in range(4)]
    for fmt in ("GIF", "PNG", "WEBP"):
        buf = io.BytesIO()
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=[40, 0, 120, 60], loop=0)
        out.append(buf.getvalue())
    # A PNG whose header claims 50,000 x 50,000 pixels.
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    out.append(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0))
               + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return out


_HEX = "f8f8f0cee0f4a84f06370a32038f2f064f1f0e0e2e0e0c3c3c1c3d3d0f1f1e1e"


def _tmk_seed() -> bytes:
    p, m, d = 2, 3, 4
    rng = np.random.default_rng(1)
    t = TMK("PDQF", 15, 10, np.array([3, 5]), rng.random(m), rng.random(d), rng.random((p, m, d)),
            rng.random((p, m, d)))
    return t.to_bytes()


def _text_seeds() -> List[bytes]:
    vpdq_lines = f"0,100,{_HEX},0.000\n30,90,{_HEX[::-1]},1.000\n"
    signal = f'["{_HEX},100,0.0", "{_HEX[::-1]},90,1.0"]'
    jsonl = ('{"media_type": "image", "uid": "' + "a" * 32 + '", "labels": ["x"], "updated": 5, '
             '"fingerprints": [{"format": "pdq", "value": "' + _HEX + '", "quality": 90}]}\n'
             '{"media_type": "video", "fingerprints": [{"format": "tmk_pdqf", "data": "'
             + __import__("base64").b64encode(_tmk_seed()).decode() + '"}]}\n')
    csv_text = f"pdq,quality,external_id,labels\n{_HEX},90,a1,x;y\n{_HEX[::-1]},,a2,\n"
    listing = f"# partner list\npdq {_HEX}\nmd5 d41d8cd98f00b204e9800998ecf8427e\n{_HEX}\nvpdq {signal}\n"
    return [s.encode() for s in (vpdq_lines, signal, jsonl, csv_text, listing, _HEX)]


def _format_seeds() -> List[bytes]:
    out = []
    for i, name in enumerate(formats.names()):
        value = {"pdq": _HEX.encode(), "vpdq": _text_seeds()[1], "tmk_pdqf": _tmk_seed(),
                 "md5": b"d41d8cd98f00b204e9800998ecf8427e"}.get(name, b"0123456789abcdef" * 4)
        out.append(bytes([i]) + value)
    return out


def _video_seeds() -> List[bytes]:
    """Tiny clips with B-frames and short GOPs (several segments, skipped frames) in four containers."""
    import av

    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    out = []
    for fmt, codec, options in [("mp4", "libx264", {"g": "6", "bf": "2"}), ("matroska", "libx264", {"g": "6"}),
                                ("webm", "libvpx-vp9", {"g": "6", "deadline": "realtime"}),
                                ("mpegts", "mpeg2video", {"g": "6", "bf": "2"})]:
        buf = io.BytesIO()
        with av.open(buf, "w", format=fmt) as c:
            stream = c.add_stream(codec, rate=10, options=options)
            stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
            for i in range(24):
                img = np.kron(np.roll(base, i, axis=1), np.ones((4, 4, 1), np.uint8))
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(packet)
            for packet in stream.encode():
                c.mux(packet)
        out.append(buf.getvalue())
    return out


def _core_seeds() -> List[bytes]:
    rng = np.random.default_rng(2)
    return [bytes(rng.integers(0, 256, n, dtype=np.uint8)) for n in (16, 64, 256, 1024, 4096)]


TARGETS: Dict[str, Callable[[bytes], None]] = {
    "image_pdq": image_pdq,
    "image_media": image_media,
    "pdq_hex": pdq_hex,
    "vpdq_text": vpdq_text,
    "format_codecs": format_codecs,
    "tmk_file": tmk_file,
    "exchange_import": exchange_import,
    "index_file": index_file,
    "video": video,
    "core_pdq": core_pdq,
    "core_tmk": core_tmk,
    "core_hamming": core_hamming,
}

SEEDS: Dict[str, Callable[[], List[bytes]]] = {
    "image_pdq": _image_seeds,
    "image_media": _image_seeds,
    "pdq_hex": lambda: [_HEX.encode(), b"  " + _HEX.upper().encode() + b"\n", b"zz" * 32],
    "vpdq_text": _text_seeds,
    "format_codecs": _format_seeds,
    "tmk_file": lambda: [_tmk_seed()],
    "exchange_import": lambda: _text_seeds() + [_tmk_seed()],
    "index_file": index_file_seeds,
    "video": _video_seeds,
    "core_pdq": _core_seeds,
    "core_tmk": _core_seeds,
    "core_hamming": _core_seeds,
}


def allowed_errors(target: str) -> tuple:
    """The exception types target may raise on bad input."""
    return CORE_ERRORS if target.startswith("core_") else PUBLIC_ERRORS


def run_one(target: str, data: bytes) -> None:
    """Run target on data; raise AssertionError naming the input if it breaks the contract."""
    try:
        TARGETS[target](data)
    except allowed_errors(target):
        pass
