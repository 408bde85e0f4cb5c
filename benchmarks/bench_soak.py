"""Soak: hashmatch.match() called 1,000,000 times from 4 threads keeps a flat resident memory.

Run: python benchmarks/bench_soak.py [--calls 1000000] [--threads 4] [--db-size 2000]
Builds a small database of random PDQ hashes in a temporary directory, then the threads call
``hashmatch.match(hex, db=path)`` (the upload path's one-liner: the database opened once per
process and shared) on a fixed pool of queries: a quarter are near-duplicates of stored hashes
(distance 0..31, they match), a quarter low-quality, the rest random (no match). Resident memory
is sampled every 10,000 calls; growth is measured from the end of the warm-up (the first 10% of
the calls) to the end. Exits non-zero on any error, wrong answer or growth of 5% or more.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time

import numpy as np

import hashmatch


def rss_kib() -> int:
    """Current resident set size (VmRSS) in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def flip(code: bytes, count: int, rng: np.random.Generator) -> str:
    """The hex of code with `count` distinct random bits flipped."""
    bits = np.unpackbits(np.frombuffer(code, np.uint8))
    bits[rng.choice(256, count, replace=False)] ^= 1
    return np.packbits(bits).tobytes().hex()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--db-size", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=4096, help="size of the query pool, reused round-robin")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    stored = [bytes(c) for c in rng.integers(0, 256, (args.db_size, 32), dtype=np.uint8)]
    tmp = tempfile.mkdtemp(prefix="hashmatch-soak-")
    path = os.path.join(tmp, "soak.db")
    with hashmatch.HashDB(path) as db:
        entry_ids = db.add_many([h.hex() for h in stored], qualities=[90] * len(stored), source="soak")

    # (query hex, quality, expected entry id or None). Random 256-bit codes are ~128 bits apart,
    # so a random query matches nothing and a near-duplicate matches exactly its original.
    pool = []
    for i in range(args.queries):
        kind = i % 4
        if kind == 0:
            j = int(rng.integers(len(stored)))
            pool.append((flip(stored[j], int(rng.integers(0, 32)), rng), None, entry_ids[j]))
        elif kind == 1:
            j = int(rng.integers(len(stored)))
            pool.append((stored[j].hex(), 10, None))  # below min_quality: skipped, not matched
        else:
            pool.append((bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex(), None, None))
    queries = [hashmatch.PDQ.from_hex(h, q) for h, q, _ in pool]

    counter = iter(range(args.calls))
    lock = threading.Lock()
    errors, wrong, samples = [], [0], []
    done = [0]
    warmup = max(1, args.calls // 10)
    baseline = [None]

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            h, _, expected = pool[i % len(pool)]
            try:
                found = hashmatch.match(queries[i % len(pool)], db=path)
            except Exception as e:  # a soak must finish to report; every error is counted
                errors.append(repr(e))
                continue
            ids = [m.entry_id for m in found]
            if ids != ([expected] if expected is not None else []):
                with lock:
                    wrong[0] += 1
            with lock:
                done[0] += 1
                if done[0] % 10_000 == 0:
                    samples.append((done[0], rss_kib()))
                    if done[0] >= warmup and baseline[0] is None:
                        baseline[0] = samples[-1][1]

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start

    end = samples[-1][1] if samples else rss_kib()
    base = baseline[0] or end
    after_warmup = [kib for n, kib in samples if n >= warmup]
    growth = 100.0 * (end - base) / base
    print(f"Machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}, "
          f"hashmatch {hashmatch.__version__}")
    print(f"Command: python {' '.join(sys.argv)}")
    print()
    print("| calls | threads | db entries | wall s | calls/s | errors | wrong answers | RSS after warm-up MiB "
          "| RSS min..max after warm-up MiB | RSS at end MiB | growth |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {done[0]:,} | {args.threads} | {args.db_size:,} | {elapsed:.1f} | {done[0] / elapsed:,.0f} | "
          f"{len(errors)} | {wrong[0]} | {base / 1024:.1f} | {min(after_warmup) / 1024:.1f}..{max(after_warmup) / 1024:.1f} "
          f"| {end / 1024:.1f} | {growth:+.2f}% |")
    if errors:
        print("first errors:", errors[:3])
    return 0 if not errors and not wrong[0] and growth < 5.0 and done[0] == args.calls else 1


if __name__ == "__main__":
    sys.exit(main())
