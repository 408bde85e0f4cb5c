"""The exchanges' rows in the store's database: settings, checkpoints, fetch status, the feedback queue.

Settings hold no secrets (see exchanges.credentials). A checkpoint is the adapter's opaque JSON;
it is written by the fetch loop inside the transaction of the page it follows.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List, Optional

from ..errors import ExchangeConfigError
from ..store import Store
from ..store.backends import Backend
from .base import Settings

_COLUMNS = "x.name, x.api, b.name, x.config, x.enabled, x.created, x.updated"


def _settings(row: tuple) -> Settings:
    name, api, bank, cfg, enabled, created, updated = row
    return Settings(name, api, bank, json.loads(cfg), bool(enabled), created, updated)


def insert(store: Store, settings: Settings) -> None:
    """Add an exchange's settings; its bank is made when missing. ExchangeConfigError if the name is taken."""
    if find(store, settings.name) is not None:
        raise ExchangeConfigError(f"an exchange named {settings.name!r} already exists; remove it first")
    try:
        bank = store.bank(settings.bank)
    except KeyError:
        bank = store.create_bank(settings.bank, metadata={"exchange": settings.name})
    now = time.time()
    with store.sql.write():
        store.sql.execute("INSERT INTO exchanges (name, api, bank_id, config, enabled, created, updated)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?)", (settings.name, settings.api, bank.id,
                                                            json.dumps(settings.config, sort_keys=True),
                                                            int(settings.enabled), now, now))
        store.sql.execute("INSERT INTO exchange_status (exchange) VALUES (?)", (settings.name,))


def find(store: Store, name: str) -> Optional[Settings]:
    """One exchange's settings, or None."""
    row = store.sql.execute(f"SELECT {_COLUMNS} FROM exchanges x JOIN banks b ON b.id = x.bank_id"
                            " WHERE x.name = ?", (name,)).fetchone()
    return _settings(row) if row else None


def get(store: Store, name: str) -> Settings:
    """One exchange's settings; ExchangeConfigError naming the known ones if there is none."""
    found = find(store, name)
    if found is None:
        known = [s.name for s in all_settings(store)]
        raise ExchangeConfigError(f"no exchange named {name!r} in {store.where}; known: "
                                  f"{', '.join(known) or 'none (add one with `hashmatch exchange add`)'}")
    return found


def all_settings(store: Store) -> List[Settings]:
    """Every exchange's settings, by name."""
    return [_settings(r) for r in store.sql.execute(
        f"SELECT {_COLUMNS} FROM exchanges x JOIN banks b ON b.id = x.bank_id ORDER BY x.name").fetchall()]


def update(store: Store, name: str, *, cfg: Optional[Dict[str, Any]] = None, enabled: Optional[bool] = None) -> None:
    """Change an exchange's settings or switch it on or off."""
    get(store, name)
    with store.sql.write():
        if cfg is not None:
            store.sql.execute("UPDATE exchanges SET config = ?, updated = ? WHERE name = ?",
                              (json.dumps(cfg, sort_keys=True), time.time(), name))
        if enabled is not None:
            store.sql.execute("UPDATE exchanges SET enabled = ?, updated = ? WHERE name = ?",
                              (int(enabled), time.time(), name))


def delete(store: Store, name: str) -> None:
    """Forget an exchange: its settings, checkpoint, status and feedback queue (its bank's entries stay)."""
    get(store, name)
    with store.sql.write():
        for table, column in (("exchange_feedback", "exchange"), ("exchange_status", "exchange"),
                              ("exchange_checkpoints", "exchange"), ("exchanges", "name")):
            store.sql.execute(f"DELETE FROM {table} WHERE {column} = ?", (name,))


# ----- checkpoints ---------------------------------------------------------------------------------
def checkpoint(store: Store, name: str) -> Optional[Dict[str, Any]]:
    """The checkpoint the next fetch resumes from, or None (from the beginning)."""
    row = store.sql.execute("SELECT checkpoint FROM exchange_checkpoints WHERE exchange = ?", (name,)).fetchone()
    return json.loads(row[0]) if row else None


