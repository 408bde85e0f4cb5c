"""The local engine: a process pool over every core, the database opened once per process."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Iterable, List, Set

from .worker import Row, ScanOptions, Task, scan_batch, worker_db


def run_batch(tasks: List[Task], db_path: str, options: ScanOptions) -> List[Row]:
    """A batch's rows, on whichever process runs it (pool or Dask worker), with that process's database."""
    return scan_batch(tasks, worker_db(db_path), options)


class LocalEngine:
    """Batches on a pool of `workers` processes; a pool broken by a dead worker is replaced."""

    def __init__(self, db_path: str, options: ScanOptions, workers: int) -> None:
        self.db_path, self.options, self.workers = db_path, options, workers
        # Two batches per process in flight: each has its next batch queued while it works.
        self.capacity = 2 * workers
        self._futures: Set[Future] = set()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the parent runs threads (progress bar, SQLite, FAISS/OpenMP) a fork could copy mid-lock.
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=worker_db, initargs=(self.db_path,))

    def submit(self, tasks: List[Task]) -> Future:
        """Start one batch."""
        future = self._pool.submit(run_batch, tasks, self.db_path, self.options)
        self._futures.add(future)
        return future

    def wait_any(self) -> Iterable[Future]:
        """The futures done once at least one is."""
        done, _ = wait(self._futures, return_when=FIRST_COMPLETED)
        self._futures -= done
        return done

    def result(self, future: Future) -> List[Row]:
        """A done batch's rows."""
        return future.result()

    def recover(self, error: BaseException) -> bool:
        """Replace a pool a dead worker broke (every task in flight is then lost)."""
        if not isinstance(error, BrokenProcessPool):
            return False
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._futures.clear()
        self._pool = self._new_pool()
        return True

    def close(self, cancel: bool = False) -> None:
        """Stop the workers."""
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
