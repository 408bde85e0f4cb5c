"""Hash-list files in and out: JSON Lines (lossless), CSV, 'format value' lists, vPDQ files; merging."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hashmatch
from hashmatch import HashDB, HashFormatError
from hashmatch.cli import main
from hashmatch.lists import export, read_bytes, read_file
from hashmatch.store import Fingerprint, Record
from hashmatch.signals.vpdq import VPDQFrame, dumps as vpdq_dumps, loads as vpdq_loads
from videos import source_video


def _hexes(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [bytes(r).hex() for r in rng.integers(0, 256, size=(n, 32), dtype=np.uint8)]


def _frames(seed: int, n: int = 5) -> list:
    return [VPDQFrame(i * 30, 80, h, float(i)) for i, h in enumerate(_hexes(n, seed))]


def _populate(db: HashDB) -> list:
    ids = db.add_many(_hexes(5, 1), source="list-a", labels=["a", "b"], external_ids=[f"x{i}" for i in range(5)],
                      classification="A1")
    ids.append(db.add(_frames(2), source="videos", external_id="vid-1"))
    ids += db.add_records([Record("image", [Fingerprint("pdq", _hexes(1, 3)[0], 77, "pdq-1"),
                                           Fingerprint("photodna", "opaque==value", None, None, {"v": 2}),
                                           Fingerprint("md5", "d41d8cd98f00b204e9800998ecf8427e")],
                                  source="partner", external_id="p-1", labels=["z"])])
    db.remove(ids[1])  # a tombstone travels with the list
    return ids


def _jsonl(db: HashDB, path) -> str:
    export(db, path)
    return path.read_text()


def test_jsonl_round_trip_is_lossless(tmp_path):
    with HashDB(tmp_path / "a.db") as a:
        _populate(a)
        first = _jsonl(a, tmp_path / "a.jsonl")
    rows = [json.loads(line) for line in first.splitlines()]
    assert len(rows) == 7 and sum(r["deleted"] for r in rows) == 1
    assert {f["format"] for r in rows for f in r["fingerprints"]} == {"pdq", "vpdq", "photodna", "md5"}
    with HashDB(tmp_path / "b.db") as b:
        assert b.merge_records(read_file(tmp_path / "a.jsonl")) == {"added": 7, "updated": 0, "unchanged": 0}
        assert _jsonl(b, tmp_path / "b.jsonl") == first  # every field back, byte for byte
        assert len(b) == 6
        assert b.stats()["index"]["size"] == 5 + 5  # the tombstone's hash is kept but not searched


def test_an_hour_of_vpdq_round_trips_through_every_list_kind(tmp_path):
    hour = _frames(9, 3600)  # one field of ~270 KB in CSV: over the csv module's default limit
    with HashDB(tmp_path / "a.db") as a:
        a.add(hour, source="videos", external_id="long")
        for name in ("long.csv", "long.txt", "long.jsonl"):
            export(a, tmp_path / name, fmt="vpdq")
            (record,) = read_file(tmp_path / name)
            (fp,) = [f for f in record.fingerprints if f.format == "vpdq"]
            assert [(f.hex, f.quality) for f in vpdq_loads(fp.value)] == [(f.hex, f.quality) for f in hour], name


def test_reimport_merges_without_duplicating(tmp_path):
    with HashDB(tmp_path / "a.db") as a:
        ids = _populate(a)
        export(a, tmp_path / "a.jsonl")
        assert a.merge_records(read_file(tmp_path / "a.jsonl")) == {"added": 0, "updated": 0, "unchanged": 7}
        assert len(a) == 6 and a.stats()["index"]["size"] == 5 + 5  # live image hashes, unique video frames
        # A newer version of an entry (a partner retracted it) wins; its fingerprints are not duplicated.
        newer = a.get(ids[0])
        newer.deleted, newer.labels, newer.updated = True, ["retracted"], newer.updated + 10
        newer.fingerprints.append(Fingerprint("sha256", "ab" * 32))
        assert a.merge_records([newer]) == {"added": 0, "updated": 1, "unchanged": 0}
        merged = a.get(ids[0])
        assert merged.deleted and merged.labels == ["retracted"]
        assert [f.format for f in merged.fingerprints] == ["pdq", "sha256"]
        assert a.match(_hexes(5, 1)[0]) == []
        # An older copy does not undo it.
        older = a.get(ids[0])
        older.deleted, older.updated = False, older.updated - 100
        assert a.merge_records([older]) == {"added": 0, "updated": 0, "unchanged": 1}
        assert a.get(ids[0]).deleted


def test_partner_lists_per_format(tmp_path):
    with HashDB(tmp_path / "a.db") as a:
        _populate(a)
        assert export(a, tmp_path / "pdq.csv", fmt="pdq") == (5, "csv")  # the tombstone is left out
        assert export(a, tmp_path / "all.txt") == (8, "list")  # pdq x5, vpdq, md5, photodna (opaque, kept)
        assert export(a, tmp_path / "vpdq", fmt="vpdq", kind="files") == (1, "files")
    lines = (tmp_path / "all.txt").read_text().splitlines()
    assert sorted({line.split(" ", 1)[0] for line in lines}) == ["md5", "pdq", "photodna", "vpdq"]
    vpdq_line = next(line for line in lines if line.startswith("vpdq "))
    from threatexchange.extensions.vpdq.vpdq import VPDQSignal

    assert VPDQSignal.validate_signal_str(vpdq_line.split(" ", 1)[1])
    with HashDB(tmp_path / "partner.db") as p:
        p.merge_records(read_file(tmp_path / "pdq.csv"))
        assert len(p) == 5 and p.stats()["fingerprints"] == {"pdq": 5}
        found = p.match(_hexes(5, 1)[3])
        assert [m.external_id for m in found] == ["x3"] and found[0].labels == ("a", "b")
        p.merge_records(read_file(tmp_path / "all.txt"))
        assert p.stats()["fingerprints"]["vpdq"] == 1
        [video] = read_file(next((tmp_path / "vpdq").iterdir()))
        assert video.media_type == "video" and video.fingerprints[0].value == vpdq_dumps(_frames(2))


@pytest.mark.parametrize("name, content, message", [
    ("l.jsonl", '{"media_type": "image", "fingerprints": []}\n{"media_type": "image"', "l.jsonl:2: not JSON"),
    ("l.jsonl", '{"media_type": "image", "uid": "u1"}\n{"media_type": "image", "uid": "u1"}',
     "l.jsonl:2: field uid 'u1' duplicates line 1"),
    ("l.jsonl", '{"media_type": "image", "fingerprints": [{"format": "pdqq", "value": "x"}]}',
     r"l.jsonl:1: fingerprints\[0\]: field format: unknown format name 'pdqq'"),
    ("l.jsonl", '{"media_type": "image", "fingerprints": [{"format": "pdq", "value": "abc"}]}',
     r"l.jsonl:1: fingerprints\[0\]: field value: .*64"),
    ("l.jsonl", '{"media_type": "image", "created": NaN}', "l.jsonl:1: NaN is not allowed"),
    ("l.jsonl", '{"media_type": "sound"}', "l.jsonl:1: field media_type"),
    ("l.csv", "pdq,quality\n" + "a" * 64 + ",x\n", "l.csv:2: field quality"),
    ("l.csv", "pdq,quality\n" + "a" * 64 + ",50\n" + "g" * 64 + ",50\n", "l.csv:3: field pdq: .*non-hex"),
    ("l.csv", "video_md5\n" + "a" * 31 + "\n", "l.csv:2: field video_md5: .*32 hex"),
    ("l.txt", "pdq " + "a" * 64 + "\nfoo " + "a" * 64 + "\n", "l.txt:2: format: unknown format name 'foo'"),
    ("l.txt", "md5 " + "a" * 32 + "\nvpdq [\"x\"]\n", "l.txt:2: value"),
    ("l.txt", "0,100," + "a" * 64 + ",0.000\n1,100," + "a" * 60 + ",0.033\n", "l.txt:2: .*hash"),
])
def test_malformed_lists_name_file_line_field_and_apply_nothing(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(HashFormatError, match=message):
        read_file(path)
    db = str(tmp_path / "x.db")
    good = tmp_path / "good.txt"
    good.write_text("pdq " + "b" * 64 + "\n")
    assert main(["db", "import", db, str(good), str(path)]) == 2  # one bad file: nothing applied
    with HashDB(db) as opened:
        assert len(opened) == 0


def test_plain_hex_lists_and_not_utf8(tmp_path):
    assert [r.fingerprints[0].value for r in read_bytes(("A" * 64 + "\n").encode(), "x")] == ["a" * 64]
    with pytest.raises(HashFormatError, match="x.txt:2: not UTF-8"):
        read_bytes(b"pdq " + b"a" * 64 + b"\n\xff\xfe\n", "x.txt")


def test_cli_export_and_import(tmp_path, capsys):
    db = str(tmp_path / "a.db")
    with HashDB(db) as a:
        _populate(a)
    out = tmp_path / "dump.jsonl"
    assert main(["db", "export", db, str(out)]) == 0
    assert "exported 7 entries (jsonl)" in capsys.readouterr().out
    other = str(tmp_path / "b.db")
    assert main(["db", "import", other, str(out), "--label", "imported"]) == 0
    assert "7 added" in capsys.readouterr().out
    assert main(["db", "import", other, str(out), "--label", "imported"]) == 0
    assert "0 added" in capsys.readouterr().out
    with HashDB(other) as b:
        assert len(b) == 6 and all("imported" in b.get(i).labels for i in b)
    assert main(["db", "export", db, str(tmp_path / "x.csv")]) == 2  # a CSV holds one format: say which
    assert "--format" in capsys.readouterr().err


def test_malformed_tmk_files_are_refused_by_name(tmp_path):
    good = hashmatch.tmk(source_video(tmp_path / "v.mp4", seconds=2)).to_bytes()
    for name, data, message in [("cut.tmk", good[:-8], "cut.tmk.*truncated"),
                                ("nan.tmk", good[:-4] + b"\x00\x00\xc0\x7f", "nan.tmk.*finite"),
                                ("magic.tmk", b"TMK1XXXX" + good[8:], "magic.tmk")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(HashFormatError, match=message):
            read_file(tmp_path / name)
    (tmp_path / "ok.tmk").write_bytes(good)
    [record] = read_file(tmp_path / "ok.tmk")
    assert record.media_type == "video" and record.fingerprints[0].data == good
