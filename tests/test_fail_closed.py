"""Reading never creates a database: a missing one is an error that names it, never an empty answer.

And a database written by the previous release opens, upgraded in place, with nothing lost.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hashmatch
import hashmatch.store
from hashmatch import DatabaseNotFoundError, HashDB, MediaNotFoundError
from hashmatch.cli import main
from hashmatch.pipeline import open_db

DATA = Path(__file__).parent / "data"


@pytest.fixture
def image(tmp_path) -> Path:
    from PIL import Image

    path = tmp_path / "upload.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(path)
    return path


def test_match_without_hashmatch_db_raises_and_creates_nothing(tmp_path, image, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HASHMATCH_DB", raising=False)
    with pytest.raises(DatabaseNotFoundError, match="HASHMATCH_DB") as e:
        hashmatch.match(image)
    assert "hashmatch.db" in str(e.value)
    assert not (tmp_path / "hashmatch.db").exists()
    assert isinstance(e.value, MediaNotFoundError)  # what callers caught before


def test_match_with_hashmatch_db_naming_a_missing_file_raises(tmp_path, image, monkeypatch):
    missing = tmp_path / "typo.db"
    monkeypatch.setenv("HASHMATCH_DB", str(missing))
    with pytest.raises(DatabaseNotFoundError, match="typo.db") as e:
        hashmatch.match(image)
    assert "HASHMATCH_DB" in str(e.value)
    assert not missing.exists()


@pytest.mark.parametrize("opener", [lambda p: HashDB(p, create=False), lambda p: HashDB(p, read_only=True),
                                    open_db, lambda p: hashmatch.match(hashmatch.PDQ(bytes(32)), db=p)])
def test_every_reading_opener_refuses_a_missing_path(tmp_path, opener):
    missing = tmp_path / "nope.db"
    with pytest.raises(DatabaseNotFoundError, match="nope.db"):
        opener(missing)
    assert list(tmp_path.iterdir()) == []


def test_hashdb_creates_when_asked_and_by_default(tmp_path):
    with HashDB(tmp_path / "new.db") as db:
        assert len(db) == 0
    assert (tmp_path / "new.db").is_file()
    with HashDB(tmp_path / "new.db", create=False) as db:  # now it exists
        assert len(db) == 0


READERS = [
    ["match", "{db}", "{img}"],
    ["match", "{db}", "{img}", "--json"],
    ["db", "export", "{db}", "{tmp}/out.jsonl"],
    ["db", "stats", "{db}"],
    ["db", "formats", "{db}"],
    ["db", "rehash", "{db}"],
    ["db", "remove", "{db}", "1"],
    ["scan", "{img}", "--db", "{db}", "--out", "{tmp}/results.jsonl", "--no-progress"],
]


@pytest.mark.parametrize("argv", READERS, ids=lambda a: " ".join(a[:2]))
def test_cli_readers_exit_non_zero_on_a_missing_database_and_create_nothing(tmp_path, image, capsys, argv):
    db = tmp_path / "typo.db"
    args = [a.format(db=db, img=image, tmp=tmp_path) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "DatabaseNotFoundError" in err and "typo.db" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["upload.png"]


def test_cli_writers_create_the_database(tmp_path, image, capsys):
    assert main(["db", "add", str(tmp_path / "a.db"), str(image)]) == 0
    (tmp_path / "list.txt").write_text("pdq " + "ab" * 32 + "\n")
    assert main(["db", "import", str(tmp_path / "b.db"), str(tmp_path / "list.txt")]) == 0
    assert (tmp_path / "a.db").is_file() and (tmp_path / "b.db").is_file()
    assert main(["match", str(tmp_path / "a.db"), str(image), "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [m["distance"] for m in row["matches"]] == [0]


def test_console_script_on_a_typo_prints_the_reason(tmp_path, image):
    done = subprocess.run([sys.executable, "-m", "hashmatch", "match", str(tmp_path / "typo.db"), str(image)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no hash database at" in done.stderr and "no match" not in done.stdout
    assert not (tmp_path / "typo.db").exists()


def test_a_stale_index_beside_a_new_database_of_the_same_name_is_never_used(tmp_path):
    path = tmp_path / "h.db"
    old, new = hashmatch.PDQ(bytes(32), 100), hashmatch.PDQ(b"\xff" * 32, 100)
    with HashDB(path) as db:
        db.add(old)
        db.save_index()
    for p in tmp_path.glob("h.db*"):
        if not p.name.endswith("-index"):
            p.unlink()
    assert (tmp_path / "h.db.pdq-index").exists()  # left behind by the deleted database
    with HashDB(path) as db:
        db.add(new)
        assert db.match(old) == [] and [m.distance for m in db.match(new)] == [0]


def test_a_schema_1_database_from_the_previous_release_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(DATA / "schema1.db", path)
    expected = json.loads((DATA / "schema1.json").read_text())
    with pytest.raises(hashmatch.InvalidInputError, match="without read_only to upgrade"):
        HashDB(path, read_only=True)
    with HashDB(path) as db:
        assert db.stats()["entries"] == 22 and db.stats()["deleted"] == 1
        for i, hex_ in enumerate(expected["pdq"]):
            found = db.match(hex_)
            if i == len(expected["pdq"]) - 1:
                assert found == []  # removed in the old release: still a tombstone
            else:
                assert [(m.external_id, m.distance, m.labels) for m in found] == [(f"img{i}", 0, ("x",))]
        frames = [hashmatch.VPDQFrame(i, 80, h, float(i)) for i, h in enumerate(expected["frames"])]
        assert [m.external_id for m in db.match(frames)] == ["frames"]
        tmk = hashmatch.TMK.from_bytes((DATA / "schema1.tmk").read_bytes())
        assert [(m.external_id, m.format) for m in db.match(tmk)] == [("tmk", "tmk_pdqf")]
        assert [m.external_id for m in db.match_hash("video_md5", "d41d8cd98f00b204e9800998ecf8427e")] == ["md5only"]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == \
            str(hashmatch.store.SCHEMA_VERSION)
        assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} >= \
            {"code_rows", "vector_rows"}
        assert conn.execute("SELECT COUNT(*) FROM code_rows WHERE space = 'pdq'").fetchone()[0] == 25
    finally:
        conn.close()
    with HashDB(path, read_only=True) as db:  # upgraded: readers open it too
        assert len(db) == 22
        assert {b.name: b.entries for b in db.banks()} == {"list-a": 19, "list-b": 3}  # one bank per source
