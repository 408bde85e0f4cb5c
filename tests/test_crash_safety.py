"""Crash safety of the hash database: SIGKILL at random moments, and damaged index files.

The database is evidence: a writer killed at any instant must leave a file that opens, whose
saved index (when trusted) holds exactly the live rows, and whose rows are whole transactions.
"""

from __future__ import annotations

import os
from pathlib import Path
import random
import select
import signal
import sqlite3
import time

import numpy as np
import pytest

from hashmatch import HashDB
from hashmatch.index import HammingIndex
from hashmatch.store import Fingerprint, Record

KILLS = 200
_OPS = {b"a": "add_many", b"m": "merge_records", b"s": "save_index", b"r": "remove"}


def _hexes(rng: random.Random, n: int):
    return [rng.getrandbits(256).to_bytes(32, "big").hex() for _ in range(n)]


def _writer(path: str, seed: int, progress: int) -> None:
    """The child: add, merge (with tombstones coming and going), remove and save, forever."""
    rng = random.Random(seed)
    db = HashDB(path)
    uids = [f"{seed:08x}{i:024x}" for i in range(8)]
    while True:
        op = rng.choice(list(_OPS))
        os.write(progress, op)
        if op == b"a":
            db.add_many(_hexes(rng, rng.randint(1, 40)), source="partner")
        elif op == b"m":
            db.merge_records([Record("image", [Fingerprint("pdq", h, 90, None)], "partner", None, [], None,
                                     rng.choice(uids), None, time.time() + rng.random(), rng.random() < 0.3)
                              for h in _hexes(rng, rng.randint(1, 6))])
        elif op == b"s":
            db.save_index()
        else:
            ids = list(db)
            if ids:
                db.remove(rng.sample(ids, min(len(ids), rng.randint(1, 3))))
        os.write(progress, b".")


def _read_until(fd: int, op: bytes, timeout: float = 30.0) -> bytes:
    """The child's progress bytes up to and including its next start of `op`."""
    trail = b""
    deadline = time.monotonic() + timeout
    while not trail.endswith(op):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 1) if ready else b""
        assert chunk, f"the writer stopped before starting {_OPS[op]}: {trail[-40:]!r}"
        trail += chunk
    return trail


def _connect(path):
    """A plain connection of the database's own driver, not hashmatch's."""
    if str(path).startswith("postgresql://"):
        import psycopg

        return psycopg.connect(str(path), autocommit=True)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return conn


def _index_file(path) -> str:
    with HashDB(path, read_only=True) as db:  # read-only: closing saves nothing
        return str(db.index_path)


def _live_rows(path) -> set:
    conn = _connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT r.id FROM code_rows r JOIN entries e ON e.id = r.entry_id"
                                           " WHERE e.deleted = 0")}
    finally:
        conn.close()


def _saved_tag(path) -> int:
    conn = _connect(path)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        generation = conn.execute("SELECT COALESCE(MAX(generation), 0) FROM changes").fetchone()[0]
    finally:
        conn.close()
    return (int(meta["instance"]) << 32) | (int(generation) & 0xFFFFFFFF)


def _check(path) -> tuple:
    """(live rows, whether the saved index was current); fails if anything disagrees."""
    live = _live_rows(path)
    # The saved index is trusted exactly when its tag is current: then it must hold the live rows.
    saved = HammingIndex.load_if_tagged(_index_file(path), _saved_tag(path))
    if saved is not None:
        assert set(saved.ids().tolist()) == live
    db = HashDB(path)
    try:
        assert set(db.indexes.hamming["pdq"].ids().tolist()) == live
        rows = db.sql.execute("SELECT e.id, f.value FROM fingerprints f JOIN entries e ON e.id = f.entry_id"
                                " WHERE e.deleted = 0 AND f.format = 'pdq' ORDER BY f.id DESC LIMIT 3").fetchall()
        for entry_id, value in rows:
            assert entry_id in [m.entry_id for m in db.match(value, max_distance=0)]
        partial = db.sql.execute("SELECT COUNT(*) FROM entries e WHERE NOT EXISTS"
                                   " (SELECT 1 FROM fingerprints f WHERE f.entry_id = e.id)").fetchone()[0]
        assert partial == 0  # an entry without its fingerprints would be half a transaction
    finally:
        db.sql.close()  # without close(): its index save would hide what the crash left
    return live, saved is not None


