"""Banks: rename, switches, enabled ratios, per-bank thresholds, allow banks, filters, disabled entries,
and the upgrade of a database from the release before banks. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import hashmatch
from hashmatch import HashDB, InvalidInputError
from hashmatch.cli import main

DATA = Path(__file__).parent / "data"


def code(seed: int) -> hashmatch.PDQ:
    rng = np.random.default_rng(seed)
    return hashmatch.PDQ(bytes(rng.integers(0, 256, 32, dtype=np.uint8)), 90)


def flipped(h: hashmatch.PDQ, bits: int) -> hashmatch.PDQ:
    """h with its first `bits` bits flipped: at exactly that distance."""
    x = int.from_bytes(h.bits, "big") ^ (((1 << bits) - 1) << (256 - bits))
    return hashmatch.PDQ(x.to_bytes(32, "big"), h.quality)


def test_create_list_rename_and_delete(dbpath):
    with HashDB(dbpath()) as db:
        db.create_bank("ncmec", notes="industry list", metadata={"contact": "x"})
        eid = db.add(code(1), bank="ncmec")
        assert [(b.name, b.entries, b.notes, b.metadata) for b in db.banks()] == [("ncmec", 1, "industry list",
                                                                                     {"contact": "x"})]
        with pytest.raises(InvalidInputError, match="already exists"):
            db.create_bank("ncmec")
        db.rename_bank("ncmec", "ncmec-industry")
        assert [m.bank for m in db.match(code(1))] == ["ncmec-industry"]
        assert db.get(eid).bank == "ncmec-industry"
        with pytest.raises(InvalidInputError, match="holds 1 entries"):
            db.delete_bank("ncmec-industry")
        assert db.delete_bank("ncmec-industry", with_entries=True) == 1
        assert db.match(code(1)) == [] and [b.name for b in db.banks() if b.enabled] == []
        with pytest.raises(KeyError):
            db.bank("ncmec-industry")


def test_a_disabled_bank_takes_no_part(dbpath):
    with HashDB(dbpath()) as db:
        db.add(code(1), bank="a")
        db.add(code(1), bank="b")
        db.update_bank("a", enabled=False)
        assert [m.bank for m in db.match(code(1))] == ["b"]
        db.update_bank("a", enabled=True)
        assert sorted(m.bank for m in db.match(code(1))) == ["a", "b"]


def test_enabled_ratio_is_stable_per_upload_and_close_to_the_ratio(dbpath):
    rng = np.random.default_rng(5)
    queries = [hashmatch.PDQ(bytes(rng.integers(0, 256, 32, dtype=np.uint8)), 90) for _ in range(10_000)]
    with HashDB(dbpath()) as db:
        db.create_bank("trial", enabled_ratio=0.3, seed=12345)
        db.add_many(queries, bank="trial")
        first = [bool(db.match(q)) for q in queries]
        again = [bool(db.match(q)) for q in queries[:500]]
        assert again == first[:500]  # the same upload gets the same answer
        share = sum(first) / len(first)
        assert 0.28 < share < 0.32, share
        db.update_bank("trial", seed=999)  # another seed, another draw
        assert [bool(db.match(q)) for q in queries[:500]] != first[:500]
        db.update_bank("trial", enabled_ratio=0.0)
        assert not any(db.match(q) for q in queries[:100])


def test_per_bank_thresholds_and_the_call_only_narrows(dbpath):
    h = code(7)
    with HashDB(dbpath()) as db:
        db.create_bank("wide", thresholds={"pdq": {"max_distance": 40}})
        db.create_bank("default31")
        db.create_bank("strict", thresholds={"pdq": {"max_distance": 20}})
        for bank in ("wide", "default31", "strict"):
            db.add(h, bank=bank)
        assert sorted(m.bank for m in db.match(flipped(h, 25))) == ["default31", "wide"]
        assert sorted(m.bank for m in db.match(flipped(h, 35))) == ["wide"]
        assert sorted(m.bank for m in db.match(flipped(h, 15))) == ["default31", "strict", "wide"]
        assert sorted(m.bank for m in db.match(flipped(h, 25), max_distance=22)) == []  # 22 < 25 everywhere
        assert sorted(m.bank for m in db.match(flipped(h, 19), max_distance=35)) == ["default31", "strict", "wide"]
        with pytest.raises(InvalidInputError, match="not a pdq threshold"):
            db.create_bank("bad", thresholds={"pdq": {"level2": 0.5}})
        with pytest.raises(InvalidInputError, match="unknown format"):
            db.create_bank("bad", thresholds={"nosuch": {"max_distance": 3}})


def test_frame_thresholds_per_bank(dbpath):
    frames = [hashmatch.VPDQFrame(i, 90, code(100 + i).hex, float(i)) for i in range(10)]
    half = frames[:5] + [hashmatch.VPDQFrame(5 + i, 90, code(900 + i).hex, 5.0 + i) for i in range(5)]
    with HashDB(dbpath()) as db:
        db.create_bank("lenient", thresholds={"vpdq": {"query_percent": 50}})
        db.add(frames, bank="lenient")
        db.add(frames, bank="strict")
        assert [m.bank for m in db.match(half)] == ["lenient"]  # 50% of the query's frames match
        assert sorted(m.bank for m in db.match(frames)) == ["lenient", "strict"]


def test_allow_banks_suppress_other_matches(dbpath):
    meme, other = code(20), code(21)
    with HashDB(dbpath()) as db:
        db.create_bank("fp", kind="allow")
        db.add(meme, bank="fp", notes="meme template")
        db.add(flipped(meme, 3), bank="known")
        db.add(other, bank="known")
        found = db.match(meme)
        assert list(found) == [] and [m.bank for m in found.allowed] == ["fp"]
        assert [m.bank for m in db.match(other)] == ["known"] and db.match(other).allowed == []
        assert [m.bank for m in db.match(meme, banks=["known"])] == ["known"]  # the allow bank not asked
        db.update_bank("fp", enabled=False)
        assert [m.bank for m in db.match(meme)] == ["known"]


def test_bank_filter_and_grouping(dbpath):
    h = code(30)
    with HashDB(dbpath()) as db:
        db.add(h, bank="a")
        db.add(flipped(h, 2), bank="a")
        db.add(h, bank="b")
        found = db.match(h)
        assert {k: [m.distance for m in v] for k, v in found.by_bank().items()} == {"a": [0, 2], "b": [0]}
        assert [m.bank for m in db.match(h, banks=["b"])] == ["b"]
        with pytest.raises(InvalidInputError, match="no bank named 'c'"):
            db.match(h, banks=["c"])


def test_disabled_until_expires(dbpath):
    h = code(40)
    with HashDB(dbpath()) as db:
        eid = db.add(h, bank="a")
        db.disable(eid, until=time.time() + 1.0)
        assert db.match(h) == []
        time.sleep(1.1)
        assert [m.entry_id for m in db.match(h)] == [eid]
        db.disable(eid)  # until enabled again
        assert db.match(h) == []
        db.enable(eid)
        assert [m.entry_id for m in db.match(h)] == [eid]


def test_entries_keep_content_fields_through_an_export(dbpath, tmp_path):
    with HashDB(dbpath()) as db:
        eid = db.add(code(50), bank="a", external_id="c-1", content_uri="https://example.org/post/1", notes="n",
                     metadata={"exchange": "ncmec", "member": 7})
        db.update_entry(eid, notes="checked", metadata={"exchange": "ncmec", "member": 7, "opinion": "positive"})
        hashmatch.lists.export(db, tmp_path / "a.jsonl")
    row = json.loads((tmp_path / "a.jsonl").read_text())
    assert (row["bank"], row["content_uri"], row["notes"], row["metadata"]["opinion"]) == \
        ("a", "https://example.org/post/1", "checked", "positive")
    with HashDB(tmp_path / "copy.db") as copy:
        copy.merge_records(hashmatch.lists.read_file(tmp_path / "a.jsonl"))
        m = copy.match(code(50))[0]
        assert m.bank == "a" and copy.get(m.entry_id).metadata["member"] == 7


def test_a_schema_2_database_upgrades_one_bank_per_source(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(DATA / "schema2.db", path)
    expected = json.loads((DATA / "schema2.json").read_text())
    with HashDB(path) as db:
        assert {b.name: b.entries for b in db.banks()} == {"ncmec": 5, "partner": 5, "default": 2}
        assert db.match(expected["pdq"][0]) == []  # a tombstone stays one
        assert [(m.bank, m.external_id) for m in db.match(expected["pdq"][1])] == [("ncmec", "n1")]
        assert [(m.bank, m.external_id) for m in db.match(expected["pdq"][10])] == [("default", "own0")]
        frames = [hashmatch.VPDQFrame(i, 80, h, float(i)) for i, h in enumerate(expected["frames"])]
        assert [(m.bank, m.external_id) for m in db.match(frames)] == [("partner", "clip")]
        db.update_bank("partner", enabled=False)
        assert db.match(expected["pdq"][6]) == []


def test_cli_bank_commands(tmp_path, capsys):
    db = str(tmp_path / "c.db")
    assert main(["db", "bank", "create", db, "list-a", "--threshold", "pdq.max_distance=20", "--ratio", "1"]) == 0
    assert main(["db", "bank", "create", db, "fp", "--kind", "allow"]) == 0
    assert main(["db", "bank", "update", db, "list-a", "--enabled", "no", "--threshold", "vpdq.query_percent=90"]) == 0
    assert main(["db", "bank", "rename", db, "list-a", "list-b"]) == 0
    capsys.readouterr()
    assert main(["db", "bank", "list", db, "--json"]) == 0
    banks = {b["name"]: b for b in map(json.loads, capsys.readouterr().out.splitlines())}
    assert banks["list-b"]["enabled"] is False and banks["fp"]["kind"] == "allow"
    assert banks["list-b"]["thresholds"] == {"pdq": {"max_distance": 20.0}, "vpdq": {"query_percent": 90.0}}
    assert main(["db", "bank", "update", db, "list-b", "--threshold", "pdq=3"]) == 2
    assert main(["db", "bank", "delete", db, "fp"]) == 0
    assert main(["db", "bank", "list", str(tmp_path / "missing.db")]) == 2
