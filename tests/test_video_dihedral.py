"""Rotated and flipped copies of a video: vPDQ frames looked up in their 8 dihedral variants."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import hashmatch
from oracle import reference_dihedral
from videos import pan, photo, source_video, textured, write_video


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("dihedral")
    made = {"source": source_video(d / "source.mp4", seconds=5)}
    # Re-encodes with the turn baked into the pixels, as an editor or a platform writes them.
    for name, vf in {"turned_cw": "transpose=clock", "turned_180": "hflip,vflip", "mirrored": "hflip",
                     "transposed": "transpose=cclock_flip"}.items():
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(made["source"]), "-vf", vf, "-c:v",
                        "libx264", "-crf", "28", "-preset", "veryfast", str(d / f"{name}.mp4")], check=True)
        made[name] = d / f"{name}.mp4"
    for seed in range(4):  # unrelated clips, each also stored
        made[f"other{seed}"] = write_video(d / f"other{seed}.mp4", textured(seed + 20, frames=90), 90, 30)
    made["other_photo"] = write_video(d / "other_photo.mp4", pan(photo("rocket"), 320, 240, 120, 9), 120, 30)
    return made


def test_dihedral_frames_are_the_reference_dihedral_hashes_of_each_frame(clips):
    import av

    variants = hashmatch.vpdq(clips["source"], dihedral=True)
    assert len(variants) == 8 and variants[0] == hashmatch.vpdq(clips["source"])
    with av.open(str(clips["source"])) as c:
        rgb = {i: f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0))}
    for k, frame in enumerate(variants[0]):
        hexes, quality = reference_dihedral(rgb[frame.frame_number])
        assert [v[k].hex for v in variants] == hexes
        assert all(v[k].quality == quality and v[k].frame_number == frame.frame_number for v in variants)


@pytest.fixture(scope="module")
def db(clips, tmp_path_factory):
    db = hashmatch.HashDB(tmp_path_factory.mktemp("dihedral_db") / "known.db")
    ids = {name: db.add(clips[name]) for name in ("source", "other0", "other1", "other2", "other3", "other_photo")}
    return db, ids


@pytest.mark.parametrize("name,variant", [("turned_cw", "rotate90"), ("turned_180", "rotate180"),
                                          ("mirrored", "flipy"), ("transposed", "flipplus1")])
def test_turned_re_encode_matches_with_dihedral_only(db, clips, name, variant):
    """The variant names the turn that brings the query back to the stored video."""
    db, ids = db
    assert not [m for m in db.match(clips[name]) if m.format == "vpdq"]
    found = [m for m in db.match(clips[name], dihedral=True) if m.format == "vpdq"]
    assert [m.entry_id for m in found] == [ids["source"]]
    assert found[0].variant == variant and found[0].query_match_percent == 100.0


def test_no_new_false_matches_among_unrelated_clips(db, clips):
    db, ids = db
    for name in ("other0", "other1", "other2", "other3", "other_photo"):
        plain = {m.entry_id for m in db.match(clips[name])}
        turned = {m.entry_id for m in db.match(clips[name], dihedral=True)}
        assert plain == turned == {ids[name]}, name


def test_plain_copy_keeps_its_plain_variant(db, clips):
    db, ids = db
    (m,) = [m for m in db.match(clips["source"], dihedral=True) if m.format == "vpdq"]
    assert m.variant == "original" and m.entry_id == ids["source"]


