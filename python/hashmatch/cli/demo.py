"""``hashmatch demo``: build a hash database from the bundled synthetic images and match copies."""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path
from typing import Callable, List, TextIO, Tuple

from PIL import Image, ImageOps

from ..config import PDQ_MAX_DISTANCE, PDQ_MIN_QUALITY
from ..pipeline import HashDB
from ..pipeline.records import fingerprint
from ..signals import get
from ..signals.pdq import pdq_many
from ..store import Record


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``demo`` command."""
    d = sub.add_parser("demo", help="build a database from the bundled synthetic images and match copies")
    d.add_argument("--serve", action="store_true",
                   help="also serve it (hashmatch serve on a free loopback port) and match copies over HTTP")
    d.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.serve:
        from .serve_demo import run_serve_demo

        return run_serve_demo(out=sys.stdout)
    return run_demo(out=sys.stdout)


def synthetic_images() -> List[Path]:
    """Paths of the synthetic images bundled with the package, sorted by name."""
    folder = Path(str(files("hashmatch") / "data" / "synthetic"))
    return sorted(p for p in folder.glob("*.png"))


def _jpeg(im: Image.Image, quality: int = 70) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _crop(im: Image.Image, fraction: float) -> Image.Image:
    dx, dy = int(im.width * fraction), int(im.height * fraction)
    return im.crop((dx, dy, im.width - dx, im.height - dy))


#: What upload pipelines and re-uploaders do to a picture, each ending in a JPEG as uploads do.
TRANSFORMS: List[Tuple[str, Callable[[Image.Image], bytes]]] = [
    ("jpeg q70", lambda im: _jpeg(im, 70)),
    ("resize 3/4", lambda im: _jpeg(im.resize((im.width * 3 // 4, im.height * 3 // 4), Image.BILINEAR), 90)),
    # PDQ is sensitive to crops: 1% off each side stays within 31 bits on these images, 5% does not.
    ("crop 1%", lambda im: _jpeg(_crop(im, 0.01), 90)),
    ("mirror", lambda im: _jpeg(ImageOps.mirror(im), 90)),
]


def run_demo(out: TextIO) -> int:
    """Build a database from the synthetic set, match transformed copies and a distractor."""
    paths = synthetic_images()
    if len(paths) < 2:
        print("hashmatch demo: no bundled synthetic images found (broken install?)", file=out)
        return 1
    # The last image is held out of the database: it is the distractor that must not match.
    known, distractor = paths[:-1], paths[-1]
    with tempfile.TemporaryDirectory() as tmp, HashDB(Path(tmp) / "demo.db") as db:
        start = time.perf_counter()
        hashes = pdq_many(known)
        db.add_records([Record("image", [fingerprint(get("pdq"), h)],
                               source="synthetic", external_id=p.name) for p, h in zip(known, hashes)])
        elapsed = time.perf_counter() - start
        print(f"Hashed {len(known)} bundled synthetic images into a database in {elapsed * 1000:.0f} ms "
              f"({paths[-1].name} held out as a distractor).\n", file=out)

        print(f"{'query':<28} {'transform':<11} {'match':<22} {'distance':>8}  variant", file=out)
        expected_ok = True
        samples = known[:: max(1, len(known) // 5)][:5]
        for path in samples:
            with Image.open(path) as im:
                im.load()
                for name, transform in TRANSFORMS:
                    found = db.match(transform(im), dihedral=name == "mirror")
                    best = found[0] if found else None
                    hit = best is not None and best.external_id == path.name
                    expected_ok &= hit
                    shown = best.external_id if best else ("skipped: " + found.skipped if found.skipped else "-")
                    dist = str(best.distance) if best else "-"
                    print(f"{path.name:<28} {name:<11} {shown:<22} {dist:>8}  {best.variant if best else ''}",
                          file=out)
        with Image.open(distractor) as im:
            found = db.match(_jpeg(im, 90))
        shown = "no match (correct)" if not found else found[0].external_id
        print(f"{distractor.name:<28} {'jpeg q90':<11} {shown:<22} {'-' if not found else found[0].distance:>8}",
              file=out)
        expected_ok &= not found
        stats = db.stats()
    print(f"\n{stats['entries']} entries, index backend {stats['index']['backend']}; "
          f"threshold: PDQ distance <= {PDQ_MAX_DISTANCE}, query quality >= {PDQ_MIN_QUALITY}. Mirrored copies "
          "match with dihedral=True.",
          file=out)
    if not expected_ok:
        print("Some copies did not match as expected.", file=out)
    return 0 if expected_ok else 1
