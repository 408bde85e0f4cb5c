"""``hashmatch match``: match image and video files against a hash database (which must exist)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import HashmatchError
from ..pipeline import HashDB


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``match`` command."""
    m = sub.add_parser("match", help="match image and video files against a hash database")
    m.add_argument("db", metavar="DB")
    m.add_argument("files", nargs="+", metavar="FILE")
    m.add_argument("--json", action="store_true", help="one JSON object per file, with a matches list")
    m.add_argument("--dihedral", action="store_true", help="also match rotated and flipped copies")
    m.add_argument("--trim-borders", action="store_true",
                   help="also match images with their uniform borders (letterbox, frame) cut off")
    m.add_argument("--max-distance", type=int, default=None, help="PDQ distance threshold (default 31)")
    m.add_argument("--bank", action="append", default=None, metavar="BANK", help="only this bank (repeatable)")
    m.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """One line (or JSON object) per file; exit status 1 when any file failed."""
    failed = 0
    with HashDB(args.db, create=False) as db:
        for path in args.files:
            try:
                found = db.match(Path(path), dihedral=args.dihedral, trim_borders=args.trim_borders,
                                 max_distance=args.max_distance, banks=args.bank)
            except HashmatchError as e:
                failed += 1
                if args.json:
                    print(json.dumps({"path": path, "error": type(e).__name__, "reason": str(e)}))
                else:
                    print(f"hashmatch: {path}: {type(e).__name__}: {e}", file=sys.stderr)
                continue
            if args.json:
                print(json.dumps({"path": path, "media_type": found.media_type,
                                  "pdq": found.query.hex if found.query else None,
                                  "quality": found.query.quality if found.query else None,
                                  "skipped": found.skipped, "matches": [m.to_dict() for m in found],
                                  "allowed": [m.to_dict() for m in found.allowed]}))
            elif found.skipped and not found:
                print(f"{path}: not matched ({found.skipped})")
            elif not found:
                print(f"{path}: no match")
            else:
                for m in found:
                    extra = (f" frames {m.query_match_percent:.0f}%/{m.compared_match_percent:.0f}%"
                             if m.query_match_percent is not None else f" variant {m.variant}")
                    print(f"{path}: entry {m.entry_id} {m.media_type} {m.format} distance {m.distance} "
                          f"bank {m.bank} source {m.source or '-'} labels {','.join(m.labels) or '-'}{extra}")
            if found.allowed and not args.json:
                print(f"{path}: allowed (matches allow bank {found.allowed[0].bank}: known false positive)")
    return 1 if failed else 0