def save_checkpoint(db: Backend, name: str, value: Dict[str, Any], counts: Dict[str, int], pages: int = 1) -> None:
    """Write a checkpoint and count its pages (inside their transaction)."""
    now = time.time()
    text = json.dumps(value, sort_keys=True)
    db.execute("INSERT INTO exchange_checkpoints (exchange, checkpoint, updated) VALUES (?, ?, ?)"
               " ON CONFLICT (exchange) DO UPDATE SET checkpoint = excluded.checkpoint, updated = excluded.updated",
               (name, text, now))
    db.execute("UPDATE exchange_status SET pages = pages + ?, upserts = upserts + ?, deletes = deletes + ?"
               " WHERE exchange = ?", (pages, counts.get("added", 0) + counts.get("updated", 0),
                                       counts.get("deleted", 0), name))


def reset_checkpoint(store: Store, name: str) -> None:
    """Make the next fetch start from the beginning (entries are upserted, so nothing doubles)."""
    with store.sql.write():
        store.sql.execute("DELETE FROM exchange_checkpoints WHERE exchange = ?", (name,))


# ----- status --------------------------------------------------------------------------------------
def set_status(store: Store, name: str, state: str, error: Optional[str] = None) -> None:
    """Record a fetch starting ('running'), finishing ('ok') or failing ('failed', with its error)."""
    now = time.time()
    with store.sql.write():
        if state == "running":
            store.sql.execute("UPDATE exchange_status SET state = ?, started = ? WHERE exchange = ?",
                              (state, now, name))
        elif state == "ok":
            store.sql.execute("UPDATE exchange_status SET state = ?, finished = ?, succeeded = ?, last_error = NULL"
                              " WHERE exchange = ?", (state, now, now, name))
        else:
            store.sql.execute("UPDATE exchange_status SET state = ?, finished = ?, last_error = ? WHERE exchange = ?",
                              (state, now, error, name))


def status_row(store: Store, name: str) -> Dict[str, Any]:
    """One exchange's fetch status as stored."""
    row = store.sql.execute("SELECT state, started, finished, succeeded, last_error, pages, upserts, deletes"
                            " FROM exchange_status WHERE exchange = ?", (name,)).fetchone()
    keys = ("state", "started", "finished", "succeeded", "last_error", "pages", "upserts", "deletes")
    return dict(zip(keys, row)) if row else {k: None for k in keys}


# ----- the feedback queue --------------------------------------------------------------------------
def queue_feedback(store: Store, name: str, entry_uid: str, verdict: str) -> int:
    """Queue one verdict; its id."""
    with store.sql.write():
        fid = int(store.sql.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM exchange_feedback").fetchone()[0])
        store.sql.execute("INSERT INTO exchange_feedback (id, exchange, entry_uid, verdict, queued)"
                          " VALUES (?, ?, ?, ?, ?)", (fid, name, entry_uid, verdict, time.time()))
    return fid


def pending_feedback(store: Store, name: str) -> List[Dict[str, Any]]:
    """The verdicts of one exchange not yet sent, oldest first."""
    keys = ("id", "entry_uid", "verdict", "queued", "attempts", "last_error")
    return [dict(zip(keys, r)) for r in store.sql.execute(
        "SELECT id, entry_uid, verdict, queued, attempts, last_error FROM exchange_feedback"
        " WHERE exchange = ? AND sent IS NULL ORDER BY id", (name,)).fetchall()]


def feedback_rows(store: Store, name: str) -> List[Dict[str, Any]]:
    """Every verdict of one exchange, sent or not."""
    keys = ("id", "entry_uid", "verdict", "queued", "attempts", "last_attempt", "last_error", "sent")
    return [dict(zip(keys, r)) for r in store.sql.execute(
        "SELECT id, entry_uid, verdict, queued, attempts, last_attempt, last_error, sent FROM exchange_feedback"
        " WHERE exchange = ? ORDER BY id", (name,)).fetchall()]


def feedback_attempted(store: Store, fid: int, error: Optional[str]) -> None:
    """Record one attempt to send a verdict: sent (error None) or still queued with its error."""
    now = time.time()
    with store.sql.write():
        store.sql.execute("UPDATE exchange_feedback SET attempts = attempts + 1, last_attempt = ?, last_error = ?,"
                          " sent = ? WHERE id = ?", (now, error, None if error else now, fid))
