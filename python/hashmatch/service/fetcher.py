"""The exchanges' background fetcher of ``hashmatch serve``: passes run beside the workers, not in them.

One fetcher per server, not one per worker: N workers fetching the same exchanges would repeat
every request and queue on the write lock. A thread of the server process looks every
`interval` seconds for enabled exchanges (one read-only query) and, when there are some, runs
one pass over them in a process of its own: spawned, so it starts single-threaded and may fork
its page prefetcher safely, and a crash in a client cannot touch the server. What a pass writes
reaches every worker through the change log, as any write does. Stopping the server stops a
pass after the page it is committing (the checkpoint saved with it, so the next pass resumes
there); a pass whose server was SIGKILLed stops by itself.
"""

from __future__ import annotations

import logging
import logging.config
import multiprocessing
import os
import signal
import threading
from typing import Optional

from .logs import log_config

log = logging.getLogger("hashmatch.serve")


class ExchangeFetcher:
    """The server's scheduler of exchange passes (a thread), each pass one child process."""

    def __init__(self, db: str, interval: float, log_level: str = "info") -> None:
        self.db, self.interval, self.log_level = db, float(interval), log_level
        self._stop = threading.Event()
        self._proc: Optional[multiprocessing.process.BaseProcess] = None
        self._thread = threading.Thread(target=self._loop, name="exchange-fetcher", daemon=True)

    def start(self) -> "ExchangeFetcher":
        """Start scheduling passes (the first one at once)."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop: a running pass ends after its current page, or is killed after `timeout` seconds."""
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.join(timeout)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        self._thread.join(timeout)

    def _loop(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        while not self._stop.is_set():
            try:
                if _enabled_exchanges(self.db):
                    self._proc = ctx.Process(target=_one_pass, args=(self.db, os.getpid(), self.log_level),
                                             name="hashmatch-exchange-pass")
                    self._proc.start()
                    self._proc.join()
                    if self._proc.exitcode not in (0, None) and not self._stop.is_set():
                        log.error("exchange pass exited with %s", self._proc.exitcode,
                                  extra={"event": "exchange_pass_failed", "exitcode": self._proc.exitcode})
                    self._proc = None
            except Exception as e:  # a database hiccup: try again next time
                log.error("exchange fetcher: %s: %s", type(e).__name__, e, extra={"event": "exchange_fetcher_error"})
            self._stop.wait(self.interval)


def _enabled_exchanges(db: str) -> int:
    from .. import exchanges
    from ..pipeline import HashDB

    with HashDB(db, create=False, read_only=True) as store:
        return sum(1 for s in exchanges.list_exchanges(store) if s.enabled)


def _one_pass(db: str, parent: int, log_level: str) -> None:
    logging.config.dictConfig(log_config(log_level))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server sends SIGTERM
    from ..exchanges import Fetcher
    from ..pipeline import HashDB

    store = HashDB(db, create=False)
    fetcher = Fetcher(store)
    signal.signal(signal.SIGTERM, lambda *_: fetcher.stop())

    def watch_parent() -> None:
        while not fetcher.stopped:
            if os.getppid() != parent:
                fetcher.stop()
                return
            threading.Event().wait(1.0)

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    try:
        for report in fetcher.run_once():
            log.info("exchange %s: %s", report.name, "ok" if report.ok else "failed",
                     extra={"event": "exchange_fetch", "exchange": report.name, "ok": report.ok,
                            "pages": report.pages, "added": report.added, "updated": report.updated,
                            "deleted": report.deleted, "seconds": round(report.seconds, 3)})
    finally:
        store.close()
