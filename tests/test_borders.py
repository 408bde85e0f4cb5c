"""Query-side border trimming: letterboxed and framed copies match, and nothing else changes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import hashmatch
from hashmatch import HashDB, InvalidInputError
from oracle import as_rgb, reference_pdq


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(as_rgb(img))


def _jpeg(pixels: np.ndarray, quality: int = 85) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def _pad(pixels: np.ndarray, top: int, bottom: int, left: int, right: int, colour=(0, 0, 0)) -> np.ndarray:
    h, w = pixels.shape[:2]
    out = np.empty((h + top + bottom, w + left + right, 3), np.uint8)
    out[:] = colour
    out[top:top + h, left:left + w] = pixels
    return out


def _vertical_letterbox(pixels: np.ndarray) -> np.ndarray:
    # A landscape photo posted as a 9:16 vertical video frame: bars far taller than the photo.
    h, w = pixels.shape[:2]
    bar = (w * 16 // 9 - h) // 2
    return _jpeg(_pad(pixels, bar, bar, 0, 0))


def test_content_box_finds_each_border(photos):
    img = _rgb(photos["astronaut"])
    padded = _pad(img, 30, 12, 7, 51, colour=(255, 255, 255))
    assert hashmatch.content_box(padded) == (30, 30 + 512, 7, 7 + 512)
    assert hashmatch.trim_borders(padded).shape == img.shape
    # A JPEG'd letterbox rings into the bars next to the photo; the box must still be close.
    top, bottom, left, right = hashmatch.content_box(_jpeg(_pad(img, 64, 64, 0, 0), 50))
    assert abs(top - 64) <= 2 and abs(bottom - (64 + 512)) <= 2 and (left, right) == (0, 512)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket"])
def test_letterboxed_copy_matches_only_with_trimming(tmp_path, photos, name):
    img = _rgb(photos[name])
    query = _vertical_letterbox(img)
    with HashDB(tmp_path / "h.db") as db:
        entry = db.add(img)
        assert not db.match(query), "a tall letterbox should defeat plain PDQ"
        found = db.match(query, trim_borders=True)
        assert [m.entry_id for m in found] == [entry]
        assert found[0].variant == "trimmed" and found[0].distance <= 16


def test_trimming_adds_matches_and_never_loses_one(tmp_path, photos):
    img = _rgb(photos["coffee"])
    framed = _jpeg(_pad(img, 40, 40, 40, 40, colour=(250, 250, 250)))
    with HashDB(tmp_path / "h.db") as db:
        entry = db.add(img)
        plain = db.match(img, trim_borders=True)
        assert plain[0].entry_id == entry and plain[0].distance == 0 and plain[0].variant == "original"
        both = db.match(framed, trim_borders=True, dihedral=True)
        assert both[0].entry_id == entry and both[0].variant.startswith("trimmed")
        assert both[0].distance < hashmatch.distance(hashmatch.pdq(framed), hashmatch.pdq(img))


def test_trimming_a_borderless_image_changes_nothing(photos):
    # Not "camera": its flat studio sky along the top edge is, to any detector, a grey border.
    for name in ["astronaut", "coffee", "chelsea", "rocket", "coins", "immunohistochemistry"]:
        img = photos[name]
        assert hashmatch.content_box(img) == (0, img.shape[0], 0, img.shape[1]), name
        trimmed = hashmatch.pdq(img, trim_borders=True)
        assert (trimmed.hex, trimmed.quality) == reference_pdq(_rgb(img)), name


def test_default_output_is_untouched_by_borders(photos):
    # Without the option a bordered image hashes exactly as the reference hashes it.
    padded = _pad(_rgb(photos["astronaut"]), 50, 50, 0, 0)
    ours = hashmatch.pdq(padded)
    assert (ours.hex, ours.quality) == reference_pdq(padded)
    assert (hashmatch.pdq(padded, trim_borders=True).hex, ours.quality) != reference_pdq(padded)


@pytest.mark.parametrize("pixels", [
    np.zeros((1, 1), np.uint8),
    np.full((1, 1, 3), 200, np.uint8),
    np.zeros((3, 1000, 3), np.uint8),
    np.full((64, 48, 4), 9, np.uint8),
    np.full((100, 100, 3), 255, np.uint8),
], ids=["1x1-gray", "1x1-rgb", "thin-strip", "flat-rgba", "all-white"])
def test_pathological_inputs_are_left_whole(pixels):
    h, w = pixels.shape[:2]
    assert hashmatch.content_box(pixels) == (0, h, 0, w)
    assert hashmatch.pdq(pixels, trim_borders=True) == hashmatch.pdq(pixels)


def test_small_content_inside_huge_borders_is_not_trimmed_away():
    canvas = np.zeros((400, 400, 3), np.uint8)
    canvas[195:205, 195:205] = 255  # a dot: not an image inside a frame
    assert hashmatch.content_box(canvas) == (0, 400, 0, 400)
    canvas[100:300, 120:280] = np.random.default_rng(1).integers(0, 256, (200, 160, 3), dtype=np.uint8)
    assert hashmatch.content_box(canvas) == (100, 300, 120, 280)


def test_borders_on_all_sides_in_different_colours(photos):
    img = _rgb(photos["chelsea"])
    out = _pad(img, 20, 0, 0, 0, colour=(255, 0, 0))
    out = _pad(out, 0, 15, 0, 0, colour=(0, 0, 255))
    out = _pad(out, 0, 0, 9, 0, colour=(255, 255, 255))
    out = _pad(out, 0, 0, 0, 33, colour=(0, 0, 0))
    h, w = img.shape[:2]
    assert hashmatch.content_box(out) == (20, 20 + h, 9, 9 + w)


def test_many_and_single_agree_and_arguments_are_checked(photos):
    imgs = [_vertical_letterbox(_rgb(photos[n])) for n in ("astronaut", "coffee")]
    assert hashmatch.pdq_many(imgs, trim_borders=True) == [hashmatch.pdq(i, trim_borders=True) for i in imgs]
    with pytest.raises(InvalidInputError):
        hashmatch.content_box(imgs[0], tolerance=300)
    with pytest.raises(InvalidInputError):
        hashmatch.match(hashmatch.pdq(imgs[0]), db=None, trim_borders=True)


def test_cli_match_trims_borders_on_request(tmp_path, photos, capsys):
    import json

    from hashmatch.cli import main

    img = _rgb(photos["rocket"])
    Image.fromarray(_vertical_letterbox(img)).save(tmp_path / "q.png")
    with HashDB(tmp_path / "h.db") as db:
        db.add(img)
    found = []
    for extra in ([], ["--trim-borders"]):
        assert main(["match", str(tmp_path / "h.db"), str(tmp_path / "q.png"), "--json", *extra]) == 0
        found.append(json.loads(capsys.readouterr().out)["matches"])
    assert found[0] == [] and [m["variant"] for m in found[1]] == ["trimmed"]


def test_a_flat_band_inside_a_border_is_kept(photos):
    # A sky-like flat band along the photo's own top edge is not a second border once the
    # real frame around it has been trimmed.
    img = _rgb(photos["coffee"]).copy()
    img[:40] = (90, 140, 200)
    framed = _pad(img, 25, 25, 25, 25, colour=(255, 255, 255))
    h, w = img.shape[:2]
    assert hashmatch.content_box(framed) == (25, 25 + h, 25, 25 + w)
