"""``hashmatch demo``: hash the bundled synthetic images and show what PDQ sees."""

from __future__ import annotations

import io
import time
from importlib.resources import files
from pathlib import Path
from typing import List, TextIO

import numpy as np
from PIL import Image

from .hashes import distance
from .image import pdq_many


def synthetic_images() -> List[Path]:
    """Paths of the synthetic images bundled with the package, sorted by name."""
    folder = Path(str(files("hashmatch") / "data" / "synthetic"))
    return sorted(p for p in folder.glob("*.png"))


def _reencode(path: Path) -> bytes:
    # What an upload pipeline typically does to a picture: shrink it and save as JPEG.
    with Image.open(path) as im:
        im = im.convert("RGB")
        im = im.resize((max(1, im.width * 3 // 4), max(1, im.height * 3 // 4)), Image.BILINEAR)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=70)
        return buf.getvalue()


def run_demo(out: TextIO) -> int:
    """Hash the synthetic set and its re-encoded copies, print a report, return an exit status."""
    paths = synthetic_images()
    if not paths:
        print("hashmatch demo: no bundled synthetic images found (broken install?)", file=out)
        return 1
    start = time.perf_counter()
    originals = pdq_many(paths)
    elapsed = time.perf_counter() - start
    print(f"Hashed {len(paths)} bundled synthetic images in {elapsed * 1000:.1f} ms\n", file=out)
    print(f"{'image':<22} {'size':>9}  {'quality':>7}  pdq", file=out)
    for path, h in zip(paths, originals):
        with Image.open(path) as im:
            size = f"{im.width}x{im.height}"
        print(f"{path.name:<22} {size:>9}  {h.quality:>7}  {h.hex}", file=out)

    copies = pdq_many([_reencode(p) for p in paths])
    same = np.array([distance(a, b) for a, b in zip(originals, copies)])
    others = np.array(
        [distance(originals[i], originals[j]) for i in range(len(paths)) for j in range(i + 1, len(paths))]
    )
    print(file=out)
    print(f"3/4-size JPEG (q=70) copies vs their originals: distance median {np.median(same):.0f}, "
          f"max {same.max()} (match threshold 31: {int((same <= 31).sum())}/{len(same)} within)", file=out)
    print(f"Different images vs each other: distance median {np.median(others):.0f}, "
          f"min {others.min()} ({int((others <= 31).sum())} of {len(others)} pairs within 31)", file=out)
    return 0
