"""Pages fetched and parsed in a child process while this one writes the previous page: two cores at work.

The child runs the adapter's page generator (HTTP, the client's parsing, our conversion) and
sends each page through a pipe, packed as plain tuples (far cheaper to unpickle than records);
the parent commits pages in order, with their checkpoints, so resuming is as without it. A
bounded queue (16 pages) bounds how far the child runs ahead. A parent that dies (even SIGKILL)
breaks the pipe and the child exits at its next send.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
from typing import Any, Dict, Iterator, Optional, Tuple

from ..errors import CredentialsError, ExchangeConfigError, ExchangeError, ExchangeUnavailableError
from ..store import Fingerprint, Record
from .base import Adapter, Page

_ERRORS = {c.__name__: c for c in (ExchangeError, ExchangeUnavailableError, CredentialsError, ExchangeConfigError)}


def pack(page: Page) -> Tuple:
    """A page as plain tuples."""
    return (page.checkpoint, page.done, [
        (r.media_type, [(f.format, f.value, f.quality, f.algorithm_version, f.params, f.data) for f in r.fingerprints],
         r.source, r.external_id, r.labels, r.classification, r.bank, r.deleted, r.updated, r.metadata)
        for r in page.records])


def unpack(packed: Tuple) -> Page:
    """The page pack() packed."""
    checkpoint, done, rows = packed
    records = [Record(media, [Fingerprint(*f) for f in fps], source, ext, labels, cls, None, None, updated, deleted,
                      None, None, bank, None, None, metadata)
               for media, fps, source, ext, labels, cls, bank, deleted, updated, metadata in rows]
    return Page(records, checkpoint, done)


def _child(adapter: Adapter, checkpoint: Optional[Dict[str, Any]], conn: Any, parents_end: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    # The fork copied the parent's reading end too: close it, or a dead parent never breaks the pipe.
    parents_end.close()
    try:
        for page in adapter.pages(checkpoint):
            conn.send(("page", pack(page), adapter.retry.retries))
        conn.send(("end", None, adapter.retry.retries))
    except (BrokenPipeError, ConnectionResetError, EOFError):
        pass  # the parent is gone
    except Exception as e:  # noqa: BLE001 - handed to the parent, which raises it
        try:
            conn.send(("error", (type(e).__name__, str(e)), adapter.retry.retries))
        except (BrokenPipeError, ConnectionResetError):
            pass
    finally:
        conn.close()


class Prefetched:
    """adapter.pages(checkpoint), fetched ahead in a child process; ready() says a page is waiting.

    A thread here drains the pipe into a queue of up to ``ahead`` pages, so the child runs ahead while
    a page is written and fetch() can commit the pages already waiting together.
    """

    def __init__(self, adapter: Adapter, checkpoint: Optional[Dict[str, Any]], ahead: int = 16) -> None:
        ctx = multiprocessing.get_context("fork")
        self.adapter = adapter
        self.conn, theirs = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_child, args=(adapter, checkpoint, theirs, self.conn), daemon=True)
        self.proc.start()
        theirs.close()
        self.finished = False
        self.queue: "queue.Queue[Tuple[str, Any]]" = queue.Queue(maxsize=ahead)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                kind, value, retries = self.conn.recv()
            except (EOFError, OSError):
                self.queue.put(("lost", None))
                return
            self.adapter.retry.retries = retries
            self.queue.put((kind, unpack(value) if kind == "page" else value))
            if kind != "page":
                return

    def __iter__(self) -> Iterator[Page]:
        return self

    def __next__(self) -> Page:
        if self.finished:
            raise StopIteration
        kind, value = self.queue.get()
        if kind == "page":
            return value
        self.close()
        if kind == "lost":
            raise ExchangeError("the fetching process ended without a word (killed?)")
        if kind == "error":
            name, message = value
            raise _ERRORS.get(name, ExchangeError)(message if name in _ERRORS else f"{name}: {message}")
        raise StopIteration

    def ready(self) -> bool:
        """Whether the next page (or the end) has arrived already."""
        return not self.finished and not self.queue.empty()

    def close(self) -> None:
        """Stop the child (if still running) and reap it."""
        if self.finished:
            return
        self.finished = True
        if self.proc.is_alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.join()
        while self.reader.is_alive():  # it ends at the pipe's EOF; make room if it waits on a full queue
            try:
                self.queue.get_nowait()
            except queue.Empty:
                pass
            self.reader.join(0.05)
        self.conn.close()
