"""``hashmatch exchange ...``: live exchanges that keep a bank in sync (add, fetch, status, list, remove, feedback).

The database is ``--db``, else ``$HASHMATCH_DB``, else ./hashmatch.db; only ``add`` creates it.
``fetch`` is one incremental pass, for cron: exit 0 when every exchange fetched to its end,
1 when one failed or stopped early (its checkpoint is kept: the next run resumes), 2 on a usage
or configuration error. Credentials are never arguments: see the README's exchanges section.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List

from .. import exchanges
from ..config import DB_ENV, DEFAULT_DB
from ..store import Store


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``exchange`` command group."""
    ex = sub.add_parser("exchange", help="keep banks in sync with NCMEC, StopNCII, ThreatExchange, TCAP, files"
                        ).add_subparsers(dest="exchange_command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", default=None, help=f"the database (default ${DB_ENV}, else ./{DEFAULT_DB})")
        return p

    a = with_db(ex.add_parser("add", help="configure an exchange that fills one bank (creates the database)"))
    a.add_argument("name", metavar="NAME")
    a.add_argument("--api", required=True, choices=list(exchanges.APIS))
    a.add_argument("--bank", required=True, help="the bank it fills (created if missing)")
    a.add_argument("--config", default=None, metavar="JSON|FILE",
                   help="settings as a JSON object or a file holding one (no secrets: credentials come from the "
                        "environment or an owner-only file)")
    a.add_argument("--disabled", action="store_true", help="configured but not fetched by `fetch` without NAME")
    a.set_defaults(func=run_add)
    f = with_db(ex.add_parser("fetch", help="one incremental pass of each exchange (cron: exit 0 ok, 1 failed)"))
    f.add_argument("names", nargs="*", metavar="NAME", help="default: every enabled exchange")
    f.add_argument("--json", action="store_true", help="one JSON report per exchange")
    f.add_argument("--quiet", action="store_true", help="print only failures")
    f.set_defaults(func=run_fetch)
    s = with_db(ex.add_parser("status", help="each exchange's checkpoint, last fetch, error, entries, feedback"))
    s.add_argument("name", nargs="?", metavar="NAME")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=run_status)
    ls = with_db(ex.add_parser("list", help="the configured exchanges"))
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)
    rm = with_db(ex.add_parser("remove", help="forget an exchange (its bank and entries stay)"))
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(func=run_remove)
    fb = with_db(ex.add_parser("feedback", help="queue a verdict on an entry for its exchange and send it "
                                                "(kept and retried until the exchange takes it)"))
    fb.add_argument("name", metavar="NAME")
    fb.add_argument("entry", metavar="ENTRY", help="the entry's id or uid")
    fb.add_argument("--verdict", required=True, choices=list(exchanges.VERDICTS))
    fb.add_argument("--queue-only", action="store_true", help="queue it; the next fetch sends it")
    fb.set_defaults(func=run_feedback)


def _db(args: argparse.Namespace) -> str:
    return args.db or os.environ.get(DB_ENV) or DEFAULT_DB


def run_add(args: argparse.Namespace) -> int:
    """exchange add."""
    with Store(_db(args), create=True) as store:
        s = exchanges.add(store, args.name, args.api, args.bank, exchanges.parse_config(args.config),
                          enabled=not args.disabled)
    print(f"exchange {s.name} ({s.api}) fills bank {s.bank!r} in {_db(args)}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    """exchange fetch: exit 1 if any exchange failed or did not reach its end."""
    with Store(_db(args), create=False) as store:
        for name in args.names:
            exchanges.get(store, name)  # a misspelt name is a usage error, before anything is fetched
        reports = exchanges.fetch_all(store, args.names or None)
    failed = 0
    for r in reports:
        if not r.ok or not r.complete:
            failed += 1
        if args.json:
            print(json.dumps(r.to_dict(), sort_keys=True))
        elif not args.quiet or not r.ok:
            state = "ok" if r.ok and r.complete else ("stopped early" if r.ok else "FAILED")
            print(f"{r.name}: {state}: {r.pages} pages, {r.added} added, {r.updated} updated, {r.deleted} deleted, "
                  f"{r.unchanged} unchanged, {r.retries} retries, {r.seconds:.1f} s"
                  + (f"; feedback {r.feedback_sent} sent, {r.feedback_pending} queued" if r.feedback_sent or
                     r.feedback_pending else "") + (f"; {r.error}" if r.error else ""),
                  file=sys.stderr if not r.ok else sys.stdout)
    return 1 if failed else 0


def _fmt_status(row: Dict[str, Any]) -> str:
    parts = [f"{row['name']} ({row['api']}) -> bank {row['bank']}: {row['entries']} entries",
             f"state {row['state']}", f"{row['pages']} pages fetched"]
    if not row["enabled"]:
        parts.append("disabled")
    if row["last_error"]:
        parts.append(f"last error: {row['last_error']}")
    if row["feedback_pending"]:
        parts.append(f"{row['feedback_pending']} feedback queued")
    return "; ".join(parts)


def run_status(args: argparse.Namespace) -> int:
    """exchange status."""
    with Store(_db(args), create=False) as store:
        rows = exchanges.status(store, args.name)
    for row in rows:
        print(json.dumps(row, sort_keys=True) if args.json else _fmt_status(row))
    return 0


def run_list(args: argparse.Namespace) -> int:
    """exchange list."""
    with Store(_db(args), create=False) as store:
        items: List[exchanges.Settings] = exchanges.list_exchanges(store)
    for s in items:
        print(json.dumps(s.to_dict(), sort_keys=True) if args.json else
              f"{s.name}\t{s.api}\t{s.bank}\t{'enabled' if s.enabled else 'disabled'}\t{json.dumps(s.config)}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """exchange remove."""
    with Store(_db(args), create=False) as store:
        exchanges.remove(store, args.name)
    print(f"exchange {args.name} removed (its bank and entries stay)")
    return 0


def run_feedback(args: argparse.Namespace) -> int:
    """exchange feedback: exit 0 when sent, 1 when it stays queued (sent by a later fetch or feedback)."""
    with Store(_db(args), create=False) as store:
        out = exchanges.feedback(store, args.name, args.entry, args.verdict, send=not args.queue_only)
        pending = [row for row in exchanges.pending_feedback(store, args.name) if row["id"] == out["queued"]]
    if pending:
        print(f"feedback {out['queued']} queued, not sent yet" + (f": {pending[0]['last_error']}"
                                                                  if pending[0]["last_error"] else ""))
        return 1 if not args.queue_only else 0
    print(f"feedback {out['queued']} sent")
    return 0
