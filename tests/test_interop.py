"""Interoperability end to end: a database of videos and images, exported per format to partners
that hold only that format, who match edited copies back to the right entries."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import BACKENDS
from PIL import Image

import hashmatch
from hashmatch import HashDB
from hashmatch.cli.demo import synthetic_images
from hashmatch.lists import export, read_file
from videos import textured, write_video

KNOWN, UNRELATED, FPS, FRAMES, MOTION = 20, 20, 20, 60, 0.1


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """The known videos, their re-encoded copies, unrelated videos and the known images (made once)."""
    d = tmp_path_factory.mktemp("interop")
    # Camera motion as slow as real footage's: a frame grabbed between two sampled seconds is close to both.
    known = [write_video(d / f"known{i}.mp4", textured(i, motion=MOTION), FRAMES, FPS) for i in range(KNOWN)]
    unrelated = [write_video(d / f"other{i}.mp4", textured(1000 + i, motion=MOTION), FRAMES, FPS)
                 for i in range(UNRELATED)]
    copies = []
    for i, path in enumerate(known):  # a re-upload: smaller, re-encoded at a lower quality
        frames = _decode(path)
        small = [np.asarray(Image.fromarray(f).resize((224, 168), Image.BILINEAR)) for f in frames]
        copies.append(write_video(d / f"copy{i}.mp4", lambda k, s=small: s[k], len(small), FPS, crf=33))
    images = synthetic_images()[:47]
    from skimage import data

    images += [data.astronaut(), data.coffee(), data.chelsea()]
    return {"dir": d, "known": known, "unrelated": unrelated, "copies": copies, "images": images}


@pytest.fixture(scope="module", params=BACKENDS)
def world(media, request):
    """The media in a database of every format, on each backend."""
    def new_db(name: str):
        if request.param == "sqlite":
            return media["dir"] / f"{request.param}-{name}"
        return request.getfixturevalue("pg_cluster").new_database()

    db = HashDB(new_db("all.db"))
    video_ids = db.add_many([str(p) for p in media["known"]], source="videos",
                            external_ids=[f"v{i}" for i in range(KNOWN)])
    image_ids = db.add_many(media["images"], source="images", external_ids=[f"i{k}" for k in range(len(media["images"]))])
    yield {**media, "db": db, "new_db": new_db, "backend": request.param, "video_ids": video_ids, "image_ids": image_ids}
    db.close()


def _decode(path):
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _jpeg(img) -> bytes:
    """A re-encoded copy (JPEG, quality 80), as a re-upload would be."""
    im = Image.open(img) if not isinstance(img, np.ndarray) else Image.fromarray(img)
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=80)
    return buf.getvalue()


def _partner(world, fmt: str, kind: str, name: str) -> HashDB:
    out = world["dir"] / f"{world['backend']}-{name}"
    n, _ = export(world["db"], out, fmt=fmt, kind=kind)
    assert n == (len(world["images"]) if fmt == "pdq" else KNOWN)
    files = sorted(out.iterdir()) if out.is_dir() else [out]
    partner = HashDB(world["new_db"](f"partner-{fmt}-{kind}.db"))
    partner.merge_records([r for f in files for r in read_file(f)])
    assert set(partner.stats()["fingerprints"]) == {fmt}
    return partner


def _origin(world, matches) -> set:
    """The external ids, in the exporting database, of the entries the matches are (found by uid)."""
    return {world["db"].get(world["db"].entry_id(m.uid)).external_id for m in matches}


def test_database_holds_every_format(world):
    stats = world["db"].stats()
    assert stats["media_types"] == {"video": KNOWN, "image": 50}
    assert stats["fingerprints"] == {"pdq": 50, "vpdq": KNOWN, "tmk_pdqf": KNOWN, "video_md5": KNOWN,
                                     "video_sha256": KNOWN}


@pytest.mark.parametrize("fmt, kind", [("vpdq", "csv"), ("vpdq", "files"), ("tmk_pdqf", "files"),
                                       ("video_md5", "csv")])
def test_video_partner_with_one_format_matches_copies(world, fmt, kind):
    partner = _partner(world, fmt, kind, f"{fmt}-{kind}" + ("" if kind == "files" else f".{kind}"))
    queries = world["known"] if fmt == "video_md5" else world["copies"]  # MD5 finds exact copies only
    for i, query in enumerate(queries):
        found = partner.match(str(query))
        assert {m.format for m in found} == {fmt}, (i, found)
        assert _origin(world, found) == {f"v{i}"}
    for query in world["unrelated"]:
        assert partner.match(str(query)) == []
    if fmt == "video_md5":
        assert all(partner.match(str(q)) == [] for q in world["copies"])
    partner.close()


def test_image_partner_with_pdq_matches_copies(world):
    partner = _partner(world, "pdq", "csv", "pdq.csv")
    for k, img in enumerate(world["images"]):
        found = partner.match(_jpeg(img))
        assert _origin(world, found) == {f"i{k}"}, (k, found)
    partner.close()


def test_grabbed_frame_finds_the_video_and_when(world):
    db = world["db"]
    for i in (0, 7, 13):
        frames = _decode(world["known"][i])
        t = 1.25  # between the vPDQ samples at 1 s and 2 s
        grabbed = frames[int(t * FPS)]
        found = [m for m in db.match(_jpeg(grabbed)) if m.media_type == "video"]
        assert [m.external_id for m in found] == [f"v{i}"]
        assert min(abs(s - t) for s in found[0].timestamps) <= 1.0


def test_tmk_files_round_trip_byte_for_byte(world, tmp_path):
    export(world["db"], tmp_path / "tmk", fmt="tmk_pdqf", kind="files")
    for path in sorted((tmp_path / "tmk").iterdir()):
        [record] = read_file(path)
        assert record.fingerprints[0].data == path.read_bytes()
        assert hashmatch.TMK.read(path).to_bytes() == path.read_bytes()
        with HashDB(tmp_path / "t.db") as t:
            t.merge_records([record])
        back = tmp_path / "back"
        with HashDB(tmp_path / "t.db") as t:
            export(t, back, fmt="tmk_pdqf", kind="files")
        assert [f.read_bytes() for f in back.iterdir()] == [path.read_bytes()]
        break  # one file is enough to show the bytes survive the database
