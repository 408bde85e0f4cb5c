"""Video entries in the HashDB: vPDQ frames in the PDQ index, video and image-to-video matching."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import hashmatch
from hashmatch import HashDB
from hashmatch.cli import main
from videos import pan, photo, source_video, write_video


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("dbvideos")
    src = source_video(d / "source.mp4", seconds=6)
    reencoded = d / "reencoded.mp4"
    import av

    # The same pictures at another size and quality, as a re-upload would be.
    with av.open(str(src)) as inp:
        frames = [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]
    from PIL import Image

    small = [np.asarray(Image.fromarray(f).resize((256, 192), Image.BILINEAR)) for f in frames]
    write_video(reencoded, lambda i: small[i], len(small), crf=32)
    other = write_video(d / "other.mp4", pan(photo("rocket"), 320, 240, 90, 7), 90)
    return {"source": src, "reencoded": reencoded, "other": other, "frame": frames[len(frames) // 2]}


def test_video_entry_matches_its_copies_and_not_others(tmp_path, clips):
    with HashDB(tmp_path / "v.db") as db:
        vid = db.add(clips["source"], source="videos", labels=["v"])
        entry = db.get(vid)
        assert entry.media_type == "video" and entry.labels == ["v"] and entry.source == "videos"
        formats = {f.format: f for f in entry.fingerprints}
        data = clips["source"].read_bytes()
        assert formats["video_md5"].value == hashlib.md5(data).hexdigest()
        assert formats["video_sha256"].value == hashlib.sha256(data).hexdigest()
        assert formats["vpdq"].params == {"seconds_per_hash": 1.0}
        frames = hashmatch.vpdq(clips["source"])
        assert formats["vpdq"].value == "".join(
            f"{f.frame_number},{f.quality},{f.hex},{f.timestamp:.3f}\n" for f in frames)
        assert db.stats()["index"]["size"] == len({f.hex for f in frames})

        same = db.match(clips["source"])
        assert {(m.entry_id, m.format) for m in same} == {(vid, "video_md5"), (vid, "vpdq"), (vid, "tmk_pdqf")}
        by_format = {m.format: m for m in same}
        assert by_format["vpdq"].query_match_percent == 100.0 and by_format["vpdq"].compared_match_percent == 100.0
        assert by_format["tmk_pdqf"].level1 > 0.99 and by_format["tmk_pdqf"].level2 > 0.99
        assert by_format["video_md5"].distance == 0
        copy = db.match(clips["reencoded"])
        assert {(m.entry_id, m.format) for m in copy} == {(vid, "vpdq"), (vid, "tmk_pdqf")}
        assert next(m for m in copy if m.format == "vpdq").query_match_percent >= 80
        assert db.match(clips["other"]) == []
        assert db.match(frames) == [by_format["vpdq"]]  # a vPDQ hash matches like the video it came from
        tmk = hashmatch.tmk(clips["reencoded"])
        assert [(m.entry_id, m.format) for m in db.match(tmk)] == [(vid, "tmk_pdqf")]
        assert [m.entry_id for m in db.match_hash("video_md5", hashlib.md5(data).hexdigest().upper())] == [vid]
        assert db.match_hash("tmk_pdqf", tmk.to_bytes())[0].level2 > 0.9
        with pytest.raises(hashmatch.InvalidInputError, match="never matched"):
            db.match_hash("photodna", "abc")


def test_image_query_finds_the_video_and_when(tmp_path, clips, photos):
    with HashDB(tmp_path / "v.db") as db:
        vid = db.add(clips["source"])
        img = db.add(photos["camera"])
        found = db.match(clips["frame"])
        assert [m.entry_id for m in found] == [vid]
        assert found[0].media_type == "video" and found[0].format == "vpdq"
        assert found[0].timestamps and all(2.0 <= t <= 4.0 for t in found[0].timestamps)
        assert [m.entry_id for m in db.match(photos["camera"])] == [img]


def test_removed_video_stops_matching(tmp_path, clips):
    with HashDB(tmp_path / "v.db") as db:
        vid = db.add(clips["source"])
        assert db.remove(vid) == 1
        assert db.match(clips["source"]) == [] and db.stats()["index"]["size"] == 0


def test_cli_adds_and_matches_videos(tmp_path, clips, capsys):
    db = str(tmp_path / "cli.db")
    assert main(["db", "add", db, str(clips["source"])]) == 0
    capsys.readouterr()
    assert main(["match", db, "--json", str(clips["reencoded"]), str(clips["other"])]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["media_type"] == "video"
    assert {m["format"] for m in rows[0]["matches"]} == {"vpdq", "tmk_pdqf"}
    assert {m["external_id"] for m in rows[0]["matches"]} == {str(clips["source"])}
    assert rows[1]["matches"] == []
