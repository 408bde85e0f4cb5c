"""One server worker's state: its store, opened in the background, kept current from the change log.

The store is opened off the event loop (a saved index loads quickly, a rebuild may not); until it
is open every route that needs it answers 503 and ``/status`` says INDEX-NOT-LOADED. Once open,
store calls run on the event loop itself: they are short (an index search and two keyed
queries), so one worker serves them in order without locks or thread hand-offs. Media hashing,
the slow part of an upload, runs in a thread pool (the native core releases the GIL). A
background task asks the change log every ``refresh_seconds`` whether anything changed and
applies the delta, so a hash added through any worker is matchable by every worker within it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Dict, Optional, Tuple

from ..config import SERVE_TOKEN_CACHE_SECONDS
from ..pipeline import HashDB
from ..store import tokens
from .settings import ServeConfig

log = logging.getLogger("hashmatch.serve")


class NotReady(Exception):
    """The store is not open yet (or failed to open)."""


class Worker:
    """The state of one worker process: settings, store, readiness, token cache."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.fetch_policy = config.fetch_policy()
        self.store: Optional[HashDB] = None
        self.failed: Optional[str] = None
        self.started = time.time()
        self.ready_at: Optional[float] = None
        self.index_changed_at = time.time()
        self.refreshed_at = time.time()
        self._generation = -1
        self._tokens: Dict[str, Tuple[Optional[str], float]] = {}
        self._task: Optional[asyncio.Task] = None
        self._opened = threading.Event()

    # ----- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Open the store in a thread and start the refresh loop; returns at once."""
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            self.store = await asyncio.get_running_loop().run_in_executor(None, self._open)
        except Exception as e:  # reported by /status and every route, never a crash loop
            self.failed = f"{type(e).__name__}: {e}"
            log.error("store did not open", extra={"event": "store_failed", "error": self.failed})
            return
        self.ready_at = time.time()
        self._generation = self.store.indexes.generation
        log.info("ready", extra={"event": "ready", "seconds": round(self.ready_at - self.started, 3),
                                 "index_size": self.store.indexes.size()})
        while True:
            await asyncio.sleep(self.config.refresh_seconds)
            try:
                self.refresh()
            except Exception as e:  # a database hiccup: try again next round
                log.warning("refresh failed", extra={"event": "refresh_failed", "error": f"{type(e).__name__}: {e}"})

    def _open(self) -> HashDB:
        return HashDB(self.config.db, create=False)

    def refresh(self) -> None:
        """Apply whatever changed in the database since the last look (one cheap query when nothing did)."""
        store = self.store
        if store is None:
            return
        store.indexes.refresh_if_changed()
        self.refreshed_at = time.time()
        if store.indexes.generation != self._generation:
            self._generation = store.indexes.generation
            self.index_changed_at = time.time()

    async def stop(self) -> None:
        """Stop refreshing and close the store (saving the index if this worker changed it)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self.store is not None:
            try:
                self.store.close()
            except Exception as e:
                log.warning("close failed", extra={"event": "close_failed", "error": f"{type(e).__name__}: {e}"})
            self.store = None

    # ----- use ---------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Whether the store is open and its index loaded."""
        return self.store is not None

    def db(self) -> HashDB:
        """The open store; NotReady before it is."""
        if self.store is None:
            raise NotReady(self.failed or "index not yet ready")
        return self.store

    def token_role(self, token: str) -> Optional[str]:
        """The role of a token (cached for a moment: a revoked token stops working within the cache time)."""
        now = time.monotonic()
        found = self._tokens.get(token)
        if found is not None and found[1] > now:
            return found[0]
        role = tokens.token_role(self.db(), token)
        if len(self._tokens) > 10_000:  # a flood of random tokens must not grow memory
            self._tokens.clear()
        self._tokens[token] = (role, now + SERVE_TOKEN_CACHE_SECONDS)
        return role

    def stats(self) -> Dict[str, Any]:
        """Index size, generation and age, for /metrics and /m/index/status."""
        store = self.store
        if store is None:
            return {"ready": False}
        return {"ready": True, "size": store.indexes.size(), "generation": store.indexes.generation,
                "age": time.time() - self.refreshed_at, "changed_at": self.index_changed_at}
