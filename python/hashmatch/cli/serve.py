"""``hashmatch serve`` (the matching service) and ``hashmatch token`` (its API tokens)."""

from __future__ import annotations

import argparse
import json
import time

from ..config import EXCHANGE_FETCH_INTERVAL, SERVE_HOST, SERVE_MAX_BODY_BYTES, SERVE_PORT, SERVE_REQUEST_TIMEOUT
from ..errors import InvalidInputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``serve`` and ``token`` commands."""
    p = sub.add_parser("serve", help="run the HTTP matching service (HMA-compatible routes and /v1)",
                       description="Serve HMA's routes (/h, /m, /c, /status) and hashmatch's /v1 routes over HTTP "
                                   "on uvicorn. Every route but /status, /status/live and /metrics needs a token: "
                                   "`hashmatch token create --role ROLE --db DB`. Needs `pip install "
                                   "\"hashmatch[serve]\"`.")
    p.add_argument("--db", required=True, help="the hash database (a SQLite path or a postgresql:// URL); never created")
    p.add_argument("--workers", type=int, default=1, help="worker processes (each opens the store; default 1)")
    p.add_argument("--host", default=SERVE_HOST, help=f"address to listen on (default {SERVE_HOST})")
    p.add_argument("--port", type=int, default=SERVE_PORT, help=f"port (default {SERVE_PORT})")
    p.add_argument("--fetch-allow", action="append", default=[], metavar="HOST",
                   help="a host media may be fetched from by URL (example.com, *.example.com; repeatable); "
                        "without any, hashing by URL is off")
    p.add_argument("--fetch-allow-private", action="append", default=[], metavar="IP:PORT",
                   help="UNSAFE, for tests: an address:port exempt from the public-address rule (repeatable)")
    p.add_argument("--max-body-bytes", type=int, default=SERVE_MAX_BODY_BYTES, help="largest request body")
    p.add_argument("--request-timeout", type=float, default=SERVE_REQUEST_TIMEOUT, help="seconds per request")
    p.add_argument("--exchange-interval", type=float, default=EXCHANGE_FETCH_INTERVAL, metavar="SECONDS",
                   help="seconds between passes over the enabled exchanges (`hashmatch exchange add`), one "
                        f"process beside the workers (default {EXCHANGE_FETCH_INTERVAL:g}; 0: no fetching)")
    p.add_argument("--no-access-log", action="store_true", help="no log line per request")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run_serve)

    t = sub.add_parser("token", help="API tokens of `hashmatch serve` (create, list, revoke)").add_subparsers(
        dest="token_command", required=True)
    c = t.add_parser("create", help="a new token (printed once; only its SHA-256 is stored)")
    c.add_argument("--role", required=True, choices=["hasher", "matcher", "curator", "admin"])
    c.add_argument("--db", required=True)
    c.add_argument("--name", default=None, help="who or what it is for")
    c.set_defaults(func=run_token_create)
    ls = t.add_parser("list", help="every token's id, role, name and state (never the token)")
    ls.add_argument("--db", required=True)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_token_list)
    rv = t.add_parser("revoke", help="revoke a token by id")
    rv.add_argument("id", type=int)
    rv.add_argument("--db", required=True)
    rv.set_defaults(func=run_token_revoke)


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until it is stopped."""
    from ..service import require_deps, serve

    require_deps()
    from ..service.settings import ServeConfig

    serve(ServeConfig(db=args.db, host=args.host, port=args.port, workers=args.workers,
                      fetch_allow=tuple(args.fetch_allow), fetch_allow_private=tuple(args.fetch_allow_private),
                      max_body_bytes=args.max_body_bytes, request_timeout=args.request_timeout,
                      access_log=not args.no_access_log, log_level=args.log_level,
                      exchange_interval=args.exchange_interval))
    return 0


def _open(db: str):  # noqa: ANN202
    from ..pipeline import HashDB

    return HashDB(db, create=False)


def run_token_create(args: argparse.Namespace) -> int:
    """Print a new token once."""
    from ..store import tokens

    with _open(args.db) as db:
        print(tokens.create_token(db, args.role, args.name))
    return 0


def run_token_list(args: argparse.Namespace) -> int:
    """List tokens."""
    from ..store import tokens

    with _open(args.db) as db:
        rows = tokens.list_tokens(db)
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            state = "live" if row["revoked"] is None else time.strftime("revoked %Y-%m-%d %H:%M",
                                                                        time.gmtime(row["revoked"]))
            print(f"{row['id']:>5}  {row['role']:<8} {state:<24} {row['name'] or ''}")
    return 0


def run_token_revoke(args: argparse.Namespace) -> int:
    """Revoke a token."""
    from ..store import tokens

    with _open(args.db) as db:
        if not tokens.revoke_token(db, args.id):
            raise InvalidInputError(f"no live token with id {args.id} in {args.db}")
    print(f"revoked token {args.id}")
    return 0


