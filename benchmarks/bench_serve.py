"""hashmatch serve under load, on loopback: raw_lookup rate and latency, upload lookups, start-up time,
how soon a new hash is matchable, and RSS over a run. Bounded in count and time.

Run: python benchmarks/bench_serve.py [--n 1000000] [--workers 2] [--seconds 10] [--soak 60] [--db PATH]

Builds (or reuses) a SQLite database of N random PDQ hashes in one bank (added in batches of
200,000), creates a matcher token, and starts `hashmatch serve` on 127.0.0.1. The load
generator is wrk (apt's `wrk`) on the same machine, sharing its cores with the server:
- raw_lookup: GET /m/raw_lookup for 1,000 different hashes (known ones with 8 bits flipped and
  random ones), at 1, 8 and 32 connections, --seconds each: requests/s, p50 and p99 (wrk's).
- upload lookups: POST /m/lookup with a 1024x768 JPEG (multipart), at 2 and 4 connections,
  against the library's own rate for the same bytes (hashmatch.pdq_many on the JPEG bytes, all
  cores), measured in the same run.
- time to first answer: from starting the command (index saved beside the database) to the
  first 200 from /m/raw_lookup.
- new hash matchable: POST /c/bank/.../signal, then raw_lookup on fresh connections (either
  worker) until it matches: p50 and max over 20 hashes.
- RSS: every worker's resident memory each second during --soak seconds of raw_lookup load at
  8 connections: first sample after warm-up vs last.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import hashmatch  # noqa: E402
from hashmatch.store import Fingerprint, Record, tokens  # noqa: E402
from serving import children  # noqa: E402


def build(path: Path, n: int, seed: int = 1) -> np.ndarray:
    """A database of n random PDQ hashes in bank BENCH (reused when it holds them); the codes."""
    codes = np.random.default_rng(seed).integers(0, 256, (n, 32), dtype=np.uint8)
    if path.exists():
        with hashmatch.HashDB(path, create=False) as db:
            if len(db) == n:
                return codes
        path.unlink()
    t0 = time.perf_counter()
    with hashmatch.HashDB(path) as db:
        db.create_bank("BENCH")
        for start in range(0, n, 200_000):
            block = codes[start:start + 200_000]
            db.add_records([Record("image", [Fingerprint("pdq", bytes(c).hex(), 90)], bank="BENCH")
                            for c in block])
            print(f"  built {start + len(block):,} / {n:,} in {time.perf_counter() - t0:.0f} s", flush=True)
        db.save_index()
    return codes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(db: Path, port: int, workers: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hashmatch", "serve", "--db", str(db), "--port", str(port),
                             "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def first_answer(url: str, token: str, query: str, timeout: float = 300) -> float:
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            r = httpx.get(url + "/m/raw_lookup", params={"signal_type": "pdq", "signal": query},
                          headers={"Authorization": f"Bearer {token}"}, timeout=2)
            if r.status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    raise RuntimeError("the server did not answer")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def workers_of(proc: subprocess.Popen) -> List[int]:
    pids = [p for p in children(proc.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return pids or [proc.pid]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pids: List[int]) -> float:
    """User + system CPU seconds the processes have used."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, connections: int, seconds: float, script: Path, token: str) -> Dict[str, float]:
    """wrk's requests/s, p50 and p99 (ms), and non-2xx count."""
    threads = 1 if connections < 8 else 2
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--latency",
                          "-s", str(script), "-H", f"Authorization: Bearer {token}", url],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rate, "p50_ms": p50, "p99_ms": p99, "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else ""}


