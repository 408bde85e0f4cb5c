"""PDQ speed: ours against the reference `pdqhash` (and imagehash's pHash for scale).

Run: python benchmarks/bench_pdq.py [--quick]
Prints images/s on the same decoded 1024x1024 array, pdq_many scaling on 2 threads, and
end-to-end files/s on JPEGs with and without fast_decode, with fast_decode's Hamming
distance to the full decode. Needs the `bench` extra: pip install ".[bench]".
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, List

import numpy as np
from PIL import Image

import hashmatch
from hashmatch import _core


def rate(fn: Callable[[], object], items: int, min_seconds: float) -> float:
    """Best-of-3 items/s of fn(), each round repeated until it lasts min_seconds."""
    best = 0.0
    for _ in range(3):
        rounds, start = 0, time.perf_counter()
        while True:
            fn()
            rounds += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = max(best, rounds * items / elapsed)
    return best


def photo(width: int, height: int, seed: int) -> np.ndarray:
    """A real photograph from scikit-image, resized, with a little seeded noise."""
    from skimage import data

    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    base = Image.fromarray(sources[seed % len(sources)]).resize((width, height), Image.BICUBIC)
    noise = np.random.default_rng(seed).normal(0, 4, (height, width, 3))
    return np.clip(np.asarray(base, np.float32) + noise, 0, 255).astype(np.uint8)


def write_jpegs(folder: Path, count: int, width: int, height: int) -> List[Path]:
    paths = []
    for i in range(count):
        p = folder / f"{width}x{height}_{i:03d}.jpg"
        Image.fromarray(photo(width, height, i)).save(p, "JPEG", quality=90)
        paths.append(p)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timings, fewer files")
    args = parser.parse_args()
    import imagehash
    import pdqhash

    t = 0.3 if args.quick else 2.0
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.platform()}")
    print("SIMD clones run: " + ", ".join(f"{k} {_core.cpu_clone(k)}" for k in _core.cpu_clones()))  # cpp/cpu.hpp
    print(f"hashmatch {hashmatch.__version__}, pdqhash {pdqhash.__version__ if hasattr(pdqhash, '__version__') else '?'}, "
          f"numpy {np.__version__}, Pillow {Image.__version__}\n")

    # 1. The same decoded 1024x1024 RGB array.
    img = photo(1024, 1024, 0)
    assert np.packbits(pdqhash.compute(img)[0].astype(np.uint8)).tobytes().hex() == hashmatch.pdq(img).hex
    ref = rate(lambda: pdqhash.compute(img), 1, t)
    ours = rate(lambda: hashmatch.pdq(img), 1, t)
    ref_d = rate(lambda: pdqhash.compute_dihedral(img), 1, t)
    ours_d = rate(lambda: hashmatch.pdq(img, dihedral=True), 1, t)
    pil = Image.fromarray(img)
    phash = rate(lambda: imagehash.phash(pil), 1, t)
    print("1024x1024 decoded RGB array, one thread            images/s   ms/image")
    for name, r in [("pdqhash.compute (reference)", ref), ("hashmatch.pdq", ours),
                    ("pdqhash.compute_dihedral", ref_d), ("hashmatch.pdq(dihedral=True)", ours_d),
                    ("imagehash.phash (PIL image)", phash)]:
        print(f"  {name:<44} {r:9.1f} {1000 / r:9.2f}")
    print(f"  speed-up over the reference: {ours / ref:.1f}x (dihedral {ours_d / ref_d:.1f}x)\n")

    # 2. pdq_many on 1 and 2 threads.
    batch = [photo(1024, 1024, s) for s in range(16)]
    one = rate(lambda: hashmatch.pdq_many(batch, threads=1), len(batch), t)
    two = rate(lambda: hashmatch.pdq_many(batch, threads=2), len(batch), t)
    print("pdq_many on 16 decoded 1024x1024 arrays            images/s")
    print(f"  threads=1 {one:41.1f}\n  threads=2 {two:41.1f}\n  scaling: {two / one:.2f}x\n")

    # 3. End to end on JPEG files.
    n12 = 6 if args.quick else 24
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sets = {"12 MP (4000x3000)": write_jpegs(folder, n12, 4000, 3000),
                "1 MP (1280x800)": write_jpegs(folder, 4 * n12, 1280, 800)}
        print("end-to-end JPEG files (decode + hash)              files/s   1 thread / 2 threads")
        for label, paths in sets.items():
            def baseline() -> None:
                for p in paths:
                    pdqhash.compute(np.asarray(Image.open(p).convert("RGB")))

            base = rate(baseline, len(paths), t)
            full1 = rate(lambda: hashmatch.pdq_many(paths, threads=1), len(paths), t)
            full2 = rate(lambda: hashmatch.pdq_many(paths, threads=2), len(paths), t)
            fast1 = rate(lambda: hashmatch.pdq_many(paths, threads=1, fast_decode=True), len(paths), t)
            fast2 = rate(lambda: hashmatch.pdq_many(paths, threads=2, fast_decode=True), len(paths), t)
            dist = [hashmatch.distance(a, b) for a, b in
                    zip(hashmatch.pdq_many(paths), hashmatch.pdq_many(paths, fast_decode=True))]
            print(f"  {label}")
            print(f"    Pillow + pdqhash (reference loop) {base:15.1f}")
            print(f"    hashmatch.pdq_many {full1:30.1f} / {full2:.1f}")
            print(f"    hashmatch.pdq_many fast_decode {fast1:18.1f} / {fast2:.1f}"
                  f"   ({fast1 / full1:.1f}x the full decode)")
            print(f"    fast_decode vs full decode distance: mean {statistics.mean(dist):.1f}, "
                  f"max {max(dist)} over {len(dist)} files")


if __name__ == "__main__":
    main()
