"""Animated GIF, APNG and WebP: an image (its first frame) and a short video (its frames, timed by its delays)."""

from __future__ import annotations

import io
import resource

import numpy as np
import pytest
from PIL import Image

import hashmatch
from hashmatch import ResourceLimitError
from hashmatch.config import ANIMATION_EVERY_FRAME_MAX, MAX_ANIMATION_FRAMES
from hashmatch.media import animation_of
from videos import pan, photo, write_video

FORMATS = {"GIF": {}, "PNG": {}, "WEBP": {"quality": 90}}


def _pictures(n: int, size=(160, 120)):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "datasets" / "synthetic" / "generate.py"
    spec = importlib.util.spec_from_file_location("generate", path)
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    return [Image.fromarray(np.asarray(im)[:, :, :3]).resize(size) for im in generate.images(n, start=500)]


def animated(frames, fmt: str, duration=200) -> bytes:
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=duration, loop=0, **FORMATS[fmt])
    return buf.getvalue()


@pytest.fixture(scope="module")
def pictures():
    return _pictures(10)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_stored_image_is_found_as_frame_5_of_10(pictures, fmt, tmp_path):
    db = hashmatch.HashDB(tmp_path / "known.db")
    known = db.add(np.asarray(pictures[5]))
    data = animated(pictures, fmt)
    assert animation_of(data).frame_count == 10
    # hashmatch.pdq keeps the first frame, as the field does: alone it misses the known image.
    assert hashmatch.pdq(data) == hashmatch.pdq(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    assert hashmatch.distance(hashmatch.pdq(data), hashmatch.pdq(np.asarray(pictures[5]))) > 31
    found = [m for m in db.match(data) if m.entry_id == known]
    assert found and found[0].format == "pdq" and found[0].distance <= 8
    assert found[0].timestamps == (1.0,)  # frame 5 of 200 ms frames


def test_an_added_animation_is_one_image_entry_with_both_fingerprints(pictures, tmp_path):
    db = hashmatch.HashDB(tmp_path / "known.db")
    data = animated(pictures, "GIF")
    entry = db.add(data)
    record = db.get(entry)
    assert record.media_type == "image"
    formats = {f.format for f in record.fingerprints}
    assert {"pdq", "vpdq"} <= formats and "tmk_pdqf" not in formats
    vpdq = [f for f in record.fingerprints if f.format == "vpdq"][0]
    assert vpdq.params["seconds_per_hash"] == 0.0  # every frame of a short animation
    # A known image is found in any of its frames, with the time it is shown.
    (m,) = [m for m in db.match(np.asarray(pictures[7])) if m.entry_id == entry]
    assert m.format == "vpdq" and m.timestamps == (1.4,) and m.distance <= 8


def test_frames_are_timed_by_their_own_delays(pictures):
    durations = [100, 300, 0, 50, 1000, 5, 200, 200, 200, 200]  # 0 and 5 ms are shown for 100 ms
    data = animated(pictures, "PNG", duration=durations)
    frames = hashmatch.signals.get("vpdq").from_animation(animation_of(data), {})[0][1]
    assert [f.frame_number for f in frames] == list(range(10))
    shown = [100, 300, 100, 50, 1000, 100, 200, 200, 200, 200]
    assert [round(f.timestamp * 1000) for f in frames] == [sum(shown[:i]) for i in range(10)]


def test_long_animations_keep_the_frame_on_screen_each_second():
    n = ANIMATION_EVERY_FRAME_MAX + 50
    frames = [Image.fromarray(np.full((8, 8, 3), (i * 37) % 256, np.uint8)) for i in range(n)]
    data = animated(frames, "GIF", duration=[150] * n)
    hashed = hashmatch.signals.get("vpdq").from_animation(animation_of(data), {})[0][1]
    # Frame i is on screen over [0.15 i, 0.15 (i + 1)): the ones showing at 0, 1, 2, ... s.
    assert [f.frame_number for f in hashed] == [int(k / 0.15) for k in range(int(n * 0.15) + 1) if k / 0.15 < n]


def test_an_animated_gif_cut_from_a_stored_video_matches_it(tmp_path):
    import av

    video = write_video(tmp_path / "known.mp4", pan(photo("coffee"), 320, 240, 300, 5, motion=0.25), 300, 30)
    db = hashmatch.HashDB(tmp_path / "known.db")
    known = db.add(video)
    with av.open(str(video)) as c:
        frames = [f.to_image() for f in c.decode(video=0)]
    cut = frames[45:135:3]  # 1.5 s to 4.5 s at 10 fps, palette-quantised
    buf = io.BytesIO()
    cut[0].save(buf, "GIF", save_all=True, append_images=cut[1:], duration=100, loop=0)
    matches = [m for m in db.match(buf.getvalue()) if m.entry_id == known]
    as_video = [m for m in matches if m.query_match_percent is not None]
    assert as_video and as_video[0].format == "vpdq" and as_video[0].query_match_percent >= 80
    # Scans report both: the first frame as an image (a stored frame close to it) and the frames as a video.
    assert any(m.query_match_percent is None for m in matches)


def test_a_scan_reports_an_animation_as_image_and_video(pictures, tmp_path):
    db = hashmatch.HashDB(tmp_path / "known.db")
    known = db.add(np.asarray(pictures[5]))
    db.close()
    folder = tmp_path / "uploads"
    folder.mkdir()
    (folder / "a.gif").write_bytes(animated(pictures, "GIF"))
    hashmatch.scan(str(folder), str(tmp_path / "known.db"), str(tmp_path / "rows.jsonl"), workers=1)
    import json

    (row,) = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert row["status"] == "ok" and row["media_type"] == "image" and row["vpdq_frames"] == 10
    assert {"pdq", "vpdq"} <= set(row["formats"]) and [m["entry_id"] for m in row["matches"]] == [known]


# ----- bombs ---------------------------------------------------------------------------------

def _gif_with_screen(data: bytes, width: int, height: int) -> bytes:
    """A GIF whose logical screen (the canvas Pillow decodes onto) claims width x height."""
    return data[:6] + width.to_bytes(2, "little") + height.to_bytes(2, "little") + data[10:]


@pytest.fixture(scope="module")
def many_frames() -> bytes:
    frames = [Image.fromarray(np.full((2, 2, 3), 255 * (i % 2), np.uint8)) for i in range(10_000)]
    return animated(frames, "GIF", duration=20)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_10000_frame_gif_is_refused_from_its_frame_count(many_frames, tmp_path):
    before = _peak_mb()
    with pytest.raises(ResourceLimitError, match="max_frames"):
        animation_of(many_frames)
    db = hashmatch.HashDB(tmp_path / "known.db")
    with pytest.raises(ResourceLimitError):
        db.add(many_frames)
    with pytest.raises(ResourceLimitError):
        db.match(many_frames)
    assert hashmatch.pdq(many_frames).quality is not None  # as an image it is its first frame
    assert _peak_mb() - before < 64
    assert animation_of(many_frames, max_frames=10_000).frame_count == 10_000 > MAX_ANIMATION_FRAMES


def test_a_huge_canvas_is_refused_from_its_header(pictures):
    small = animated(pictures[:3], "GIF")
    before = _peak_mb()
    with pytest.raises(ResourceLimitError):
        animation_of(_gif_with_screen(small, 60_000, 60_000))
    # 2,000 frames of a 1000 x 1000 canvas: each frame is allowed, all of them are not.
    frames = [Image.fromarray(np.full((2, 2, 3), 255 * (i % 2), np.uint8)) for i in range(2000)]
    with pytest.raises(ResourceLimitError, match="max_decoded_pixels"):
        animation_of(_gif_with_screen(animated(frames, "GIF"), 1000, 1000))
    assert _peak_mb() - before < 64


def test_still_images_and_arrays_are_not_animations(pictures):
    buf = io.BytesIO()
    pictures[0].save(buf, "GIF")
    assert animation_of(buf.getvalue()) is None
    assert animation_of(np.zeros((8, 8, 3), np.uint8)) is None
    png = io.BytesIO()
    pictures[0].save(png, "PNG")
    assert animation_of(png.getvalue()) is None
