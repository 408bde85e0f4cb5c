"""Bulk import and match latency of the hash database, on SQLite and on PostgreSQL.

Run: python benchmarks/bench_store.py [--n 10000000] [--backend sqlite|postgresql|both] [--queries 2000]

Writes N random PDQ hashes as a CSV hash list (the format partners send), then times the
import the CLI runs (`hashmatch db import`: parse and check the whole file, then one merge
transaction) into a new database of each backend, then hashmatch.match()-style lookups
(HashDB.match on a PDQ) against it: p50/p99 over --queries lookups, half of them known
hashes with 8 bits flipped. PostgreSQL runs on a throwaway local cluster (tests/pg.py), with
fsync on. It also measures how soon a hash one process adds is matchable by another process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import hashmatch  # noqa: E402
from hashmatch.lists import read_file  # noqa: E402


def write_list(path: Path, n: int, seed: int = 1) -> np.ndarray:
    """N random codes as a CSV hash list with a header; the codes."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    with open(path, "w") as f:
        f.write("pdq,quality,external_id\n")
        hexes = codes.view(np.uint8).reshape(n, 32)
        for start in range(0, n, 100_000):
            block = hexes[start:start + 100_000]
            f.write("".join(f"{bytes(c).hex()},90,x{start + i}\n" for i, c in enumerate(block)))
    return codes


def import_into(target, list_path: Path) -> dict:
    """Time the CLI's import: read and check the list, then merge it in one transaction."""
    t0 = time.perf_counter()
    records = read_file(list_path)
    t1 = time.perf_counter()
    for r in records:
        r.bank = "partner"
    with hashmatch.HashDB(target) as db:
        counts = db.merge_records(records)
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    n = len(records)
    return {"n": n, "parse_s": t1 - t0, "write_s": t2 - t1, "close_s": t3 - t2, "total_s": t3 - t0,
            "per_s": n / (t3 - t0), "added": counts["added"]}


def latency(target, codes: np.ndarray, queries: int) -> dict:
    """Open time, then p50/p99 of HashDB.match on known (8 bits flipped) and unknown hashes."""
    rng = np.random.default_rng(9)
    t0 = time.perf_counter()
    db = hashmatch.HashDB(target, create=False)
    opened = time.perf_counter() - t0
    times, found = [], 0
    for k in range(queries):
        if k % 2:
            c = codes[rng.integers(len(codes))].copy()
            c[:1] ^= 0xFF
            q = hashmatch.PDQ(bytes(c), 90)
        else:
            q = hashmatch.PDQ(bytes(rng.integers(0, 256, 32, dtype=np.uint8)), 90)
        s = time.perf_counter()
        m = db.match(q)
        times.append(time.perf_counter() - s)
        found += bool(m) and k % 2
    db.close()
    t = np.array(times) * 1000
    return {"open_s": opened, "p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99)),
            "known_found": found, "known": queries // 2}


_WRITER = """
import sys, time, numpy as np
from hashmatch import HashDB
url, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(5)
with HashDB(url) as db:
    for _ in range(n):
        h = bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex()
        db.add(h, bank="live")
        print(h, time.time(), flush=True)
        time.sleep(0.002)
"""


def visibility(target, n: int = 1000) -> dict:
    """Seconds from one process's commit of a new hash to another process's first match of it."""
    with hashmatch.HashDB(target) as reader:
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(target), str(n)], stdout=subprocess.PIPE,
                                  text=True)
        lags = []
        for line in writer.stdout:
            h, committed = line.split()
            while not reader.match(h):
                time.sleep(0.0005)
            lags.append(time.time() - float(committed))
        writer.wait()
    lag = np.array(lags) * 1000
    return {"adds": len(lags), "p50_ms": float(np.percentile(lag, 50)), "max_ms": float(lag.max())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--queries", type=int, default=2000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    os.environ.setdefault("HASHMATCH_INDEX_DIR", str(work / "index"))
    list_path = work / "list.csv"
    t = time.perf_counter()
    codes = write_list(list_path, args.n)
    print(f"wrote {args.n:,} hashes as CSV in {time.perf_counter() - t:.1f} s ({list_path.stat().st_size / 1e6:.0f} MB)")
    cluster = None
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        if backend == "sqlite":
            target = work / "bench.db"
        else:
            from pg import Cluster

            cluster = cluster or Cluster(fsync=True)
            target = cluster.new_database()
        r = import_into(target, list_path)
        print(f"{backend}: import {r['n']:,} in {r['total_s']:.1f} s = {r['per_s']:,.0f} hashes/s "
              f"(parse {r['parse_s']:.1f} s, write {r['write_s']:.1f} s, index save {r['close_s']:.1f} s)")
        lat = latency(target, codes, args.queries)
        print(f"{backend}: open {lat['open_s']:.2f} s; match p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms; "
              f"{lat['known_found']}/{lat['known']} known found")
        vis = visibility(work / "vis.db" if backend == "sqlite" else cluster.new_database())
        print(f"{backend}: a hash added by another process matchable after p50 {vis['p50_ms']:.1f} ms, "
              f"max {vis['max_ms']:.1f} ms over {vis['adds']} adds")
    if cluster is not None:
        cluster.stop()


if __name__ == "__main__":
    main()
