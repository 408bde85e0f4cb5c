"""``hashmatch db ...``: create, fill, export and inspect a hash database.

Only ``add`` and ``import`` create a database; every other command needs one that exists.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..config import default_threads
from ..errors import HashmatchError
from ..media import open_media
from ..pipeline import HashDB
from ..pipeline.records import record_of
from . import bank


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``db`` command group."""
    db = sub.add_parser("db", help="manage a hash database").add_subparsers(dest="db_command", required=True)
    a = db.add_parser("add", help="hash image and video files and add each as an entry (creates DB)")
    a.add_argument("db", metavar="DB")
    a.add_argument("files", nargs="+", metavar="FILE")
    a.add_argument("--bank", default=None, help="the bank to add to (default: --source, else 'default'; created if"
                                                " missing)")
    a.add_argument("--source", default=None, help="list name the entries come from")
    a.add_argument("--label", action="append", default=[], help="a label (repeatable)")
    a.add_argument("--classification", default=None)
    a.add_argument("--external-id", default=None, help="external id (default: the file path)")
    a.set_defaults(func=run_add)
    i = db.add_parser("import", help="import hash lists (JSON Lines, CSV, 'format value' lines, vPDQ, .tmk),"
                                     " merging by entry uid without duplicating (creates DB)")
    i.add_argument("db", metavar="DB")
    i.add_argument("files", nargs="+", metavar="HASHLIST")
    i.add_argument("--bank", default=None, help="the bank for rows that name none (default: their source)")
    i.add_argument("--source", default=None, help="list name for rows without a source column")
    i.add_argument("--label", action="append", default=[], help="a label added to every row (repeatable)")
    i.add_argument("--format", default=None, help="the format of a CSV's value column, when its header does not say")
    i.set_defaults(func=run_import)
    e = db.add_parser("export", help="export the database, or what a partner running one format needs")
    e.add_argument("db", metavar="DB")
    e.add_argument("out", metavar="OUT", help="a file (.jsonl, .csv, .txt) or, for per-video files, a directory")
    e.add_argument("--format", default=None, help="only this format (pdq, vpdq, tmk_pdqf, video_md5, ...)")
    e.add_argument("--bank", default=None, help="only this bank's entries")
    e.add_argument("--kind", choices=["jsonl", "csv", "list", "files"], default=None,
                   help="the file kind (default: from OUT's suffix; a directory: per-video files)")
    e.set_defaults(func=run_export)
    r = db.add_parser("remove", help="mark entries deleted")
    r.add_argument("db", metavar="DB")
    r.add_argument("ids", nargs="+", type=int, metavar="ID")
    r.set_defaults(func=run_remove)
    fm = db.add_parser("formats", help="which formats the entries hold and lack")
    fm.add_argument("db", metavar="DB")
    fm.add_argument("--json", action="store_true", help="one JSON object per entry")
    fm.set_defaults(func=run_formats)
    rh = db.add_parser("rehash", help="compute missing formats from the source media, where it is known")
    rh.add_argument("db", metavar="DB")
    rh.add_argument("--formats", nargs="+", default=None, metavar="FORMAT",
                    help="only these formats (default: every format the media type has)")
    rh.set_defaults(func=run_rehash)
    bank.add_parser(db)
    st = db.add_parser("stats", help="counts of entries and fingerprints, index state")
    st.add_argument("db", metavar="DB")
    st.set_defaults(func=run_stats)


def run_add(args: argparse.Namespace) -> int:
    """Hash every file on every core (a bad one is reported and skipped), then add them in one transaction."""
    def hashed(path: str):
        try:
            media = open_media(Path(path))
            return media, record_of(Path(path))
        except HashmatchError as e:
            return None, e

    with ThreadPoolExecutor(max_workers=default_threads()) as pool:  # decoding and hashing release the GIL
        results = list(pool.map(hashed, args.files))
    records, failed = [], 0
    for path, (media, record) in zip(args.files, results):
        if media is None:
            failed += 1
            print(f"hashmatch: {path}: {type(record).__name__}: {record}", file=sys.stderr)
            continue
        record.source, record.external_id, record.bank = args.source, args.external_id or path, args.bank
        record.media_uri = media.path
        record.labels, record.classification = list(args.label), args.classification
        records.append(record)
    with HashDB(args.db) as db:
        ids = db.add_records(records)
    print(f"added {len(ids)} entries to {args.db}" + (f", {failed} files failed" if failed else ""))
    return 1 if failed else 0


def run_import(args: argparse.Namespace) -> int:
    """Every file is read and validated before anything is written: an import applies whole or not at all."""
    from ..lists import read_file

    records = [r for path in args.files for r in read_file(path, fmt=args.format)]
    for r in records:
        r.source = r.source or args.source
        r.bank = r.bank or args.bank
        r.labels = sorted(set(r.labels) | set(args.label))
    with HashDB(args.db) as db:
        counts = db.merge_records(records)
    print(f"imported {len(records)} records into {args.db}: {counts['added']} added, {counts['updated']} updated, "
          f"{counts['unchanged']} unchanged")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Export to a file written atomically (or per-entry files)."""
    from ..lists import export

    with HashDB(args.db, create=False) as db:
        n, kind = export(db, args.out, fmt=args.format, kind=args.kind, bank=args.bank)
    print(f"exported {n} {'values' if kind != 'jsonl' else 'entries'} ({kind}) to {args.out}")
    return 0


def run_formats(args: argparse.Namespace) -> int:
    """Per media type, how many entries hold and lack each format."""
    from ..pipeline.rehash import coverage

    with HashDB(args.db, create=False) as db:
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


def run_rehash(args: argparse.Namespace) -> int:
    """Fill missing formats from the entries' media; exit status 1 when any entry failed."""
    from ..pipeline.rehash import rehash

    with HashDB(args.db, create=False) as db:
        report = rehash(db, args.formats)
    for entry_id, reason in report.failed:
        print(f"hashmatch: entry {entry_id}: {reason}", file=sys.stderr)
    print(f"filled {report.filled} entries with {report.fingerprints_added} fingerprints; "
          f"{len(report.unreachable)} lack formats but their media is unknown or gone; {len(report.failed)} failed")
    return 1 if report.failed else 0


def run_remove(args: argparse.Namespace) -> int:
    """Tombstone entries by id."""
    with HashDB(args.db, create=False) as db:
        n = db.remove(args.ids)
    print(f"removed {n} entries")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """The database's counts as JSON."""
    with HashDB(args.db, create=False) as db:
        print(json.dumps(db.stats(), indent=2))
    return 0
