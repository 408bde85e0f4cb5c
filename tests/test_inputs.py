"""Every natural input form hashes the same, and options behave as documented."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import hashmatch


@pytest.fixture()
def rgb(photos):
    return photos["astronaut"] if "astronaut" in photos else next(v for v in photos.values() if v.ndim == 3)


def _png(pixels: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", **save)
    return buf.getvalue()


def test_path_bytes_file_pil_and_array_agree(rgb, tmp_path):
    data = _png(rgb)
    path = tmp_path / "a.png"
    path.write_bytes(data)
    expected = hashmatch.pdq(rgb)
    forms = [str(path), path, data, bytearray(data), memoryview(data), io.BytesIO(data), Image.fromarray(rgb)]
    for form in forms:
        assert hashmatch.pdq(form) == expected, type(form).__name__
    assert expected.quality == 100 and len(expected.bits) == 32 and len(expected.hex) == 64


def test_modes_are_converted_like_pillow_rgb(rgb):
    im = Image.fromarray(rgb)
    for mode in ["L", "P", "LA", "RGBA", "CMYK", "I", "F", "1", "I;16", "YCbCr"]:
        converted = im.convert(mode)
        expected = hashmatch.pdq(np.asarray(converted.convert("RGB")))
        assert hashmatch.pdq(converted) == expected, mode


def test_gray_and_rgba_arrays(rgb):
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    assert hashmatch.pdq(gray) == hashmatch.pdq(np.stack([gray] * 3, -1))
    assert hashmatch.pdq(gray[:, :, None]) == hashmatch.pdq(gray)
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    assert hashmatch.pdq(np.dstack([rgb, alpha])) == hashmatch.pdq(rgb)


def test_exif_transpose_is_opt_in(rgb):
    im = Image.fromarray(rgb[:, :400])
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95, exif=exif)
    data = buf.getvalue()
    stored = hashmatch.pdq(data)
    displayed = hashmatch.pdq(data, exif_transpose=True)
    assert stored == hashmatch.pdq(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    assert displayed == hashmatch.pdq(np.rot90(np.asarray(Image.open(io.BytesIO(data))), -1))
    assert stored.distance(displayed) > 31


def test_fast_decode_on_large_jpeg_is_close(rgb):
    big = np.asarray(Image.fromarray(rgb).resize((3000, 2400), Image.BICUBIC))
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    full = hashmatch.pdq(data)
    fast = hashmatch.pdq(data, fast_decode=True)
    assert full != fast  # a reduced DCT scale really was used
    assert full.distance(fast) <= 16
    # Small JPEGs and other formats are decoded in full either way.
    small = io.BytesIO()
    Image.fromarray(rgb).save(small, "JPEG", quality=90)
    assert hashmatch.pdq(small.getvalue(), fast_decode=True) == hashmatch.pdq(small.getvalue())


def test_pdq_many_keeps_order_and_matches_pdq(photos):
    images = list(photos.values()) * 3
    expected = [hashmatch.pdq(i) for i in images]
    assert hashmatch.pdq_many(images, threads=2) == expected
    assert hashmatch.pdq_many(images, threads=1) == expected
    assert hashmatch.pdq_many(iter(images)) == expected
    assert hashmatch.pdq_many([]) == []
    dihedral = hashmatch.pdq_many(images[:2], dihedral=True, threads=2)
    assert dihedral == [hashmatch.pdq(i, dihedral=True) for i in images[:2]]


def test_pdq_many_records_bad_items_and_goes_on(rgb):
    items = [rgb, b"not an image", np.zeros((0, 3), np.uint8), rgb.astype(np.float32), rgb]
    out = hashmatch.pdq_many(items, threads=2, return_exceptions=True)
    assert out[0] == out[4] == hashmatch.pdq(rgb)
    assert isinstance(out[1], hashmatch.DecodeError)
    assert isinstance(out[2], hashmatch.InvalidInputError)
    assert isinstance(out[3], hashmatch.InvalidInputError)
    with pytest.raises(hashmatch.DecodeError):
        hashmatch.pdq_many(items, threads=2)
    with pytest.raises(hashmatch.InvalidInputError, match="threads"):
        hashmatch.pdq_many(items, threads=0)


def test_hash_values_round_trip_and_distance(rgb):
    h = hashmatch.pdq(rgb)
    assert hashmatch.PDQ.from_hex(h.hex.upper() + "\n") == hashmatch.PDQ(h.bits)
    assert hashmatch.PDQ.from_hex(h.hex, quality=h.quality) == h
    flipped = bytes([h.bits[0] ^ 0xFF]) + h.bits[1:]
    assert hashmatch.distance(h, flipped) == 8
    assert hashmatch.distance(h.hex, h) == 0
    assert h.distance(hashmatch.PDQ(bytes(32))) == bin(int(h.hex, 16)).count("1")
    assert str(h) == h.hex and h.hex in repr(h)


def test_pdq_many_native_batch_of_arrays(photos):
    # All-array batches take the native path: same results, same error handling.
    arrays = [img for img in photos.values()] + [np.zeros((3, 3), np.uint8)]
    expected = [hashmatch.pdq(a) for a in arrays]
    assert hashmatch.pdq_many(arrays, threads=2) == expected
    assert hashmatch.pdq_many(arrays, threads=2, dihedral=True) == [hashmatch.pdq(a, dihedral=True) for a in arrays]
    bad = [arrays[0], np.zeros((4, 4), np.float32), arrays[1], np.zeros((0, 4), np.uint8)]
    out = hashmatch.pdq_many(bad, threads=2, return_exceptions=True)
    assert out[0] == expected[0] and out[2] == expected[1]
    assert isinstance(out[1], hashmatch.InvalidInputError) and isinstance(out[3], hashmatch.InvalidInputError)
    with pytest.raises(hashmatch.InvalidInputError):
        hashmatch.pdq_many(bad)
    with pytest.raises(hashmatch.ResourceLimitError):
        hashmatch.pdq_many(arrays[:2], max_pixels=10)
