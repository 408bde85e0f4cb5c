"""Pages fetched and parsed in a child process while this one writes the previous page: two cores at work.

The child runs the adapter's page generator (HTTP, the client's parsing, our conversion) and
sends each page through a pipe, packed as plain tuples (far cheaper to unpickle than records);
the parent commits pages in order, each with its checkpoint, so resuming is as without it. The
pipe's buffer bounds how far the child runs ahead (about one page). A parent that dies (even
SIGKILL) breaks the pipe and the child exits at its next send.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
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


def _child(adapter: Adapter, checkpoint: Optional[Dict[str, Any]], conn: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
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
    """adapter.pages(checkpoint), fetched one page ahead in a child process; ready() says a page is waiting."""

    def __init__(self, adapter: Adapter, checkpoint: Optional[Dict[str, Any]]) -> None:
        ctx = multiprocessing.get_context("fork")
        self.adapter = adapter
        self.conn, theirs = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_child, args=(adapter, checkpoint, theirs), daemon=True)
        self.proc.start()
        theirs.close()
        self.finished = False

    def __iter__(self) -> Iterator[Page]:
        return self

    def __next__(self) -> Page:
        if self.finished:
            raise StopIteration
        try:
            kind, value, retries = self.conn.recv()
        except EOFError:
            self.close()
            raise ExchangeError("the fetching process ended without a word (killed?)") from None
        self.adapter.retry.retries = retries
        if kind == "page":
            return unpack(value)
        self.close()
        if kind == "error":
            name, message = value
            raise _ERRORS.get(name, ExchangeError)(message if name in _ERRORS else f"{name}: {message}")
        raise StopIteration

    def ready(self) -> bool:
        """Whether the next page (or the end) has arrived already."""
        return not self.finished and self.conn.poll()

    def close(self) -> None:
        """Stop the child (if still running) and reap it."""
        if self.finished:
            return
        self.finished = True
        self.conn.close()
        if self.proc.is_alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.join()
