"""Live exchange fetch speed: N NCMEC-style entries (mixed fingerprint types) from the fake NCMEC server into SQLite.

    python benchmarks/bench_exchanges.py --n 1000000
    python benchmarks/bench_exchanges.py --sigkill 50 --n 100000   # the SIGKILL loop, then resume

The fake (tests/exchange_fakes.py) runs in its own process. Its own serving rate is measured first
(raw pages over HTTP, nothing parsed), then `exchanges.fetch` (python-threatexchange's NCMEC client,
our conversion, Store.sync_records with each page's checkpoint) into a new SQLite database.
Goal (issue 19): >= 20,000 entries/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from exchange_fakes import FakeServer, NCMECApp, live_view, ncmec_expected  # noqa: E402

import hashmatch  # noqa: E402
from hashmatch import exchanges  # noqa: E402
from hashmatch.store import Store  # noqa: E402


def _serve(n: int, conn, parents_end) -> None:
    parents_end.close()  # so that the parent's death ends this process (EOF below)
    app = NCMECApp()
    app.fill(n)
    srv = FakeServer(app)
    conn.send(srv.url)
    try:
        conn.recv()  # until the parent says stop, or dies
    except EOFError:
        pass


def _pages(db: Path) -> int:
    """Pages the exchange has committed (read with sqlite3, as a monitor would)."""
    import sqlite3
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("SELECT pages FROM exchange_status WHERE exchange = 'bench'").fetchone()[0])
    finally:
        conn.close()


def serving_rate(url: str, n: int) -> float:
    """Entries/s the fake serves: every page of the window, bodies read, nothing parsed."""
    import requests
    s = requests.Session()
    s.auth = (NCMECApp.USER, NCMECApp.PASSWORD)
    q = {"from": "2000-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"}
    t = time.perf_counter()
    for start in range(0, n, 1000):
        r = s.get(url + "/v2/entries", params={**q, "start": start, "size": 1000})
        r.raise_for_status()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--sigkill", type=int, default=0, help="kill a fetch this many times at random points, then resume")
    ap.add_argument("--db", default=None)
    args = ap.parse_args()
    ctx = multiprocessing.get_context("fork")
    ours, theirs = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(args.n, theirs, ours), daemon=True)
    t = time.perf_counter()
    server.start()
    url = ours.recv()
    print(f"fake NCMEC with {args.n:,} entries ready in {time.perf_counter() - t:.1f} s at {url}", flush=True)
    rate = serving_rate(url, args.n)
    print(f"fake's own serving rate: {rate:,.0f} entries/s", flush=True)
    db = Path(args.db or tempfile.mkdtemp(prefix="bench-ex-")) / "x.db" if not args.db else Path(args.db)
    os.environ["HASHMATCH_BENCH_CREDENTIALS"] = f"{NCMECApp.USER}:{NCMECApp.PASSWORD}"
    with Store(db) as st:
        exchanges.add(st, "bench", "ncmec", "ncmec", {"url": url + "/", "timeout": 30})
    kills = 0
    if args.sigkill:
        cmd = [sys.executable, "-m", "hashmatch", "exchange", "fetch", "bench", "--db", str(db)]
        rng = random.Random(1)
        mid_fetch, last_pages = 0, 0
        while kills < args.sigkill:
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if rng.random() < 0.25:  # during start-up or the first page
                time.sleep(rng.uniform(0.2, 1.2))
            else:  # at a random point shortly after this process committed its first page
                while p.poll() is None and _pages(db) == last_pages:
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.25))
            if p.poll() is not None:
                break  # finished before this kill: done
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            kills += 1
            pages = _pages(db)
            mid_fetch += pages > last_pages
            last_pages = pages
        print(f"{kills} SIGKILLs at random points; {mid_fetch} of them after the killed process had committed "
              f"pages ({last_pages} pages committed before the resume)", flush=True)
    t = time.perf_counter()
    with Store(db) as st:
        rep = exchanges.fetch(st, "bench")
        seconds = time.perf_counter() - t
        print(f"fetch{' (resume)' if args.sigkill else ''}: {rep.entries:,} entries in {rep.pages} pages, "
              f"{seconds:.1f} s: {rep.entries / seconds:,.0f} entries/s; error={rep.error}", flush=True)
        view = live_view(st, "bench")  # asserts that no exchange id is live twice
        rows, distinct = st.sql.execute("SELECT COUNT(*), COUNT(DISTINCT external_id) FROM entries").fetchone()
        print(f"entry rows {rows:,}, distinct exchange ids {distinct:,}", flush=True)
        print(f"bank holds {len(view):,} live entries; stats: {st.stats()['fingerprints']}", flush=True)
    expected_n = args.n
    print(f"bank equals the fake's truth: {len(view) == expected_n}", flush=True)
    if args.sigkill:
        app = NCMECApp()
        app.fill(args.n)
        print(f"bank equals the fake's truth entry by entry: {view == ncmec_expected(app)}", flush=True)
    print(f"hashmatch {getattr(hashmatch, '__version__', '')}; {os.cpu_count()} CPUs; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ours.send("stop")


if __name__ == "__main__":
    main()