def test_sigkill_at_random_moments_never_leaves_an_inconsistent_database(dbpath):
    path = str(dbpath("crash.db"))
    with HashDB(path) as db:
        db.add_many(_hexes(random.Random(0), 50))
    rng = random.Random(1234)
    interrupted = {name: 0 for name in _OPS.values()}
    trusted = 0
    for run in range(KILLS):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child never returns into pytest
            try:
                os.close(read_end)
                _writer(path, run, write_end)
            finally:
                os._exit(1)
        os.close(write_end)
        # Each run aims at one kind of write (in turn): wait until the child starts one, then
        # kill it a random moment later, so every kind is hit however fast this machine is.
        trail = _read_until(read_end, list(_OPS)[run % len(_OPS)])
        time.sleep(rng.uniform(0, 0.01))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(read_end, "rb") as f:
            trail += f.read()
        if trail and trail[-1:] != b".":
            interrupted[_OPS[trail[-1:]]] += 1
        trusted += _check(path)[1]
    # The kills did land inside every kind of write, many times each.
    print(f"kills inside: {interrupted}; saved index current after {trusted} of {KILLS}")
    assert all(n >= 10 for n in interrupted.values()), interrupted
    assert trusted >= 10  # and the saved index was current (and checked) after many of them
    live, _ = _check(path)
    assert len(live) > 50
    # Kills inside save_index leave its temp files; the next open removes those an hour old.
    index_file = Path(_index_file(path))
    folder = index_file.parent
    temps = [n for n in os.listdir(folder) if n.endswith(".tmp")]
    assert temps and interrupted["save_index"]
    for name in temps:
        os.utime(folder / name, (time.time() - 7200, time.time() - 7200))
    fresh = folder / f".{index_file.name}.inflight.tmp"
    fresh.write_bytes(b"another process's save in progress")
    HashDB(path).close()
    assert [n for n in os.listdir(folder) if n.endswith(".tmp")] == [fresh.name]


@pytest.mark.parametrize("damage", ["truncate", "bitflip"])
def test_damaged_index_file_is_detected_and_rebuilt(tmp_path, damage):
    path = tmp_path / "d.db"
    hexes = _hexes(random.Random(5), 300)
    with HashDB(path) as db:
        ids = db.add_many(hexes)
    index_file = tmp_path / "d.db.pdq-index"
    data = bytearray(index_file.read_bytes())
    assert HammingIndex.load_if_tagged(index_file, _saved_tag(path)) is not None
    if damage == "truncate":
        data = data[:len(data) // 2]
    else:
        data[40 + 32 * 7 + 3] ^= 0x10  # one bit of code 7, behind the 40-byte header
    index_file.write_bytes(bytes(data))
    assert HammingIndex.load_if_tagged(index_file, _saved_tag(path)) is None
    with HashDB(path) as db:
        assert set(db.indexes.hamming["pdq"].ids().tolist()) == _live_rows(path)
        assert [m.entry_id for m in db.match(hexes[7], max_distance=0)] == [ids[7]]
    # Closing saved the rebuilt index: intact, current, and the same rows again.
    rebuilt = HammingIndex.load_if_tagged(index_file, _saved_tag(path))
    assert rebuilt is not None and set(rebuilt.ids().tolist()) == _live_rows(path)
    codes, row_ids = rebuilt.rows()
    assert bytes(codes[list(row_ids).index(min(row_ids) + 7)]).hex() == hexes[7]
