"""``hashmatch db bank ...``: the banks of a database (list, create, update, rename, delete)."""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict, List

from ..errors import InvalidInputError
from ..pipeline import HashDB


def add_parser(db_sub: argparse._SubParsersAction) -> None:
    """The ``db bank`` command group."""
    bank = db_sub.add_parser("bank", help="list, create, update, rename and delete banks").add_subparsers(
        dest="bank_command", required=True)
    ls = bank.add_parser("list", help="every bank with its settings and live entry count")
    ls.add_argument("db", metavar="DB")
    ls.add_argument("--json", action="store_true", help="one JSON object per bank")
    ls.set_defaults(func=run_list)
    for name, helptext in (("create", "a new bank (creates DB)"), ("update", "change a bank's settings")):
        p = bank.add_parser(name, help=helptext)
        p.add_argument("db", metavar="DB")
        p.add_argument("name", metavar="BANK")
        p.add_argument("--kind", choices=["match", "allow"], default=None,
                       help="allow: known false positives; a query matching it gets no other matches")
        p.add_argument("--enabled", choices=["yes", "no"], default=None, help="take part in lookups")
        p.add_argument("--ratio", type=float, default=None, help="fraction of lookups it takes part in (0..1)")
        p.add_argument("--threshold", action="append", default=[], metavar="SIGNAL.KEY=VALUE",
                       help="e.g. pdq.max_distance=20, vpdq.query_percent=90, tmk_pdqf.level2=0.8 (repeatable)")
        p.add_argument("--notes", default=None)
        p.add_argument("--metadata", default=None, metavar="JSON", help="a JSON object")
        if name == "update":
            p.add_argument("--clear-thresholds", action="store_true", help="back to the database's thresholds")
        p.set_defaults(func=run_create if name == "create" else run_update)
    rn = bank.add_parser("rename", help="rename a bank (its entries and settings stay)")
    rn.add_argument("db", metavar="DB")
    rn.add_argument("name", metavar="BANK")
    rn.add_argument("new_name", metavar="NEW")
    rn.set_defaults(func=run_rename)
    rm = bank.add_parser("delete", help="delete a bank")
    rm.add_argument("db", metavar="DB")
    rm.add_argument("name", metavar="BANK")
    rm.add_argument("--with-entries", action="store_true", help="also remove its entries (kept as tombstones)")
    rm.set_defaults(func=run_delete)


def _thresholds(pairs: List[str]) -> Dict[str, Dict[str, float]]:
    out: Dict[str, Dict[str, float]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        signal, dot, name = key.partition(".")
        if not sep or not dot:
            raise InvalidInputError(f"--threshold {pair!r}: write SIGNAL.KEY=VALUE, e.g. pdq.max_distance=20")
        try:
            out.setdefault(signal.strip(), {})[name.strip()] = float(value)
        except ValueError:
            raise InvalidInputError(f"--threshold {pair!r}: {value!r} is not a number") from None
    return out


def _fields(args: argparse.Namespace) -> Dict[str, Any]:
    fields: Dict[str, Any] = {}
    if args.kind is not None:
        fields["kind"] = args.kind
    if args.enabled is not None:
        fields["enabled"] = args.enabled == "yes"
    if args.ratio is not None:
        fields["enabled_ratio"] = args.ratio
    if args.notes is not None:
        fields["notes"] = args.notes
    if args.metadata is not None:
        try:
            fields["metadata"] = json.loads(args.metadata)
        except ValueError as e:
            raise InvalidInputError(f"--metadata is not JSON: {e}") from None
    return fields


def _show(bank: Any) -> str:
    state = "enabled" if bank.enabled else "disabled"
    ratio = f" {bank.enabled_ratio:.0%} of lookups" if bank.enabled and bank.enabled_ratio < 1 else ""
    return f"{bank.name}: {bank.kind}, {state}{ratio}, {bank.entries} entries, thresholds {json.dumps(bank.thresholds)}"


def run_list(args: argparse.Namespace) -> int:
    """Every bank."""
    with HashDB(args.db, create=False) as db:
        for bank in db.banks():
            print(json.dumps(bank.to_dict()) if args.json else _show(bank))
    return 0


def run_create(args: argparse.Namespace) -> int:
    """Create a bank."""
    with HashDB(args.db) as db:
        fields = _fields(args)
        bank = db.create_bank(args.name, thresholds=_thresholds(args.threshold), **fields)
        print(f"created {_show(bank)}")
    return 0


def run_update(args: argparse.Namespace) -> int:
    """Change a bank's settings; thresholds given are merged into its own."""
    with HashDB(args.db, create=False) as db:
        fields = _fields(args)
        if args.clear_thresholds or args.threshold:
            merged = {} if args.clear_thresholds else dict(db.bank(args.name).thresholds)
            for signal, values in _thresholds(args.threshold).items():
                merged[signal] = {**merged.get(signal, {}), **values}
            fields["thresholds"] = merged
        print(f"updated {_show(db.update_bank(args.name, **fields))}")
    return 0


def run_rename(args: argparse.Namespace) -> int:
    """Rename a bank."""
    with HashDB(args.db, create=False) as db:
        print(f"renamed {args.name!r}: {_show(db.rename_bank(args.name, args.new_name))}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    """Delete a bank (and with --with-entries its entries)."""
    with HashDB(args.db, create=False) as db:
        n = db.delete_bank(args.name, with_entries=args.with_entries)
    print(f"deleted bank {args.name!r}" + (f" and {n} entries" if n else ""))
    return 0
