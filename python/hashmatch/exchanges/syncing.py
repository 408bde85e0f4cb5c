"""One incremental pass of an exchange into its bank, and the Fetcher the service runs in the background.

Each page goes into the store in one transaction together with the checkpoint after it
(Store.sync_records' ``then``): a process killed at any point leaves the bank as it was after
the last whole page and the checkpoint that says so, and the next pass resumes there. Entries
are keyed by (exchange, the exchange's own id), so a page fetched twice changes nothing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from .. import config
from ..errors import ExchangeError, HashmatchError
from ..store import Store
from . import tables
from .base import log, redact
from .base import Page
from .prefetch import Prefetched
from .registry import adapter_for


@dataclass
class FetchReport:
    """What one pass of one exchange did."""

    name: str
    api: str
    pages: int = 0
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    retries: int = 0
    seconds: float = 0.0
    complete: bool = False  # reached the end of what the exchange has (else stopped or failed mid-way)
    error: Optional[str] = None
    feedback_sent: int = 0
    feedback_pending: int = 0

    @property
    def ok(self) -> bool:
        """No error."""
        return self.error is None

    @property
    def entries(self) -> int:
        """Records applied: added, updated, deleted and unchanged."""
        return self.added + self.updated + self.deleted + self.unchanged

    def to_dict(self) -> Dict[str, Any]:
        """The report as a JSON-ready dict."""
        return {**asdict(self), "ok": self.ok}


def fetch(store: Store, name: str, *, stop: Optional[threading.Event] = None,
          on_page: Optional[Callable[[FetchReport], None]] = None, max_pages: Optional[int] = None,
          prefetch: Optional[bool] = None) -> FetchReport:
    """One incremental pass of exchange `name` into its bank, page by page; stops early (resumable) when
    `stop` is set or after `max_pages`. prefetch: fetch the next page in a child process while this one
    writes (default: the adapter's choice; HTTP adapters do). Failures are in the report (and the exchange's status), not raised,
    except a missing exchange or a misconfiguration."""
    settings = tables.get(store, name)
    report = FetchReport(name, settings.api)
    began = time.monotonic()
    tables.set_status(store, name, "running")
    adapter = None
    try:
        adapter = adapter_for(settings)
        adapter.store = store
        checkpoint = tables.checkpoint(store, name)
        ahead = prefetch if prefetch is not None else adapter.prefetch
        source = Prefetched(adapter, checkpoint) if ahead else iter(adapter.pages(checkpoint))
        try:
            for group in _groups(source, max_pages):
                last = group[-1]
                records = [r for page in group for r in page.records]

                def commit_checkpoint(db: Any, checkpoint: Dict[str, Any] = last.checkpoint,
                                      counts: Dict[str, int] = _sent(records)) -> None:
                    tables.save_checkpoint(db, name, checkpoint, counts, len(group))

                result = store.sync_records(records, then=commit_checkpoint)
                report.pages += len(group)
                for k in ("added", "updated", "deleted", "unchanged"):
                    setattr(report, k, getattr(report, k) + result[k])
                report.complete = last.done
                if on_page is not None:
                    on_page(report)
                if (stop is not None and stop.is_set()) or (max_pages is not None and report.pages >= max_pages):
                    break
        finally:
            if isinstance(source, Prefetched):
                source.close()
    except (ExchangeError, HashmatchError, OSError) as e:
        report.error = redact(f"{type(e).__name__}: {e}")
    except Exception as e:  # noqa: BLE001 - a client's own failure (e.g. an NCMEC page it cannot parse): reported
        report.error = redact(f"{type(e).__name__}: {str(e)[:500]}")
    finally:
        report.seconds = time.monotonic() - began
        report.retries = adapter.retry.retries if adapter is not None else 0
    if report.error:
        log.warning("exchange %s: fetch stopped after %d pages: %s", name, report.pages, report.error)
        tables.set_status(store, name, "failed", report.error)
    else:
        tables.set_status(store, name, "ok" if report.complete else "partial")
    return report


def _groups(source: Any, max_pages: Optional[int]) -> Iterator[List[Page]]:
    """Whole pages to commit together: one, plus those already fetched (up to config.EXCHANGE_GROUP_ENTRIES
    records), so that a fast exchange pays one commit for several pages. Each group is all-or-nothing
    with the checkpoint of its last page."""
    taken = 0
    for page in source:
        group, size = [page], len(page.records)
        while (not group[-1].done and getattr(source, "ready", lambda: False)()
               and size < config.EXCHANGE_GROUP_ENTRIES and (max_pages is None or taken + len(group) < max_pages)):
            try:
                group.append(next(source))
            except StopIteration:
                break
            size += len(group[-1].records)
        taken += len(group)
        yield group


def _sent(records: Sequence[Any]) -> Dict[str, int]:
    # The status table's running totals: the upserts and deletions the exchange sent in this page.
    deletes = sum(1 for r in records if r.deleted)
    return {"added": len(records) - deletes, "updated": 0, "deleted": deletes}


def fetch_all(store: Store, names: Optional[Sequence[str]] = None, *, stop: Optional[threading.Event] = None
              ) -> List[FetchReport]:
    """One pass of each named exchange (default: every enabled one), feedback sent first."""
    from .verdicts import send_pending

    chosen = list(names) if names else [s.name for s in tables.all_settings(store) if s.enabled]
    reports = []
    for name in chosen:
        if stop is not None and stop.is_set():
            break
        sent, pending = send_pending(store, name)
        report = fetch(store, name, stop=stop)
        report.feedback_sent, report.feedback_pending = sent, pending
        reports.append(report)
    return reports


def status(store: Store, name: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every exchange's settings (no secrets), checkpoint, last fetch, live entries and queued feedback."""
    out = []
    for s in tables.all_settings(store) if name is None else [tables.get(store, name)]:
        live = int(store.sql.execute("SELECT COUNT(*) FROM entries WHERE source = ? AND deleted = 0",
                                     (s.name,)).fetchone()[0])
        out.append({**s.to_dict(), "checkpoint": tables.checkpoint(store, s.name), **tables.status_row(store, s.name),
                    "entries": live, "feedback_pending": len(tables.pending_feedback(store, s.name))})
    return out


@dataclass
class Fetcher:
    """Passes over exchanges every `interval` seconds until stopped: what ``hashmatch serve`` runs in a thread.

    ``run_once()`` does one pass of each exchange; ``run()`` loops; ``stop()`` ends the loop after the page
    being committed (its checkpoint saved, so the next pass resumes there).
    """

    store: Store
    names: Optional[Sequence[str]] = None
    interval: float = config.EXCHANGE_FETCH_INTERVAL
    last: List[FetchReport] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()

    def run_once(self) -> List[FetchReport]:
        """One pass of each exchange; the reports."""
        self.last = fetch_all(self.store, self.names, stop=self._stop)
        return self.last

    def run(self) -> None:
        """Pass after pass until stop()."""
        while not self._stop.is_set():
            try:
                self.run_once()
            except HashmatchError as e:  # a misconfigured exchange: logged, the others go on next time
                log.error("exchange fetcher: %s", redact(str(e)))
            except Exception as e:  # a database hiccup: a background loop keeps going and tries again
                log.error("exchange fetcher: %s: %s", type(e).__name__, redact(str(e)))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop after the current page."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """Whether stop() was called."""
        return self._stop.is_set()
