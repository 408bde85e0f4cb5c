"""End-to-end match() latency: one upload (JPEG bytes) decoded, hashed and looked up in a HashDB.

Run: python benchmarks/bench_match.py [--n 1000000] [--queries 400]
Builds a HashDB of --n random PDQ hashes plus ~75 distinct known images (scikit-image's
photographs and seeded synthetic ones), reopens it (the saved index is loaded, not rebuilt),
then times hashmatch.match() on --queries JPEG uploads (half are re-encoded known images, half
unknown), and db.match() on bare hex hashes to separate the lookup from decoding and hashing.
Prints p50/p99/max per call and how many uploads found exactly their own entry (unknown ones:
none).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import hashmatch  # noqa: E402
from hashmatch import _core  # noqa: E402
from hashmatch.pipeline.records import fingerprint  # noqa: E402
from hashmatch.signals import get as signal_type  # noqa: E402
from hashmatch.store import Record  # noqa: E402


def photos() -> list:
    """The known images: scikit-image's photographs (colour and gray) and seeded synthetic images
    of every family, each distinct (more than 31 bits from every other) and of PDQ quality >= 50."""
    from skimage import data

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "datasets" / "synthetic"))
    import generate

    candidates = []
    for name in ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina", "cat", "camera",
                 "moon", "coins", "page", "text", "grass", "gravel", "brick", "hubble_deep_field"]:
        loader = getattr(data, name, None)
        if loader is None:
            continue
        try:
            a = loader()
        except Exception:  # a loader that would need a download
            continue
        if a.ndim == 2:
            a = np.stack([a] * 3, -1)
        candidates.append(np.ascontiguousarray(a[:, :, :3]))
    candidates += generate.images(60, start=100)
    out, hashes = [], []
    for img in candidates:
        h = hashmatch.pdq(img)
        if h.quality >= 50 and all(h.distance(other) > 31 for other in hashes):
            out.append(img)
            hashes.append(h)
    return out


def upload(img: np.ndarray, rng: np.random.Generator, size=(1024, 768)) -> bytes:
    """An upload as a platform sees it: resized to 1024x768 and saved as a JPEG."""
    im = Image.fromarray(img).resize(size, Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=int(rng.integers(70, 95)))
    return buf.getvalue()


def percentiles(seconds: list) -> str:
    ms = np.array(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="random hashes in the database")
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--db", default=None, help="build the database here and keep it; reuse it if it exists")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"hashmatch {hashmatch.__version__}")
    print("SIMD clones run: " + ", ".join(f"{k} {_core.cpu_clone(k)}" for k in _core.cpu_clones()))  # cpp/cpu.hpp
    known = photos()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "bench.db"
        if path.exists():
            print(f"database: reusing {path}")
        else:
            build(path, args.n, known, rng)
        start = time.perf_counter()
        db = hashmatch.open_db(path)
        print(f"open (saved index loaded): {time.perf_counter() - start:.2f} s, {len(db):,} entries, index "
              f"backend {db.stats()['index']['backend']}")
        measure(db, known, rng, args.queries)
        db.close()


def build(path: Path, n: int, known: list, rng: np.random.Generator) -> None:
    """Write n random hashes and the known images, in batches of 100,000 (one transaction each)."""
    start = time.perf_counter()
    with hashmatch.HashDB(path) as db:
        for lo in range(0, n, 100_000):
            codes = rng.integers(0, 256, size=(min(100_000, n - lo), 32), dtype=np.uint8)
            db.add_records([Record("image", [fingerprint(signal_type("pdq"), hashmatch.PDQ(bytes(c), 100))],
                                   source="random") for c in codes])
        db.add_many(known, source="photos", external_ids=[f"photo{i}" for i in range(len(known))])
    print(f"database: {n:,} random hashes + {len(known)} known images written in "
          f"{time.perf_counter() - start:.1f} s ({os.path.getsize(path) / 1e6:.0f} MB, index "
          f"{os.path.getsize(str(path) + '.pdq-index') / 1e6:.0f} MB)")


def measure(db: hashmatch.HashDB, known: list, rng: np.random.Generator, queries: int) -> None:
    """Time match() on JPEG uploads, half of them known, and the lookup alone on their hashes."""
    uploads, expected = [], []  # expected: the known image's external id, or None for an unknown one
    for i in range(queries):
        if i % 2 == 0:
            k = i // 2 % len(known)
            uploads.append(upload(known[k], rng))
            expected.append(f"photo{k}")
        else:
            noise = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
            uploads.append(upload(noise, rng))  # smooth blobs once resized: unknown pictures
            expected.append(None)
    hashmatch.match(uploads[0], db=db)  # warm up: first-call imports and allocations
    times, wrong = [], []
    for data, want in zip(uploads, expected):
        t = time.perf_counter()
        found = hashmatch.match(data, db=db)
        times.append(time.perf_counter() - t)
        # Right means: a known upload's closest match is its own entry, an unknown one matches nothing.
        got = found[0].external_id if found else None
        if got != want:
            wrong.append((want, got))
    distinct = len({e for e in expected if e is not None})
    print(f"hashmatch.match(JPEG 1024x768 bytes), {len(times)} calls: {percentiles(times)}; "
          f"{len(times) - len(wrong)}/{len(times)} found exactly their entry (or none, for the unknown half; "
          f"{distinct} distinct known images)" + (f"; wrong: {wrong[:5]}" if wrong else ""))
    hexes = [hashmatch.pdq(u).hex for u in uploads]
    times = []
    for h in hexes:
        t = time.perf_counter()
        db.match(h)
        times.append(time.perf_counter() - t)
    print(f"db.match(hex), lookup only, {len(times)} calls: {percentiles(times)}")


if __name__ == "__main__":
    main()
