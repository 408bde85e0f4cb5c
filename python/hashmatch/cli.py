"""The ``hashmatch`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from .errors import HashmatchError
from .image import pdq_many
from .media import DEFAULT_MAX_PIXELS


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


def _open(path: str):
    from .store import HashDB

    return HashDB(path)


def _cmd_db_add(args: argparse.Namespace) -> int:
    from .ingest import is_video, pdq_fingerprint, video_record
    from .records import Record

    videos = {path for path in args.files if is_video(path)}
    images = [path for path in args.files if path not in videos]
    results = dict(zip(images, pdq_many(images, return_exceptions=True)))
    records, failed = [], 0
    for path in args.files:
        try:
            if path in videos:
                record = video_record(path)
            elif isinstance(results[path], HashmatchError):
                raise results[path]
            else:
                record = Record("image", [pdq_fingerprint(results[path], results[path].quality)])
        except HashmatchError as e:
            failed += 1
            print(f"hashmatch: {path}: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        record.source, record.external_id = args.source, args.external_id or path
        record.media_uri = os.path.abspath(path)
        record.labels, record.classification = list(args.label), args.classification
        records.append(record)
    with _open(args.db) as db:
        ids = db.add_records(records)
    print(f"added {len(ids)} entries to {args.db}" + (f", {failed} files failed" if failed else ""))
    return 1 if failed else 0


def _cmd_db_import(args: argparse.Namespace) -> int:
    from .exchange import read_file

    # Every file is read and validated before anything is written: an import applies whole or not at all.
    records = [r for path in args.files for r in read_file(path, fmt=args.format)]
    for r in records:
        r.source = r.source or args.source
        r.labels = sorted(set(r.labels) | set(args.label))
    with _open(args.db) as db:
        counts = db.merge_records(records)
    print(f"imported {len(records)} records into {args.db}: {counts['added']} added, {counts['updated']} updated, "
          f"{counts['unchanged']} unchanged")
    return 0


def _cmd_db_export(args: argparse.Namespace) -> int:
    from .exchange import export

    with _open(args.db) as db:
        n, kind = export(db, args.out, fmt=args.format, kind=args.kind)
    print(f"exported {n} {'values' if kind != 'jsonl' else 'entries'} ({kind}) to {args.out}")
    return 0


def _cmd_db_formats(args: argparse.Namespace) -> int:
    from .rehash import coverage

    with _open(args.db) as db:
        summary, rows = coverage(db.iter_records(include_deleted=False))
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    for media, count in sorted(summary.entries.items()):
        present, missing = summary.present.get(media, {}), summary.missing.get(media, {})
        print(f"{count} {media} entries")
        for fmt in sorted(set(present) | set(missing)):
            print(f"  {fmt:<14} {present.get(fmt, 0):>8} held {missing.get(fmt, 0):>8} missing")
    print(f"{summary.rehashable} entries lack a format and have reachable media (hashmatch db rehash fills them)")
    return 0


def _cmd_db_rehash(args: argparse.Namespace) -> int:
    from .rehash import rehash

    with _open(args.db) as db:
        report = rehash(db, args.formats)
    for entry_id, reason in report.failed:
        print(f"hashmatch: entry {entry_id}: {reason}", file=sys.stderr)
    print(f"filled {report.filled} entries with {report.fingerprints_added} fingerprints; "
          f"{len(report.unreachable)} lack formats but their media is unknown or gone; {len(report.failed)} failed")
    return 1 if report.failed else 0


def _cmd_db_remove(args: argparse.Namespace) -> int:
    with _open(args.db) as db:
        n = db.remove(args.ids)
    print(f"removed {n} entries")
    return 0


def _cmd_db_stats(args: argparse.Namespace) -> int:
    with _open(args.db) as db:
        print(json.dumps(db.stats(), indent=2))
    return 0


def _cmd_match(args: argparse.Namespace) -> int:
    failed = 0
    with _open(args.db) as db:
        for path in args.files:
            try:
                found = db.match(path, dihedral=args.dihedral, max_distance=args.max_distance)
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
                                  "skipped": found.skipped, "matches": [m.to_dict() for m in found]}))
            elif found.skipped:
                print(f"{path}: not matched ({found.skipped})")
            elif not found:
                print(f"{path}: no match")
            else:
                for m in found:
                    extra = (f" frames {m.query_match_percent:.0f}%/{m.compared_match_percent:.0f}%"
                             if m.query_match_percent is not None else f" variant {m.variant}")
                    print(f"{path}: entry {m.entry_id} {m.media_type} {m.format} distance {m.distance} "
                          f"source {m.source or '-'} labels {','.join(m.labels) or '-'}{extra}")
    return 1 if failed else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(out=sys.stdout)


def _cmd_scan(args: argparse.Namespace) -> int:
    from .scanning import scan

    try:
        summary = scan(args.source, args.db, args.out, engine=args.engine, workers=args.workers,
                       resume=args.resume, scheduler=args.scheduler, progress=not args.no_progress,
                       batch_size=args.batch_size, max_pixels=args.max_pixels, max_distance=args.max_distance)
    except KeyboardInterrupt:
        print(f"hashmatch: interrupted; {args.out} keeps every finished row: rerun with --resume to continue",
              file=sys.stderr)
        return 130
    s = summary
    print(f"scanned {s.scanned} files in {s.seconds:.1f} s ({s.files_per_second:.1f} files/s); {args.out} holds "
          f"{s.files} rows: {s.ok} ok, {s.errors} errors, {s.matched_files} files matched ({s.matches} matches)")
    return 0


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

    m = sub.add_parser("match", help="match image and video files against a hash database")
    m.add_argument("db", metavar="DB")
    m.add_argument("files", nargs="+", metavar="FILE")
    m.add_argument("--json", action="store_true", help="one JSON object per file, with a matches list")
    m.add_argument("--dihedral", action="store_true", help="also match rotated and flipped copies")
    m.add_argument("--max-distance", type=int, default=None, help="PDQ distance threshold (default 31)")
    m.set_defaults(func=_cmd_match)

    sc = sub.add_parser("scan", help="hash and match every file of a directory, path list or bucket URL,"
                                     " one result row per file (resumable)")
    sc.add_argument("source", metavar="SOURCE", help="a directory, a file of paths (one per line), or a URL"
                                                     " (s3://, gs://, file://, memory://)")
    sc.add_argument("--db", required=True, metavar="DB", help="the hash database to match against")
    sc.add_argument("--out", required=True, metavar="RESULTS", help="results file: .jsonl or .parquet")
    sc.add_argument("--workers", type=int, default=None, help="worker processes (default: every CPU)")
    sc.add_argument("--resume", action="store_true", help="continue an interrupted scan into the same RESULTS")
    sc.add_argument("--engine", choices=["local", "dask"], default="local")
    sc.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="with --engine dask: the scheduler (default: a local cluster of --workers processes)")
    sc.add_argument("--batch-size", type=int, default=32, help="files per task (default 32)")
    sc.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="largest image decoded, in pixels")
    sc.add_argument("--max-distance", type=int, default=None, help="PDQ distance threshold (default 31)")
    sc.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    sc.set_defaults(func=_cmd_scan)

    db = sub.add_parser("db", help="manage a hash database").add_subparsers(dest="db_command", required=True)
    a = db.add_parser("add", help="hash image and video files and add each as an entry")
    a.add_argument("db", metavar="DB")
    a.add_argument("files", nargs="+", metavar="FILE")
    a.add_argument("--source", default=None, help="list name the entries come from")
    a.add_argument("--label", action="append", default=[], help="a label (repeatable)")
    a.add_argument("--classification", default=None)
    a.add_argument("--external-id", default=None, help="external id (default: the file path)")
    a.set_defaults(func=_cmd_db_add)
    i = db.add_parser("import", help="import hash lists (JSON Lines, CSV, 'format value' lines, vPDQ, .tmk),"
                                     " merging by entry uid without duplicating")
    i.add_argument("db", metavar="DB")
    i.add_argument("files", nargs="+", metavar="HASHLIST")
    i.add_argument("--source", default=None, help="list name for rows without a source column")
    i.add_argument("--label", action="append", default=[], help="a label added to every row (repeatable)")
    i.add_argument("--format", default=None, help="the format of a CSV's value column, when its header does not say")
    i.set_defaults(func=_cmd_db_import)
    e = db.add_parser("export", help="export the database, or what a partner running one format needs")
    e.add_argument("db", metavar="DB")
    e.add_argument("out", metavar="OUT", help="a file (.jsonl, .csv, .txt) or, for per-video files, a directory")
    e.add_argument("--format", default=None, help="only this format (pdq, vpdq, tmk_pdqf, video_md5, ...)")
    e.add_argument("--kind", choices=["jsonl", "csv", "list", "files"], default=None,
                   help="the file kind (default: from OUT's suffix; a directory: per-video files)")
    e.set_defaults(func=_cmd_db_export)
    r = db.add_parser("remove", help="mark entries deleted")
    r.add_argument("db", metavar="DB")
    r.add_argument("ids", nargs="+", type=int, metavar="ID")
    r.set_defaults(func=_cmd_db_remove)
    fm = db.add_parser("formats", help="which formats the entries hold and lack")
    fm.add_argument("db", metavar="DB")
    fm.add_argument("--json", action="store_true", help="one JSON object per entry")
    fm.set_defaults(func=_cmd_db_formats)
    rh = db.add_parser("rehash", help="compute missing formats from the source media, where it is known")
    rh.add_argument("db", metavar="DB")
    rh.add_argument("--formats", nargs="+", default=None, metavar="FORMAT",
                    help="only these formats (default: every format the media type has)")
    rh.set_defaults(func=_cmd_db_rehash)
    st = db.add_parser("stats", help="counts of entries and fingerprints, index state")
    st.add_argument("db", metavar="DB")
    st.set_defaults(func=_cmd_db_stats)

    d = sub.add_parser("demo", help="build a database from the bundled synthetic images and match copies")
    d.set_defaults(func=_cmd_demo)
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
