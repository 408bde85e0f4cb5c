"""PDQ is bit-identical to the reference (`pdqhash`) on the same pixels: hex, quality, dihedral."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import hashmatch
from oracle import as_rgb, reference_dihedral, reference_pdq


def _resize(img: np.ndarray, width: int, height: int, resample=Image.BILINEAR) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((width, height), resample))


def _cases(photos: dict) -> list:
    """At least 200 inputs: photographs, crops, resizes from 1x1 to 4000x3000, gray and RGBA."""
    rng = np.random.default_rng(20261124)
    cases = []
    for name, img in sorted(photos.items()):
        cases.append((name, img))
        h, w = img.shape[:2]
        for k in range(6):
            ch, cw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
            y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            cases.append((f"{name}-crop{k}-{cw}x{ch}", img[y:y + ch, x:x + cw]))
        for size in [(1, 1), (2, 3), (4, 4), (4, 5), (5, 5), (6, 9), (31, 17), (64, 64), (127, 129),
                     (128, 128), (255, 257), (640, 360), (1023, 769)]:
            cases.append((f"{name}-resize-{size[0]}x{size[1]}", _resize(img, *size)))
        if img.ndim == 3:
            gray = np.asarray(Image.fromarray(img).convert("L"))
            cases.append((f"{name}-gray", gray))
            alpha = rng.integers(0, 256, size=img.shape[:2], dtype=np.uint8)
            cases.append((f"{name}-rgba", np.dstack([img, alpha])))
    big = photos["astronaut"] if "astronaut" in photos else next(iter(photos.values()))
    cases.append(("large-4000x3000", _resize(big, 4000, 3000, Image.BICUBIC)))
    cases.append(("large-3000x4000-gray", _resize(np.asarray(Image.fromarray(big).convert("L")), 3000, 4000)))
    cases.append(("wide-2000x7", _resize(big, 2000, 7)))
    cases.append(("tall-9x1500", _resize(big, 9, 1500)))
    for k in range(10):
        shape = (int(rng.integers(1, 700)), int(rng.integers(1, 700)), 3)
        cases.append((f"noise{k}-{shape[1]}x{shape[0]}", rng.integers(0, 256, size=shape, dtype=np.uint8)))
    cases.append(("flat-black", np.zeros((300, 200, 3), np.uint8)))
    cases.append(("flat-white", np.full((100, 100), 255, np.uint8)))
    return cases


def test_identical_to_reference_on_at_least_200_images(photos):
    cases = _cases(photos)
    assert len(cases) >= 200
    mismatches = []
    for name, img in cases:
        ours = hashmatch.pdq(img)
        ref_hex, ref_quality = reference_pdq(as_rgb(img))
        if ours.hex != ref_hex or ours.quality != ref_quality:
            mismatches.append((name, img.shape, ours.hex, ref_hex, ours.quality, ref_quality))
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ, first: {mismatches[:3]}"


def test_dihedral_identical_to_reference(photos):
    cases = _cases(photos)[::3]
    for name, img in cases:
        ours = hashmatch.pdq(img, dihedral=True)
        ref_hexes, ref_quality = reference_dihedral(as_rgb(img))
        assert [h.hex for h in ours] == ref_hexes, name
        assert all(h.quality == ref_quality for h in ours), name
        assert ours[0] == hashmatch.pdq(img), name


def test_dihedral_hashes_match_transformed_pixels(photos):
    img = photos["astronaut"] if "astronaut" in photos else next(iter(photos.values()))
    variants = hashmatch.pdq(img, dihedral=True)
    names = dict(zip(hashmatch.DIHEDRAL_NAMES, variants))
    # The DCT-domain variants approximate hashing the transformed image; each must be its
    # closest variant, far closer than the match threshold.
    transformed = {
        "rotate90": np.rot90(img, 1), "rotate180": np.rot90(img, 2), "rotate270": np.rot90(img, 3),
        "flipx": img[::-1], "flipy": img[:, ::-1], "flipplus1": np.swapaxes(img, 0, 1),
        "flipminus1": np.rot90(img, 2).swapaxes(0, 1),
    }
    for name, pixels in transformed.items():
        h = hashmatch.pdq(pixels)
        distances = {n: h.distance(v) for n, v in names.items()}
        assert min(distances, key=distances.get) == name, (name, distances)
        assert distances[name] <= 16, (name, distances)


@pytest.mark.parametrize("view", ["every-other", "reversed", "transposed", "channel-reversed", "fortran"])
def test_any_strides(photos, view):
    img = photos["coffee"] if "coffee" in photos else next(v for v in photos.values() if v.ndim == 3)
    arr = {
        "every-other": img[::2, ::3],
        "reversed": img[::-1, ::-1],
        "transposed": np.swapaxes(img, 0, 1),
        "channel-reversed": img[:, :, ::-1],
        "fortran": np.asfortranarray(img),
    }[view]
    assert hashmatch.pdq(arr).hex == reference_pdq(np.ascontiguousarray(arr))[0]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 300),
    cols=st.integers(1, 300),
    channels=st.sampled_from([1, 3, 4]),
    seed=st.integers(0, 2**32 - 1),
    smooth=st.booleans(),
)
def test_random_images_match_reference(rows, cols, channels, seed, smooth):
    rng = np.random.default_rng(seed)
    shape = (rows, cols) if channels == 1 else (rows, cols, channels)
    img = rng.integers(0, 256, size=shape, dtype=np.uint8)
    if smooth:  # low-entropy images put many DCT values near the median
        img = (np.cumsum(img.astype(np.int64), axis=0) % 256).astype(np.uint8)
    ours = hashmatch.pdq(img)
    ref_hex, ref_quality = reference_pdq(as_rgb(img))
    assert (ours.hex, ours.quality) == (ref_hex, ref_quality)


def test_tiny_images_follow_reference_refusal():
    # The reference declines images under 5 pixels on a side with an all-zero hash, quality 0.
    for shape in [(1, 1, 3), (4, 100, 3), (100, 4), (4, 4, 4)]:
        h = hashmatch.pdq(np.full(shape, 128, np.uint8))
        assert h.hex == "0" * 64 and h.quality == 0
    assert hashmatch.pdq(np.random.default_rng(0).integers(0, 256, (5, 5, 3), dtype=np.uint8)).quality > 0


def test_float_features_bit_identical_to_reference(photos):
    # Stronger than equal bits: every DCT coefficient is the same float as the reference's,
    # including on flat images, whose hash bits come from rounding noise alone.
    import pdqhash

    from hashmatch import _core

    inputs = [img if img.ndim == 3 else np.stack([img] * 3, -1) for img in photos.values()]
    inputs += [np.full((100, 100, 3), v, np.uint8) for v in (0, 1, 128, 200, 255)]
    for img in inputs:
        luma = (img[:, :, 0] * 0.299 + img[:, :, 1] * 0.587 + img[:, :, 2] * 0.114).astype(np.float32)
        ours, quality = _core.pdq_features(luma)
        ref, ref_quality = pdqhash.compute_float(img)
        np.testing.assert_array_equal(ours, np.asarray(ref, np.float32)[::-1])
        assert quality == ref_quality
