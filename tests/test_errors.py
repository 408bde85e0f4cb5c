"""Bad input raises a clear HashmatchError subclass, never a crash."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import hashmatch
from hashmatch import (
    DecodeError,
    HashFormatError,
    HashmatchError,
    InputTypeError,
    InvalidInputError,
    MediaNotFoundError,
    ResourceLimitError,
)


def _jpeg(size=(300, 200)) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height and whose data is a few bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((10, 0), np.uint8), "empty"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10, 3), np.uint16), "uint8"),
        (np.zeros((10, 10, 3), bool), "uint8"),
        (np.zeros((10, 10, 2), np.uint8), "shape"),
        (np.zeros((10, 10, 3, 1), np.uint8), "shape"),
        (np.zeros(10, np.uint8), "shape"),
        (np.zeros((), np.uint8), "shape"),
    ],
)
def test_bad_arrays(array, message):
    with pytest.raises(InvalidInputError, match=message):
        hashmatch.pdq(array)


def test_float_array_error_names_the_fix():
    with pytest.raises(InvalidInputError, match=r"astype\(np.uint8\)"):
        hashmatch.pdq(np.zeros((10, 10), np.float64))


@pytest.mark.parametrize("value", [123, None, 1.5, ["a.jpg"], {"path": "a"}])
def test_wrong_types(value):
    with pytest.raises(InputTypeError, match="path, bytes"):
        hashmatch.pdq(value)


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(MediaNotFoundError):
        hashmatch.pdq(tmp_path / "nope.jpg")
    with pytest.raises(InvalidInputError, match="directory"):
        hashmatch.pdq(tmp_path)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is text and not an image\n" * 10,
        bytes(range(256)) * 8,
        _jpeg()[:200],       # truncated inside the header
        _jpeg()[: len(_jpeg()) // 2],  # truncated inside the scan
        _png_header(64, 64)[:30],
        b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
        b"GIF89a" + b"\xff" * 40,
    ],
)
def test_corrupt_truncated_and_non_images(data, tmp_path):
    with pytest.raises(DecodeError):
        hashmatch.pdq(data)
    path = tmp_path / "bad.jpg"
    path.write_bytes(data)
    with pytest.raises(DecodeError, match="bad.jpg"):
        hashmatch.pdq(path)


def test_png_with_corrupt_data_is_a_decode_error():
    png = bytearray(_png_header(64, 64))
    png[-30] ^= 0xFF  # inside the compressed data
    with pytest.raises(DecodeError):
        hashmatch.pdq(bytes(png))


def test_decompression_bomb_refused_quickly():
    bomb = _png_header(50_000, 50_000)
    # Refused from the header, nothing decoded (tests/test_limits.py bounds its peak memory).
    with pytest.raises(ResourceLimitError, match="max_pixels"):
        hashmatch.pdq(bomb)
    with pytest.raises(ResourceLimitError):
        hashmatch.pdq(_jpeg((300, 200)), max_pixels=300 * 200 - 1)
    assert hashmatch.pdq(_jpeg((300, 200)), max_pixels=300 * 200).quality > 0
    with pytest.raises(ResourceLimitError):
        hashmatch.pdq(np.zeros((100, 100), np.uint8), max_pixels=9_999)
    with pytest.raises(ResourceLimitError):
        hashmatch.pdq(Image.new("RGB", (100, 100)), max_pixels=9_999)


@pytest.mark.parametrize(
    "text", ["", "abc", "0" * 63, "0" * 65, "g" * 64, "0x" + "0" * 62, "0" * 32 + " " + "0" * 31]
)
def test_malformed_hash_strings(text):
    with pytest.raises(HashFormatError):
        hashmatch.PDQ.from_hex(text)
    with pytest.raises(HashFormatError):
        hashmatch.distance(text, "0" * 64)


def test_bad_hash_values():
    with pytest.raises(HashFormatError):
        hashmatch.PDQ(b"\0" * 31)
    with pytest.raises(HashFormatError):
        hashmatch.PDQ(b"\0" * 32, quality=101)
    with pytest.raises(InputTypeError):
        hashmatch.PDQ.from_hex(b"00" * 32)
    with pytest.raises(InputTypeError):
        hashmatch.distance(12, "0" * 64)


def test_every_error_is_a_hashmatch_error():
    for cls in [DecodeError, HashFormatError, InputTypeError, InvalidInputError, MediaNotFoundError,
                ResourceLimitError]:
        assert issubclass(cls, HashmatchError)


def test_core_rejects_bad_buffers_without_crashing():
    from hashmatch import _core

    for bad in [np.zeros((4, 4), np.float32), np.zeros((0, 4), np.uint8), np.zeros((4, 4, 2), np.uint8),
                np.zeros(4, np.uint8)]:
        with pytest.raises(ValueError):
            _core.pdq_hash(bad)
