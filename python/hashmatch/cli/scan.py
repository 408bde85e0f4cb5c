"""``hashmatch scan``: hash and match every file of a directory, path list or bucket, one row each."""

from __future__ import annotations

import argparse
import sys

from ..config import MAX_PIXELS


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``scan`` command."""
    sc = sub.add_parser("scan", help="hash and match every file of a directory, path list or bucket URL,"
                                     " one result row per file (resumable)")
    sc.add_argument("source", metavar="SOURCE", help="a directory, a file of paths (one per line), or a URL"
                                                     " (s3://, gs://, file://, memory://)")
    sc.add_argument("--db", required=True, metavar="DB", help="the hash database to match against (must exist)")
    sc.add_argument("--out", required=True, metavar="RESULTS", help="results file: .jsonl or .parquet")
    sc.add_argument("--workers", type=int, default=None, help="worker processes (default: every CPU)")
    sc.add_argument("--resume", action="store_true", help="continue an interrupted scan into the same RESULTS")
    sc.add_argument("--engine", choices=["local", "dask"], default="local")
    sc.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="with --engine dask: the scheduler (default: a local cluster of --workers processes)")
    sc.add_argument("--batch-size", type=int, default=32, help="files per task (default 32)")
    sc.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help="largest image decoded, in pixels")
    sc.add_argument("--max-distance", type=int, default=None, help="PDQ distance threshold (default 31)")
    sc.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    sc.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit status 0 once every file has its row (bad files included); 130 when interrupted."""
    from ..scan import scan

    try:
        s = scan(args.source, args.db, args.out, engine=args.engine, workers=args.workers, resume=args.resume,
                 scheduler=args.scheduler, progress=not args.no_progress, batch_size=args.batch_size,
                 max_pixels=args.max_pixels, max_distance=args.max_distance)
    except KeyboardInterrupt:
        print(f"hashmatch: interrupted; {args.out} keeps every finished row: rerun with --resume to continue",
              file=sys.stderr)
        return 130
    print(f"scanned {s.scanned} files in {s.seconds:.1f} s ({s.files_per_second:.1f} files/s); {args.out} holds "
          f"{s.files} rows: {s.ok} ok, {s.errors} errors, {s.matched_files} files matched ({s.matches} matches)")
    return 0
