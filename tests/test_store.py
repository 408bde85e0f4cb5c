"""HashDB: adding, matching, removing; the derived index; crash safety and concurrent processes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageOps

import hashmatch
from hashmatch import HashDB, InvalidInputError


def _random_hexes(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [bytes(row).hex() for row in rng.integers(0, 256, size=(n, 32), dtype=np.uint8)]


def _flip_bits(hex_: str, count: int, seed: int = 0) -> str:
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(hex_), np.uint8))
    idx = np.random.default_rng(seed).choice(256, size=count, replace=False)
    bits[idx] ^= 1
    return np.packbits(bits).tobytes().hex()


def test_add_match_remove_hashes(dbpath):
    hexes = _random_hexes(50, 1)
    with HashDB(dbpath("h.db")) as db:
        ids = db.add_many(hexes, source="list-a", labels=["x", "y"], external_ids=[f"e{i}" for i in range(50)])
        assert len(db) == 50 and ids == sorted(ids)
        found = db.match(_flip_bits(hexes[7], 31))
        assert [m.entry_id for m in found] == [ids[7]]
        m = found[0]
        assert (m.distance, m.source, m.labels, m.external_id, m.format) == (31, "list-a", ("x", "y"), "e7", "pdq")
        assert db.match(_flip_bits(hexes[7], 32)) == []
        assert len(db.match(_flip_bits(hexes[7], 40), max_distance=40)) == 1
        assert db.remove(ids[7]) == 1
        assert db.remove(ids[7]) == 0  # already a tombstone
        assert db.match(hexes[7]) == []
        assert len(db) == 49
        assert db.get(ids[7]).deleted is True
        stats = db.stats()
        assert stats["entries"] == 49 and stats["deleted"] == 1 and stats["fingerprints"] == {"pdq": 49}


def test_matches_every_entry_within_radius_sorted(dbpath):
    base = _random_hexes(1, 2)[0]
    near = [_flip_bits(base, d, seed=d) for d in (0, 3, 10, 31, 32, 60)]
    with HashDB(dbpath("h.db")) as db:
        ids = db.add_many(near)
        found = db.match(base)
    assert [(m.entry_id, m.distance) for m in found] == [(ids[i], d) for i, d in enumerate((0, 3, 10, 31))]


def test_images_quality_floor_and_dihedral(dbpath, photos):
    img = photos["astronaut"]
    with HashDB(dbpath("img.db")) as db:
        eid = db.add(img, source="photos")
        assert db.get(eid).fingerprints[0].quality == hashmatch.pdq(img).quality
        assert [m.entry_id for m in db.match(img)] == [eid]
        flat = np.full((64, 64, 3), 128, np.uint8)
        skipped = db.match(flat)
        assert skipped == [] and skipped.skipped and "quality" in skipped.skipped
        mirrored = np.asarray(ImageOps.mirror(Image.fromarray(img)))
        assert db.match(mirrored) == []  # a mirror image is far from the original hash
        found = db.match(mirrored, dihedral=True)
        assert [m.entry_id for m in found] == [eid] and found[0].variant != "original"
        with pytest.raises(InvalidInputError):
            db.match(hashmatch.pdq(img).hex, dihedral=True)  # needs pixels to make the variants


def test_bad_hash_input_is_a_typed_error(dbpath):
    with HashDB(dbpath("h.db")) as db:
        with pytest.raises(hashmatch.HashmatchError):
            db.add("zz" * 32)
        with pytest.raises(hashmatch.HashmatchError):
            db.match(b"\x00" * 31)
        assert len(db) == 0


def test_index_saved_reused_and_rebuilt(tmp_path):
    path = tmp_path / "h.db"
    hexes = _random_hexes(200, 3)
    with HashDB(path) as db:
        ids = db.add_many(hexes)
    index_file = tmp_path / "h.db.pdq-index"
    assert index_file.exists()
    with HashDB(path) as db:
        assert db.match(hexes[5])[0].entry_id == ids[5]
    # Another writer changes the rows behind the saved index's back: it must not be trusted.
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE entries SET deleted = 1 WHERE id = ?", (ids[5],))
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key IN ('generation')")
        conn.execute("INSERT INTO meta VALUES ('removals', '1') ON CONFLICT(key) DO UPDATE"
                     " SET value = CAST(value AS INTEGER) + 1")
    conn.close()
    with HashDB(path) as db:
        assert db.match(hexes[5]) == []
        assert db.match(hexes[6])[0].entry_id == ids[6]
    index_file.unlink()
    with HashDB(path) as db:
        assert db.match(hexes[6])[0].entry_id == ids[6]
    index_file.write_bytes(b"garbage")
    with HashDB(path) as db:
        assert db.match(hexes[7])[0].entry_id == ids[7]


def test_index_of_a_deleted_database_is_not_reused(tmp_path):
    path = tmp_path / "h.db"
    old, new = _random_hexes(10, 4), _random_hexes(10, 5)
    with HashDB(path) as db:
        db.add_many(old)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}"):
            os.remove(f"{path}{suffix}")
    with HashDB(path) as db:  # same name, same generation count, different rows
        db.add_many(new)
    with HashDB(path) as db:
        assert db.match(old[0]) == [] and len(db.match(new[0])) == 1


def test_match_uses_env_database_opened_once(tmp_path, monkeypatch):
    path = tmp_path / "env.db"
    hexes = _random_hexes(3, 6)
    with HashDB(path) as db:
        ids = db.add_many(hexes)
    monkeypatch.setenv("HASHMATCH_DB", str(path))
    assert [m.entry_id for m in hashmatch.match(hexes[1])] == [ids[1]]
    assert hashmatch.open_db() is hashmatch.open_db(str(path))


def test_threads_match_while_one_adds(dbpath):
    hexes = _random_hexes(400, 7)
    db = HashDB(dbpath("t.db"))
    first = db.add_many(hexes[:200])
    errors = []

    def reader() -> None:
        try:
            for i in range(300):
                found = db.match(hexes[i % 200])
                assert [m.entry_id for m in found] == [first[i % 200]]
        except BaseException as e:  # noqa: BLE001 - reported to the main thread
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for k in range(200, 400, 20):
        db.add_many(hexes[k:k + 20])
    for t in threads:
        t.join()
    assert not errors
    assert len(db.match(hexes[399])) == 1
    db.close()


_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from hashmatch import HashDB
    path, seed, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(seed)
    db = HashDB(path)
    print("ready", flush=True)
    for b in range(batches):
        codes = rng.integers(0, 256, size=(500, 32), dtype=np.uint8)
        db.add_many([bytes(c).hex() for c in codes], source=f"batch{b}")
        if b % 3 == 2:
            db.remove(db.add_many([bytes(c).hex() for c in codes[:5]]))
    db.close()
""")


