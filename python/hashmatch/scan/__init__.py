"""Batch scans: every file of a directory, path list or bucket hashed and matched, one row each, resumable."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Union

from ..config import MAX_PIXELS, default_threads
from ..errors import InvalidInputError
from ..pipeline import HashDB
from ..store.backends import is_url as is_database_url
from .driver import Progress, batches, run
from .results import ResultsWriter, read_results
from .sources import list_files, shared_between_processes
from .worker import ScanOptions

__all__ = ["scan", "ScanSummary", "read_results"]

#: Files per task: enough to amortise a task's overhead, few enough to spread well and lose little on a crash.
DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class ScanSummary:
    """What a scan did: rows in RESULTS by status, matches, and this run's speed."""

    files: int
    ok: int
    errors: int
    matched_files: int
    matches: int
    scanned: int  # files scanned by this run (the rest were done by the run it resumed)
    seconds: float
    files_per_second: float
    out: str

    def to_dict(self) -> Dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return asdict(self)


def scan(source: Union[str, os.PathLike], db: Union[str, os.PathLike], out: Union[str, os.PathLike], *,
         engine: str = "local", workers: Optional[int] = None, resume: bool = False, scheduler: Any = None,
         progress: bool = False, batch_size: int = DEFAULT_BATCH_SIZE, max_pixels: int = MAX_PIXELS,
         max_distance: Optional[int] = None, min_quality: Optional[int] = None) -> ScanSummary:
    """Hash and match every file of `source` against `db`, one row per file streamed to `out`; returns counts."""
    start = time.perf_counter()
    source, out = os.fspath(source), os.fspath(out)
    db_path = os.fspath(db) if is_database_url(os.fspath(db)) else os.path.abspath(os.fspath(db))
    engine_name = _check_args(engine, workers, batch_size, scheduler)
    options = ScanOptions(int(max_pixels), max_distance, min_quality)
    # The parent opens the database first (a missing one is an error before RESULTS exists), saves a
    # current index once, so every worker loads it instead of rebuilding it, and keeps the database
    # open: the WAL files read-only workers need then stay in place.
    with HashDB(db_path, create=False) as parent_db:
        paths = list_files(source)
        writer = ResultsWriter(out, resume=resume)
        todo = [p for p in paths if p not in writer.done]
        n_workers = int(workers) if workers is not None else default_threads()
        parent_db.save_index()
        bar = Progress(len(todo) + len(writer.done), writer.counts, progress)
        runner = _engine(engine_name, db_path, options, scheduler, n_workers)
        complete = False
        try:
            run(runner, batches(todo, int(batch_size), not shared_between_processes(source)), writer, bar)
            complete = True
        finally:
            runner.close(cancel=not complete)
            bar.close()
            writer.close(complete=complete)
    counts = dict(writer.counts)
    seconds = time.perf_counter() - start
    return ScanSummary(**counts, scanned=len(todo), seconds=round(seconds, 3),
                       files_per_second=round(len(todo) / seconds, 2) if seconds > 0 else 0.0, out=out)


def _check_args(engine: str, workers: Optional[int], batch_size: int, scheduler: Any) -> str:
    if engine not in ("local", "dask"):
        raise InvalidInputError(f"engine={engine!r}: pass 'local' (a process pool) or 'dask' (a Dask cluster)")
    if workers is not None and int(workers) < 1:
        raise InvalidInputError(f"workers={workers}: pass a count >= 1, or None for every CPU")
    if int(batch_size) < 1:
        raise InvalidInputError(f"batch_size={batch_size}: pass a count >= 1")
    if scheduler is not None and engine != "dask":
        raise InvalidInputError("scheduler= is for engine='dask'; pass engine='dask' too, or drop scheduler")
    return engine


def _engine(name: str, db_path: str, options: ScanOptions, scheduler: Any, workers: int) -> Any:
    if name == "dask":
        from .dask_engine import DaskEngine

        return DaskEngine(db_path, options, scheduler, workers)
    from .local import LocalEngine

    return LocalEngine(db_path, options, workers)
