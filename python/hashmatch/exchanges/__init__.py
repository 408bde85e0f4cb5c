"""Live exchanges: banks kept in sync with NCMEC, StopNCII, ThreatExchange, TCAP and hash-list files.

Each exchange is configured once (``add``) and fills one bank. ``fetch`` runs one incremental,
checkpointed pass (each page committed with its checkpoint), ``status`` reports every exchange,
``Fetcher`` runs passes in the background for ``hashmatch serve``, and ``feedback`` queues a
reviewer's verdict for the exchange (sent with retries, never lost). The HTTP clients are
python-threatexchange's (``pip install 'hashmatch[exchanges]'``), wrapped where they fall short:
each adapter module says where. Credentials come from the environment or an owner-only file,
never the database (see exchanges.credentials).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ..errors import ExchangeConfigError
from ..store import Store
from . import tables
from .base import VERDICTS, Adapter, Page, Settings
from .verdicts import queue as queue_verdict
from .verdicts import send_pending
from .syncing import FetchReport, Fetcher, fetch, fetch_all, status
from .registry import APIS, adapter_class

__all__ = ["APIS", "VERDICTS", "Adapter", "FetchReport", "Fetcher", "Page", "Settings", "add", "feedback", "fetch",
           "fetch_all", "get", "list_exchanges", "parse_config", "pending_feedback", "remove", "send_pending", "set_enabled", "status"]


def parse_config(text: Optional[str]) -> Dict[str, Any]:
    """--config's value: a JSON object, or the path of a file holding one."""
    if not text:
        return {}
    source = text
    if not text.lstrip().startswith("{") and Path(text).is_file():
        source = Path(text).read_text(encoding="utf-8")
    try:
        value = json.loads(source)
    except ValueError as e:
        raise ExchangeConfigError(f"--config must be a JSON object or a file holding one: {e}") from None
    if not isinstance(value, dict):
        raise ExchangeConfigError("--config must be a JSON object")
    return value


def add(store: Store, name: str, api: str, bank: str, cfg: Optional[Dict[str, Any]] = None,
        *, enabled: bool = True) -> Settings:
    """Configure an exchange that fills `bank` (made if missing); settings checked, secrets refused."""
    if not name or name != name.strip() or len(name) > 100:
        raise ExchangeConfigError(f"an exchange name is non-empty text without surrounding spaces, got {name!r}")
    checked = adapter_class(api).check_config(dict(cfg or {}))
    tables.insert(store, Settings(name, api, bank, checked, enabled))
    return tables.get(store, name)


def get(store: Store, name: str) -> Settings:
    """One exchange's settings."""
    return tables.get(store, name)


def list_exchanges(store: Store) -> List[Settings]:
    """Every configured exchange."""
    return tables.all_settings(store)


def set_enabled(store: Store, name: str, enabled: bool) -> None:
    """Switch an exchange on or off (a fetcher passes over the ones that are off)."""
    tables.update(store, name, enabled=enabled)


def remove(store: Store, name: str) -> None:
    """Forget an exchange (settings, checkpoint, status, feedback queue); its bank and entries stay."""
    tables.delete(store, name)


def feedback(store: Store, name: str, entry: Union[int, str], verdict: str, *, send: bool = True) -> Dict[str, int]:
    """Queue a verdict on an entry and (send=True) try to send the queue now; {"queued": id, "sent", "pending"}."""
    fid = queue_verdict(store, name, entry, verdict)
    sent, pending = send_pending(store, name) if send else (0, len(tables.pending_feedback(store, name)))
    return {"queued": fid, "sent": sent, "pending": pending}


def pending_feedback(store: Store, name: str) -> List[Dict[str, Any]]:
    """The verdicts of exchange `name` not yet taken by it, oldest first, with their attempts and last error."""
    return tables.pending_feedback(store, name)
