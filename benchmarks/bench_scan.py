"""Batch scan speed: `hashmatch scan` (1 and 2 workers, and a 2-worker Dask LocalCluster) against a plain loop.

Run: python benchmarks/bench_scan.py [--files 10000] [--dir DIR] [--known 1000] [--decoys 100000]
Writes photograph-like 640x480 JPEGs (random crops of scikit-image photographs with noise,
quality 85) into DIR once (a temporary directory by default), builds a database of the PDQ
hashes of `known` of them plus `decoys` random hashes, then times, over every file:
- the plain loop: Pillow decode, pdqhash.compute, faiss.IndexBinaryFlat range search over the
  same database hashes, one file after another (quality < 50 not matched, as hashmatch does);
- hashmatch.scan to a JSON Lines file with 1 and 2 worker processes (pool start-up included);
- hashmatch.scan with engine="dask" on a 2-worker LocalCluster (1 thread each; the cluster is
  started before the clock, the database is opened on the workers inside it);
and checks that every run matched the same files.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Set

import numpy as np

import hashmatch
from hashmatch.scan import read_results

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "cat", "immunohistochemistry", "hubble_deep_field", "retina")


def _photos() -> List[np.ndarray]:
    from skimage import data

    out = []
    for name in PHOTOS:
        img = getattr(data, name)()
        out.append(np.ascontiguousarray(np.stack([img] * 3, -1) if img.ndim == 2 else img[:, :, :3]))
    return out


def _write_chunk(args) -> int:
    from PIL import Image

    directory, start, stop = args
    photos = _photos()
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        src = photos[i % len(photos)]
        h, w = src.shape[:2]
        zoom = rng.uniform(0.3, 0.9)
        x, y = rng.uniform(0, 1 - zoom) * w, rng.uniform(0, 1 - zoom) * h
        im = Image.fromarray(src).resize((640, 480), Image.BILINEAR, box=(x, y, x + zoom * w, y + zoom * h))
        pixels = np.asarray(im).astype(np.int16) + rng.integers(-12, 13, size=(480, 640, 1), dtype=np.int16)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(directory / f"{i // 1000:03d}" / f"{i:06d}.jpg",
                                                                      quality=85)
    return stop - start


def make_files(directory: Path, n: int) -> List[str]:
    """n photograph-like 640x480 JPEGs in directory (kept when already there), sorted paths."""
    paths = [directory / f"{i // 1000:03d}" / f"{i:06d}.jpg" for i in range(n)]
    if not all(p.exists() for p in paths):
        for sub in {p.parent for p in paths}:
            sub.mkdir(parents=True, exist_ok=True)
        chunks = [(directory, s, min(n, s + 250)) for s in range(0, n, 250)]
        with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(_write_chunk, chunks))
    return sorted(str(p) for p in paths)


def make_db(path: Path, known: List[str], decoys: int) -> np.ndarray:
    """A database of the known files' PDQ hashes and random decoys; returns its codes (n x 32 uint8)."""
    rng = np.random.default_rng(1)
    hashes = hashmatch.pdq_many(known)
    codes = rng.integers(0, 256, size=(decoys, 32), dtype=np.uint8)
    with hashmatch.HashDB(path) as db:
        db.add_many(hashes, source="bench-known")
        db.add_many([hashmatch.PDQ(c.tobytes(), 100) for c in codes], source="bench-decoys")
    return np.concatenate([np.frombuffer(b"".join(h.bits for h in hashes), np.uint8).reshape(-1, 32), codes])


def plain_loop(paths: List[str], codes: np.ndarray) -> Set[str]:
    """The baseline: Pillow + pdqhash + faiss.IndexBinaryFlat, one file at a time; the matched paths."""
    import faiss
    import pdqhash
    from PIL import Image

    # One query per call gains nothing from OpenMP, and its spinning threads would only slow the baseline.
    faiss.omp_set_num_threads(1)
    index = faiss.IndexBinaryFlat(256)
    index.add(codes)
    matched = set()
    for path in paths:
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGB"))
        bits, quality = pdqhash.compute(pixels)
        if quality < 50:
            continue
        query = np.packbits(bits.astype(np.uint8)[None, :], axis=1)
        lims, _, _ = index.range_search(query, 32)  # FAISS's radius is exclusive: distance <= 31
        if lims[1] > lims[0]:
            matched.add(path)
    return matched


def matched_paths(out: Path) -> Set[str]:
    """The paths whose rows have a match."""
    return {r["path"] for r in read_results(str(out)) if r["matches"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--dir", default=None, help="where the JPEGs are written and kept (default: a temp dir)")
    parser.add_argument("--known", type=int, default=1000, help="files whose hashes are in the database")
    parser.add_argument("--decoys", type=int, default=100_000, help="random hashes also in the database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(args.dir or tmp) / "jpegs"
        start = time.perf_counter()
        paths = make_files(directory, args.files)
        print(f"{len(paths)} JPEGs 640x480 in {directory} ({time.perf_counter() - start:.0f} s to make or find)")
        db_path = Path(tmp) / "bench.db"
        codes = make_db(db_path, paths[::max(1, len(paths) // args.known)][:args.known], args.decoys)
        print(f"database: {len(codes)} PDQ hashes ({args.known} of the files, {args.decoys} random)")
        print(f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}, "
              f"hashmatch {hashmatch.__version__}")
        # The figures assume free cores: say how busy the machine was (other users' work included).
        print("load average at start: %.2f %.2f %.2f" % os.getloadavg())

        rates: Dict[str, float] = {}
        found: Dict[str, Set[str]] = {}
        start = time.perf_counter()
        found["loop"] = plain_loop(paths, codes)
        rates["loop"] = len(paths) / (time.perf_counter() - start)
        for workers in (1, 2):
            out = Path(tmp) / f"scan-{workers}.jsonl"
            s = hashmatch.scan(directory, db_path, out, workers=workers)
            rates[f"scan {workers}"], found[f"scan {workers}"] = s.files_per_second, matched_paths(out)
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            out = Path(tmp) / "scan-dask.jsonl"
            s = hashmatch.scan(directory, db_path, out, engine="dask", scheduler=client)
            rates["dask 2"], found["dask 2"] = s.files_per_second, matched_paths(out)

        base = rates["loop"]
        print(f"\n| run | files/s | vs plain loop | files matched |\n| --- | ---: | ---: | ---: |")
        for name, label in (("loop", "plain loop (Pillow + pdqhash + faiss.IndexBinaryFlat)"),
                            ("scan 1", "`hashmatch scan --workers 1`"), ("scan 2", "`hashmatch scan --workers 2`"),
                            ("dask 2", "`hashmatch scan --engine dask`, LocalCluster 2 x 1 thread")):
            print(f"| {label} | {rates[name]:.1f} | {rates[name] / base:.2f}x | {len(found[name])} |")
        print(f"\n2 workers / 1 worker: {rates['scan 2'] / rates['scan 1']:.2f}x (goal >= 1.7x); "
              f"2 workers / plain loop: {rates['scan 2'] / base:.2f}x (goal >= 5x)")
        print("load average at end: %.2f %.2f %.2f" % os.getloadavg())
        same = all(v == found["loop"] for v in found.values())
        print(f"every run matched the same files: {same}")


if __name__ == "__main__":
    main()