def _check_consistent(path) -> int:
    """Every live pdq row is found by match at distance 0 and the index holds exactly those rows."""
    with HashDB(path) as db:
        rows = db.sql.execute(
            "SELECT e.id, f.value FROM fingerprints f JOIN entries e ON e.id = f.entry_id"
            " WHERE e.deleted = 0 AND f.format = 'pdq'").fetchall()
        orphans = db.sql.execute(
            "SELECT COUNT(*) FROM entries e WHERE NOT EXISTS (SELECT 1 FROM fingerprints f"
            " WHERE f.entry_id = e.id)").fetchone()[0]
        assert orphans == 0
        assert len(db) == len(rows)
        assert db.stats()["index"]["size"] == len(rows)
        rng = np.random.default_rng(0)
        for k in rng.choice(len(rows), size=min(50, len(rows)), replace=False) if rows else []:
            eid, value = rows[int(k)]
            assert eid in [m.entry_id for m in db.match(value, max_distance=0)]
        return len(rows)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_during_bulk_add_leaves_a_consistent_database(dbpath, seed):
    path = dbpath("kill.db")
    with HashDB(path) as db:
        db.add_many(_random_hexes(100, 8))  # a saved index exists before the crash
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(seed), "10000"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3 + 0.4 * np.random.default_rng(seed).random())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n = _check_consistent(path)
    assert n > 100  # the writer got some batches in before it died
    # Whole batches or nothing, each add_many being one transaction (plus, at most, one batch of
    # 5 the writer added and was killed before removing).
    assert n % 500 in (100, 105)


def test_reader_process_matches_while_writer_process_adds(dbpath):
    path = dbpath("rw.db")
    known = _random_hexes(20, 9)
    with HashDB(path) as db:
        ids = db.add_many(known)
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "11", "12"],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"
    seen_sizes = set()
    with HashDB(path) as db:
        while writer.poll() is None:
            for h, eid in zip(known, ids):
                assert [m.entry_id for m in db.match(h)] == [eid]
            seen_sizes.add(db.stats()["index"]["size"])
        assert writer.wait() == 0
        final = db.stats()["index"]["size"]
    assert final == 20 + 12 * 500
    assert len(seen_sizes) >= 2  # the reader saw the writer's batches arrive
    _check_consistent(path)


def test_schema_mismatch_is_refused(tmp_path):
    path = tmp_path / "s.db"
    HashDB(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(InvalidInputError, match="schema"):
        HashDB(path)


_ONE_BY_ONE = textwrap.dedent("""
    import sys, numpy as np
    from hashmatch import HashDB
    url, n = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(77)
    with HashDB(url) as db:
        for _ in range(n):
            h = bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex()
            db.add(h, bank="live")
            print(h, flush=True)
""")


def test_a_hash_added_by_one_process_is_matchable_by_another(dbpath):
    # Two processes on one database: every hash the writer commits is found by the reader's next
    # lookups, from the change log, without reopening. (How soon: benchmarks/bench_store.py.)
    url = dbpath("shared.db")
    with HashDB(url) as reader:
        reader.add(_random_hexes(1, 1)[0], bank="live")
        writer = subprocess.Popen([sys.executable, "-c", _ONE_BY_ONE, str(url), "1000"], stdout=subprocess.PIPE,
                                  text=True)
        waits = []
        for line in writer.stdout:
            h = line.strip()
            deadline = time.monotonic() + 30  # a bound that ends the test, not a figure it checks
            tries = 0
            while not reader.match(h):
                tries += 1
                assert time.monotonic() < deadline, f"{h} never became matchable"
                time.sleep(0.001)
            waits.append(tries)
        assert writer.wait() == 0
        assert len(waits) == 1000
        assert reader.stats()["banks"] == {"live": 1001}


def test_one_merge_batch_may_name_the_same_entry_many_times(dbpath):
    from hashmatch.store import Fingerprint, Record

    hexes = _random_hexes(8, 4)
    uids = ["a" * 32, "b" * 32, "a" * 32, "b" * 32, "c" * 32, "a" * 32]
    with HashDB(dbpath()) as db:
        db.merge_records([Record("image", [Fingerprint("pdq", h, 90)], "s", None, uid=u, updated=float(k + 1))
                          for k, (h, u) in enumerate(zip(hexes, uids))])
        assert len(db) == 3
        assert sorted(len(r.fingerprints) for r in db.records()) == [1, 2, 3]  # every value kept, none twice
        assert all(db.match(h) for h in hexes[:6])
