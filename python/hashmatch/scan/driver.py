"""The loop every engine shares: batches out to workers, rows back to one writer, crashes contained.

A batch whose worker died (or whose task failed for any reason) is not lost and not
counted: its files are retried one at a time, alone, so that a file which kills its
worker (a decoder crash, the OOM killer) is pinned down and becomes an error row while
every other file of its batch gets its real row. Rows reach the writer only from
completed tasks, each once, so nothing is written twice. When tasks keep failing with no
success in between, the workers themselves are broken (hashmatch does not import there,
the database cannot be read): the scan stops with an error instead of blaming the files,
and their rows are left for a resumed scan.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional, Protocol, Sequence, Tuple

from ..errors import HashmatchError
from .results import ResultsWriter, summarize
from .sources import read_bytes
from .worker import Row, Task, error_row


#: Failed tasks in a row, none succeeding in between, that mean the workers are broken, not the files.
MAX_FAILURE_STREAK = 5


class WorkersFailingError(HashmatchError):
    """Scan tasks keep failing whatever file they hold: the workers, not the files, are broken."""


class Engine(Protocol):
    """Where batches run: a process pool or a Dask cluster."""

    capacity: int  # batches kept in flight

    def submit(self, tasks: List[Task]) -> Any:
        """Start one batch; returns its future."""

    def wait_any(self) -> Iterable[Any]:
        """Block until at least one submitted future is done; return the done ones."""

    def result(self, future: Any) -> List[Row]:
        """The rows of a done future (raises if its task failed)."""

    def recover(self, error: BaseException) -> bool:
        """Make the engine usable again after a failed task; True when every other in-flight task was lost too."""


class Progress:
    """A tqdm bar on stderr: files/s, ETA, matches and errors so far."""

    def __init__(self, total: int, initial: Dict[str, int], enabled: bool) -> None:
        from tqdm import tqdm

        self.matches, self.errors = initial["matches"], initial["errors"]
        self.bar = tqdm(total=total, initial=initial["files"], unit="file", file=sys.stderr, disable=not enabled,
                        dynamic_ncols=True, smoothing=0.05)
        self._postfix()

    def update(self, rows: Sequence[Row]) -> None:
        """Count rows just written."""
        counts = summarize(rows)
        self.matches += counts["matches"]
        self.errors += counts["errors"]
        self.bar.update(len(rows))
        self._postfix()

    def _postfix(self) -> None:
        self.bar.set_postfix(matches=self.matches, errors=self.errors, refresh=False)

    def close(self) -> None:
        """Finish the bar."""
        self.bar.close()


def batches(paths: Sequence[str], size: int, parent_reads: bool) -> Iterator[Tuple[List[Task], List[Row]]]:
    """Batches of tasks, lazily; when only this process sees the files it reads them (failures become rows)."""
    for start in range(0, len(paths), size):
        tasks: List[Task] = []
        failed: List[Row] = []
        for path in paths[start:start + size]:
            if not parent_reads:
                tasks.append((path, None))
                continue
            try:
                tasks.append((path, read_bytes(path)))
            except Exception as e:  # an unreadable file is a row with its reason, like any bad file
                failed.append(error_row(path, type(e).__name__, str(e)))
        yield tasks, failed


def run(engine: Engine, work: Iterator[Tuple[List[Task], List[Row]]], writer: ResultsWriter,
        progress: Progress) -> None:
    """Run every batch on the engine and write every row once, as batches complete."""
    pending: Dict[Any, Tuple[List[Task], bool]] = {}  # future -> (tasks, run alone)
    suspects: Deque[Task] = deque()
    exhausted = False
    streak = 0
    held: List[Row] = []  # crash rows, written once a success shows the workers themselves are sound

    def emit(rows: List[Row]) -> None:
        writer.write(rows)
        progress.update(rows)

    while True:
        if suspects:
            if not pending:  # one at a time: a crash then names its file
                task = suspects.popleft()
                pending[engine.submit([task])] = ([task], True)
        else:
            while len(pending) < engine.capacity and not exhausted:
                nxt: Optional[Tuple[List[Task], List[Row]]] = next(work, None)
                if nxt is None:
                    exhausted = True
                    break
                tasks, failed = nxt
                if failed:
                    emit(failed)
                if tasks:
                    pending[engine.submit(tasks)] = (tasks, False)
        if not pending:
            if suspects:
                continue
            emit(held)  # fewer crashes than a streak at the very end: those files did kill their workers
            return
        failures: List[Tuple[List[Task], bool, BaseException]] = []
        for future in engine.wait_any():
            tasks, alone = pending.pop(future)
            try:
                rows = engine.result(future)
            except Exception as e:
                failures.append((tasks, alone, e))
                continue
            emit(held + rows)
            held, streak = [], 0
        if not failures:
            continue
        streak += 1
        if streak >= MAX_FAILURE_STREAK:
            error = failures[-1][2]
            raise WorkersFailingError(f"{streak} scan tasks failed in a row, none succeeding (last: "
                                      f"{type(error).__name__}: {error}); check that hashmatch imports and the "
                                      "database opens on the workers, then rerun with resume=True (--resume)")
        if engine.recover(failures[0][2]):
            failures += [(tasks, alone, failures[0][2]) for tasks, alone in pending.values()]
            pending.clear()
        for tasks, alone, error in failures:
            if alone:
                held.append(error_row(tasks[0][0], "WorkerCrashed", "the worker scanning this file alone died or "
                                      f"failed ({type(error).__name__}: {error})"))
            else:
                suspects.extend(tasks)
