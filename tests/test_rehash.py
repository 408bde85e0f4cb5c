"""Which formats entries hold and lack, and filling the gaps from the source media."""

from __future__ import annotations

import hashlib
import json

from PIL import Image

import hashmatch
from hashmatch import HashDB
from hashmatch.cli import main
from hashmatch.pipeline.records import fingerprint as _fingerprint
from hashmatch.signals import get as _signal
from hashmatch.store import Fingerprint, Record
from hashmatch.pipeline.rehash import coverage, rehash
from videos import source_video


def test_coverage_and_rehash_fill_gaps_from_known_media(tmp_path, photos, capsys):
    img_path = tmp_path / "a.png"
    Image.fromarray(photos["astronaut"]).save(img_path)
    broken = tmp_path / "broken.png"
    broken.write_bytes(img_path.read_bytes()[:200])
    video = source_video(tmp_path / "v.mp4", seconds=3)
    db_path = tmp_path / "r.db"
    with HashDB(db_path) as db:
        image_id = db.add(str(img_path))
        hash_id = db.add("ab" * 32)
        [broken_id] = db.add_records([Record("image", [Fingerprint("md5", hashlib.md5(broken.read_bytes())
                                                                  .hexdigest())], media_uri=str(broken))])
        [moved_id] = db.add_records([Record("image", [Fingerprint("md5", "0" * 32)], media_uri=str(img_path))])
        # The entry knows where its media is, but holds only vPDQ (as an imported partner list would).
        [video_id] = db.add_records([Record("video", [_fingerprint(_signal("vpdq"), hashmatch.vpdq(video), options={"seconds_per_hash": 1.0})],
                                            media_uri=str(video))])
        summary, rows = coverage(db.iter_records())
        assert summary.entries == {"image": 4, "video": 1}
        assert summary.missing["image"] == {"pdq": 2, "md5": 2, "sha256": 4}
        assert summary.missing["video"] == {"tmk_pdqf": 1, "video_md5": 1, "video_sha256": 1}
        assert summary.rehashable == 4  # the hash-only entry has no media to go back to
        assert next(r for r in rows if r["id"] == hash_id)["media_reachable"] is False

        assert db.match(hashmatch.tmk(video)) == []
        report = rehash(db)
        assert report.filled == 2 and report.unreachable == [hash_id]
        # Recorded with a reason, and the rest went on: a corrupt file, and one that is not the entry's media.
        failed = dict(report.failed)
        assert sorted(failed) == [broken_id, moved_id]
        assert "DecodeError" in failed[broken_id] and "not the same media" in failed[moved_id]
        held = {f.format: f.value for f in db.get(image_id).fingerprints}
        assert held["md5"] == hashlib.md5(img_path.read_bytes()).hexdigest()
        assert held["sha256"] == hashlib.sha256(img_path.read_bytes()).hexdigest()
        assert {f.format for f in db.get(video_id).fingerprints} == {"vpdq", "tmk_pdqf", "video_md5", "video_sha256"}
        assert [(m.entry_id, m.format) for m in db.match(hashmatch.tmk(video))] == [(video_id, "tmk_pdqf")]
        assert rehash(db).filled == 0  # nothing left to fill
    assert main(["db", "formats", str(db_path), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["id"]: r["missing"] for r in rows}[video_id] == []
    assert main(["db", "formats", str(db_path)]) == 0
    assert "1 video entries" in capsys.readouterr().out
    assert main(["db", "rehash", str(db_path), "--formats", "pdq"]) == 1  # the broken image still fails
    assert "entry" in capsys.readouterr().err