def lookup_script(path: Path, codes: np.ndarray, count: int = 1000, seed: int = 2) -> Path:
    """A wrk script that GETs raw_lookup for `count` different hashes (half known with 8 bits flipped)."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        if i % 2 == 0:
            code = codes[rng.integers(len(codes))].copy()
            for bit in rng.choice(256, 8, replace=False):
                code[bit // 8] ^= 1 << (bit % 8)
        else:
            code = rng.integers(0, 256, 32, dtype=np.uint8)
        paths.append(f"/m/raw_lookup?signal_type=pdq&signal={bytes(code).hex()}")
    lua = "local paths = {\n" + ",\n".join(f'"{p}"' for p in paths) + "\n}\nlocal i = 0\n" \
        "request = function()\n  i = i + 1\n  return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n"
    path.write_text(lua)
    return path


def upload_script(path: Path, jpeg: bytes) -> Path:
    """A wrk script that POSTs the JPEG to /m/lookup as multipart/form-data."""
    body = (b"--hmbench\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"q.jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n" + jpeg + b"\r\n--hmbench--\r\n")
    escaped = "".join(f"\\{b:03d}" for b in body)
    path.write_text(f'wrk.method = "POST"\nwrk.body = "{escaped}"\n'
                    'wrk.headers["Content-Type"] = "multipart/form-data; boundary=hmbench"\n')
    return path


def test_jpeg() -> bytes:
    from PIL import Image
    from skimage import data

    img = Image.fromarray(data.astronaut()).resize((1024, 768), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def matchable(url: str, token: str, trials: int = 20) -> List[float]:
    """Seconds from a signal's 200 to its first match on a fresh connection (either worker), per trial."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    rng = np.random.default_rng(9)
    out = []
    for _ in range(trials):
        value = bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex()
        r = httpx.post(url + "/c/bank/BENCH/signal", json={"pdq": value}, headers=headers, timeout=30)
        r.raise_for_status()
        entry, t0 = r.json()["id"], time.perf_counter()
        while True:
            with httpx.Client(headers=headers, timeout=10) as c:
                got = c.get(url + "/m/raw_lookup", params={"signal_type": "pdq", "signal": value}).json()
            if entry in got["matches"]:
                out.append(time.perf_counter() - t0)
                break
            if time.perf_counter() - t0 > 10:
                out.append(float("inf"))
                break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--soak", type=float, default=60)
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    db = args.db or Path(tempfile.gettempdir()) / f"bench-serve-{args.n}.db"
    print(f"database {db} with {args.n:,} PDQ hashes", flush=True)
    codes = build(db, args.n)
    with hashmatch.HashDB(db, create=False) as h:
        token = tokens.create_token(h, "admin", "bench")
    results: Dict[str, object] = {"n": args.n, "workers": args.workers, "cpus": os.cpu_count()}
    # the baseline: the same lookups in-process (HashDB.match_hash, one thread), measured in this run
    with hashmatch.HashDB(db, create=False) as h:
        queries = re.findall(r"signal=([0-9a-f]{64})", lookup_script(work / "q.lua", codes).read_text())
        h.match_hash("pdq", queries[0])
        t = time.perf_counter()
        for q in queries * 2:
            h.match_hash("pdq", q)
        results["library_lookups_per_s"] = 2 * len(queries) / (time.perf_counter() - t)
    print(f"library baseline: {results['library_lookups_per_s']:,.0f} HashDB.match_hash lookups/s in one thread",
          flush=True)
    query = bytes(codes[0]).hex()
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    # time to first answer with the index saved beside the database (a first start saves it)
    proc = start(db, port, args.workers)
    first_answer(url, token, query)
    stop(proc)
    t0 = time.perf_counter()
    proc = start(db, port, args.workers)
    results["first_answer_s"] = first_answer(url, token, query)
    print(f"time to first answer: {results['first_answer_s']:.2f} s", flush=True)
    try:
        time.sleep(1.0)  # every worker up
        script = lookup_script(work / "lookup.lua", codes)
        pids = workers_of(proc)
        for conns in (1, 8, 32):
            c0, load0 = cpu_seconds(pids), os.getloadavg()[0]
            r = wrk(url + "/", conns, args.seconds, script, token)
            # the server's own CPU per answer: what the rate would be with the cores to itself
            r["server_cpu_us"] = 1e6 * (cpu_seconds(pids) - c0) / max(1.0, r["rps"] * args.seconds)
            r["loadavg_before"] = load0
            results[f"raw_lookup_c{conns}"] = r
            print(f"raw_lookup c={conns}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
                  f" (non-2xx {r['non2xx']}{', ' + r['socket_errors'] if r['socket_errors'] else ''}); "
                  f"server CPU {r['server_cpu_us']:.0f} us/request; load average before {load0:.1f}", flush=True)

        jpeg = test_jpeg()
        t = time.perf_counter()
        batch = [jpeg] * 64
        hashmatch.pdq_many(batch)
        lib_rate = len(batch) / (time.perf_counter() - t)
        results["pdq_many_jpeg_per_s"] = lib_rate
        up = upload_script(work / "upload.lua", jpeg)
        for conns in (2, 4):
            r = wrk(url + "/m/lookup", conns, args.seconds, up, token)
            results[f"upload_c{conns}"] = r
            print(f"upload lookups c={conns}: {r['rps']:.1f} /s (pdq_many on the same JPEG: {lib_rate:.1f} /s, "
                  f"{100 * r['rps'] / lib_rate:.0f}%), p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms", flush=True)

        times = matchable(url, token)
        results["matchable_p50_s"] = float(np.median(times))
        results["matchable_max_s"] = float(max(times))
        print(f"new hash matchable: p50 {1000 * np.median(times):.1f} ms, max {1000 * max(times):.1f} ms", flush=True)

        pids = workers_of(proc)
        samples: List[List[float]] = []
        soak = subprocess.Popen(["wrk", "-t2", "-c8", f"-d{int(args.soak)}s", "-s", str(script), "-H",
                                 f"Authorization: Bearer {token}", url + "/"], stdout=subprocess.PIPE, text=True)
        t = time.perf_counter()
        while soak.poll() is None:
            samples.append([rss_mb(p) for p in pids])
            time.sleep(1.0)
        soak_out = soak.stdout.read()
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", soak_out).group(1))
        warm = samples[min(len(samples) - 1, max(1, len(samples) // 10))]
        last = samples[-1]
        growth = max((b - a) / a for a, b in zip(warm, last))
        results["rss"] = {"pids": pids, "warm_mb": warm, "last_mb": last, "max_growth": growth,
                          "seconds": time.perf_counter() - t, "rps": rate}
        print(f"RSS over {time.perf_counter() - t:.0f} s at {rate:,.0f} req/s: "
              + ", ".join(f"{a:.0f} -> {b:.0f} MB" for a, b in zip(warm, last)) + f" (max growth {100 * growth:+.1f}%)",
              flush=True)
    finally:
        stop(proc)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=str))
    _ = t0


if __name__ == "__main__":
    main()
