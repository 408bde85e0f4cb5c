"""HEIC/HEIF (pillow-heif) and AVIF (Pillow's plugin): the PDQ of the reference on the pixels the decoder produces."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

import hashmatch
from hashmatch.media import media_kind
from oracle import reference_pdq

FORMATS = ("HEIF", "AVIF")


def encoded(pixels: np.ndarray, fmt: str, orientation: int = 1) -> bytes:
    import pillow_heif  # noqa: F401  (hashmatch registered its opener; saving HEIF needs it too)

    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, quality=85, exif=exif.tobytes())
    return buf.getvalue()


@pytest.fixture(scope="module")
def pictures(photos):
    return {name: np.asarray(Image.fromarray(p).convert("RGB").resize((240, 180))) for name, p in photos.items()}


def _decoded(data: bytes, transpose: bool = False) -> np.ndarray:
    im = Image.open(io.BytesIO(data))
    return np.asarray((ImageOps.exif_transpose(im) if transpose else im).convert("RGB"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_pdq_is_the_reference_pdq_of_the_decoded_pixels(pictures, fmt, tmp_path):
    for name, pixels in pictures.items():
        data = encoded(pixels, fmt)
        path = tmp_path / f"{name}.bin"  # no suffix: sniffed by content
        path.write_bytes(data)
        assert media_kind(path) == "image"
        h = hashmatch.pdq(path)
        assert (h.hex, h.quality) == reference_pdq(_decoded(data)), name
        assert hashmatch.pdq(data) == h
        # A lossy re-encode, not the source: still near it.
        assert hashmatch.distance(h, hashmatch.pdq(pixels)) <= 31, name


def test_avif_exif_orientation_is_applied_only_when_asked(pictures):
    pixels = next(iter(pictures.values()))
    data = encoded(pixels, "AVIF", orientation=6)
    assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == 6
    plain, turned = hashmatch.pdq(data), hashmatch.pdq(data, exif_transpose=True)
    assert (plain.hex, plain.quality) == reference_pdq(_decoded(data))
    assert (turned.hex, turned.quality) == reference_pdq(_decoded(data, transpose=True))
    assert hashmatch.distance(plain, turned) > 31


def test_heic_rotation_is_the_files_own_and_always_applied(pictures):
    """pillow-heif writes EXIF orientation 6 as HEIF's irot property, which libheif always applies
    (a HEIF reader must); no EXIF orientation is left, so exif_transpose cannot turn it twice."""
    pixels = next(iter(pictures.values()))
    data = encoded(pixels, "HEIF", orientation=6)
    im = Image.open(io.BytesIO(data))
    assert im.size == (pixels.shape[0], pixels.shape[1]) and im.getexif().get(0x0112) in (None, 1)
    assert hashmatch.pdq(data) == hashmatch.pdq(data, exif_transpose=True)
    assert (hashmatch.pdq(data).hex, hashmatch.pdq(data).quality) == reference_pdq(_decoded(data))


def test_added_and_matched_like_any_image(pictures, tmp_path):
    db = hashmatch.HashDB(tmp_path / "known.db")
    name, pixels = next(iter(pictures.items()))
    entry = db.add(encoded(pixels, "HEIF"))
    assert [m.entry_id for m in db.match(encoded(pixels, "AVIF"))] == [entry]
