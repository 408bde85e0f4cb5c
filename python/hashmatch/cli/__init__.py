"""The ``hashmatch`` command line: one module per command group."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from ..errors import HashmatchError
from . import db, demo, exchange, match, scan, serve
from . import hash as hash_cmd

DESCRIPTION = """\
Perceptual image and video hash matching for trust & safety pipelines.

Hash images (PDQ; animated GIF/APNG/WebP, HEIC and AVIF too) and videos (vPDQ, TMK+PDQF,
MD5/SHA-256), keep known hashes in banks of a database (a SQLite file, or PostgreSQL for a
shared one), import and export the hash lists the field exchanges (JSON Lines, CSV, 'format
value' lines, vPDQ text, .tmk), match uploads against it, and scan whole directories or
buckets (every core, or a Dask cluster) with resumable results.
"""

EPILOG = """\
examples:
  hashmatch demo                                  match copies against the bundled synthetic images
  hashmatch demo --serve                          the same, served by `hashmatch serve` and called over HTTP
  hashmatch db add known.db known/*.jpg clip.mp4  hash files into a database (creates it)
  hashmatch db import known.db list.csv --bank ncmec   import a hash list into a bank (creates the database)
  hashmatch db bank list known.db                 the banks, their switches and thresholds
  hashmatch match known.db upload.jpg --json      match uploads (the database must exist)
  hashmatch scan uploads/ --db known.db --out results.jsonl
  hashmatch token create --role matcher --db known.db   an API token for the service (printed once)
  hashmatch serve --db known.db --workers 2       the HTTP service: HMA's routes and /v1 on port 5100
  hashmatch exchange add ncmec --api ncmec --bank ncmec --db known.db   keep a bank in sync with NCMEC
  hashmatch exchange fetch --db known.db         one incremental pass of every exchange (cron)
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hashmatch`` command."""
    parser = argparse.ArgumentParser(prog="hashmatch", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (hash_cmd, match, scan, db, exchange, demo, serve):
        group.add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``hashmatch`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HashmatchError as e:
        print(f"hashmatch: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
