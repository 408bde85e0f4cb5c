"""The Dask engine: the same batches on a Dask cluster, rows gathered by the client as tasks complete.

Each worker opens the database itself, once, from a path every worker can read: a worker
plugin opens it (and loads its index) when the worker starts, including workers that
replace dead ones. A worker that dies mid-task loses nothing: the scheduler reruns its
tasks elsewhere (up to ``distributed.scheduler.allowed-failures`` times) and the client
writes a batch's rows only when its future completes, which happens once.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Union

from ..errors import InvalidInputError
from .local import run_batch
from .worker import Row, ScanOptions, Task, worker_db

try:
    from distributed import Client, LocalCluster, WorkerPlugin, as_completed
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise InvalidInputError("engine='dask' needs Dask: pip install 'hashmatch[dask]'") from e


class OpenDatabase(WorkerPlugin):
    """Opens the scan's database read-only on every worker when it starts."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path

    def setup(self, worker: Any) -> None:
        """Open the database and load its index before the worker's first task."""
        worker_db(self.db_path)


class DaskEngine:
    """Batches as Dask tasks on a cluster (an address, a Client, or a new LocalCluster)."""

    def __init__(self, db_path: str, options: ScanOptions, scheduler: Union[None, str, Client],
                 workers: Optional[int]) -> None:
        self.db_path, self.options = db_path, options
        self._cluster = None
        if isinstance(scheduler, Client):
            self.client, self._own_client = scheduler, False
        else:
            if scheduler is None:
                self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                             dashboard_address=None)
                scheduler = self._cluster
            try:
                self.client, self._own_client = Client(scheduler), True
            except (OSError, TimeoutError, ValueError) as e:
                if self._cluster is not None:
                    self._cluster.close()
                raise InvalidInputError(f"scheduler={scheduler!r}: cannot connect ({e}); pass a running "
                                        "scheduler's address, or none for a local cluster") from e
        self.client.register_plugin(OpenDatabase(db_path), name=f"hashmatch-db-{db_path}")
        threads = sum(self.client.nthreads().values()) or 1
        self.capacity = 2 * threads
        self._completed = as_completed()

    def submit(self, tasks: List[Task]) -> Any:
        """Start one batch as a task (never cached: pure=False)."""
        future = self.client.submit(run_batch, tasks, self.db_path, self.options, pure=False)
        self._completed.add(future)
        return future

    def wait_any(self) -> Iterable[Any]:
        """The futures done once at least one is."""
        return self._completed.next_batch(block=True)

    def result(self, future: Any) -> List[Row]:
        """A done batch's rows; the future is released so its worker frees them."""
        try:
            return future.result()
        finally:
            future.release()

    def recover(self, error: BaseException) -> bool:
        """Nothing to rebuild: Dask replaces dead workers, and a failed task costs no other task."""
        return False

    def close(self, cancel: bool = False) -> None:
        """Disconnect, and stop the cluster this engine started."""
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
