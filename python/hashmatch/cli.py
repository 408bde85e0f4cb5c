"""The ``hashmatch`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional, Sequence

from .errors import HashmatchError
from .image import pdq_many


def _cmd_hash(args: argparse.Namespace) -> int:
    results = pdq_many(
        args.files,
        threads=args.threads,
        exif_transpose=args.exif_transpose,
        fast_decode=args.fast_decode,
        return_exceptions=True,
    )
    failed = 0
    for path, result in zip(args.files, results):
        if isinstance(result, HashmatchError):
            failed += 1
            if args.json:
                print(json.dumps({"path": path, "error": type(result).__name__, "reason": str(result)}))
            else:
                print(f"hashmatch: {path}: {type(result).__name__}: {result}", file=sys.stderr)
        elif args.json:
            print(json.dumps({"path": path, "pdq": result.hex, "quality": result.quality}))
        else:
            print(f"{result.hex} {result.quality} {path}")
    # Every file got its line; the exit status says whether any of them failed.
    return 1 if failed else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(out=sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hashmatch`` command."""
    parser = argparse.ArgumentParser(prog="hashmatch", description="Perceptual image hash matching.")
    sub = parser.add_subparsers(dest="command", required=True)

    h = sub.add_parser("hash", help="print the PDQ hash of each image file: hex, quality, path")
    h.add_argument("files", nargs="+", metavar="FILE")
    h.add_argument("--json", action="store_true", help="one JSON object per line")
    h.add_argument("--threads", type=int, default=None, help="decode/hash threads (default: all CPUs)")
    h.add_argument("--fast-decode", action="store_true", help="decode large JPEGs at a reduced DCT scale")
    h.add_argument("--exif-transpose", action="store_true", help="apply the EXIF orientation first")
    h.set_defaults(func=_cmd_hash)

    d = sub.add_parser("demo", help="hash the bundled synthetic images and report")
    d.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``hashmatch`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
