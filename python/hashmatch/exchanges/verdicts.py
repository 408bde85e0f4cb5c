"""Reviewers' verdicts on matched entries, queued in the database and sent to the exchange until it takes them.

A verdict is written to the queue first and only marked sent when the exchange accepted it: a
failure (or a killed process) leaves it queued, and every later `exchange fetch` or
`exchange feedback` tries it again. Nothing is ever dropped from the queue.
"""

from __future__ import annotations

from typing import Tuple, Union

from ..errors import ExchangeConfigError, ExchangeError, HashmatchError
from ..store import Store
from . import tables
from .base import VERDICTS, log, redact
from .registry import adapter_class, adapter_for


def queue(store: Store, name: str, entry: Union[int, str], verdict: str) -> int:
    """Queue a verdict (true_positive or false_positive) on an entry (its id or uid) of exchange `name`."""
    if verdict not in VERDICTS:
        raise ExchangeConfigError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    settings = tables.get(store, name)
    if adapter_class(settings.api).feedback_kind is None:
        raise ExchangeConfigError(f"exchange {name!r} ({settings.api}) takes no feedback")
    record = _entry(store, entry)
    if record.source != name:
        raise ExchangeConfigError(f"entry {entry} did not come from exchange {name!r} (its source is "
                                  f"{record.source!r})")
    return tables.queue_feedback(store, name, record.uid, verdict)


def _entry(store: Store, entry: Union[int, str]):  # type: ignore[no-untyped-def]
    try:
        entry_id = int(entry) if str(entry).isdigit() and len(str(entry)) < 20 else store.entry_id(str(entry))
        return store.get(entry_id)
    except KeyError:
        raise ExchangeConfigError(f"no entry {entry!r} in {store.where} (give its id or uid)") from None


def send_pending(store: Store, name: str) -> Tuple[int, int]:
    """Try to send every queued verdict of one exchange, oldest first; (sent, still pending)."""
    pending = tables.pending_feedback(store, name)
    if not pending:
        return 0, 0
    try:
        adapter = adapter_for(tables.get(store, name))
    except HashmatchError as e:
        for item in pending:
            tables.feedback_attempted(store, item["id"], redact(str(e)))
        return 0, len(pending)
    sent = 0
    for item in pending:
        try:
            adapter.send_feedback(store.get(store.entry_id(item["entry_uid"])), item["verdict"])
        except (ExchangeError, HashmatchError, KeyError, OSError, Exception) as e:  # noqa: BLE001 - kept queued
            error = redact(f"{type(e).__name__}: {e}")
            log.warning("exchange %s: feedback %d not sent yet: %s", name, item["id"], error)
            tables.feedback_attempted(store, item["id"], error)
            continue
        tables.feedback_attempted(store, item["id"], None)
        sent += 1
    return sent, len(pending) - sent
