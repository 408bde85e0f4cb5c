"""``hashmatch hash``: print the PDQ hash of each image file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import HashmatchError
from ..signals.pdq import pdq_many


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``hash`` command."""
    h = sub.add_parser("hash", help="print the PDQ hash of each image file: hex, quality, path")
    h.add_argument("files", nargs="+", metavar="FILE")
    h.add_argument("--json", action="store_true", help="one JSON object per line")
    h.add_argument("--threads", type=int, default=None, help="decode/hash threads (default: all CPUs)")
    h.add_argument("--fast-decode", action="store_true", help="decode large JPEGs at a reduced DCT scale")
    h.add_argument("--exif-transpose", action="store_true", help="apply the EXIF orientation first")
    h.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Hash every file; every file gets its line, the exit status says whether any failed."""
    results = pdq_many([Path(f) for f in args.files], threads=args.threads, exif_transpose=args.exif_transpose,
                       fast_decode=args.fast_decode, return_exceptions=True)
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
    return 1 if failed else 0
