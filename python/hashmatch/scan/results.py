"""Where scan rows go: JSON Lines appended durably batch by batch, resumable; Parquet at the end.

A JSON Lines file is its own journal: every row is one complete line, each batch of rows is
written, flushed and fsynced before the scan counts it done, so after a crash (Ctrl-C,
SIGKILL, power) the file is every finished row plus at most one torn last line. Resuming
drops that line and skips every path already present: nothing is lost or written twice.
Parquet cannot be appended to, so a Parquet scan writes the same journal next to RESULTS
(``RESULTS.journal.jsonl``) and converts it when the scan completes: written to a temporary
file, renamed over RESULTS, then the journal removed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Set

from ..errors import InvalidInputError
from ..files import atomic_write
from .worker import MATCH_FIELDS, ROW_FIELDS, Row


class ResultsWriter:
    """Appends rows to RESULTS (``.jsonl`` or ``.parquet``), durably per batch; knows the paths already done."""

    def __init__(self, out: str, *, resume: bool = False) -> None:
        self.out = Path(out)
        suffix = self.out.suffix.lower()
        if suffix not in (".jsonl", ".parquet"):
            raise InvalidInputError(f"out={str(out)!r}: RESULTS must end in .jsonl (JSON Lines) or .parquet")
        self.parquet = suffix == ".parquet"
        self.journal = self.out.with_name(self.out.name + ".journal.jsonl") if self.parquet else self.out
        # Paths and counts only: a scan of millions of files must not hold its rows in memory.
        self.done: Set[str] = set()
        self.counts = summarize(())
        existing = self.journal.exists() or (self.parquet and self.out.exists())
        if existing and not resume:
            raise InvalidInputError(f"{self.out} already holds results; pass resume=True (--resume) to continue "
                                    "that scan, or remove it to start again")
        if resume and self.parquet and not self.journal.exists() and self.out.exists():
            self._journal_from_parquet()  # a finished Parquet scan, resumed: new files get added to it
        if resume and self.journal.exists():
            self._recover()
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.journal, "ab")

    def _recover(self) -> None:
        good_end, number = 0, 0
        with open(self.journal, "rb") as f:
            for line in f:
                number += 1
                try:
                    row = json.loads(line) if line.endswith(b"\n") else None
                except ValueError:
                    row = None
                if not isinstance(row, dict) or "path" not in row:
                    if f.read(1):  # only the last line can be torn by a crash
                        raise InvalidInputError(f"{self.journal}: line {number} is not a scan row; is this the "
                                                "RESULTS of a hashmatch scan? Pass another out= to start a new one")
                    break
                self._count([row])
                good_end += len(line)
        if good_end < self.journal.stat().st_size:
            with open(self.journal, "r+b") as f:
                f.truncate(good_end)
                f.flush()
                os.fsync(f.fileno())

    def _journal_from_parquet(self) -> None:
        import pyarrow.parquet as pq

        with atomic_write(self.journal) as f:
            for batch in pq.ParquetFile(self.out).iter_batches(batch_size=ROW_GROUP):
                f.write(b"".join(_line(r) for r in batch.to_pylist()))

    def write(self, rows: Iterable[Row]) -> None:
        """Append rows and make them durable before returning: once this returns they count as done."""
        rows = list(rows)
        if not rows:
            return
        self._file.write(b"".join(_line(r) for r in rows))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._count(rows)

    def _count(self, rows: List[Row]) -> None:
        for key, n in summarize(rows).items():
            self.counts[key] += n
        self.done.update(r["path"] for r in rows)

    def close(self, complete: bool = True) -> None:
        """Close the journal; a complete Parquet scan is converted to RESULTS and its journal removed."""
        if self._file.closed:
            return
        self._file.close()
        if complete and self.parquet:
            write_parquet(self.out, _iter_jsonl(self.journal))
            self.journal.unlink()


def _line(row: Row) -> bytes:
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _schema() -> Any:
    import pyarrow as pa

    match = pa.struct([("entry_id", pa.int64()), ("uid", pa.string()), ("format", pa.string()),
                       ("distance", pa.int32()), ("query_match_percent", pa.float64()),
                       ("compared_match_percent", pa.float64()), ("level1", pa.float64()), ("level2", pa.float64()),
                       ("variant", pa.string()), ("media_type", pa.string()), ("source", pa.string()),
                       ("external_id", pa.string()), ("labels", pa.list_(pa.string())),
                       ("classification", pa.string())])
    assert tuple(match.names) == MATCH_FIELDS
    types = {"path": pa.string(), "size": pa.int64(), "media_type": pa.string(), "formats": pa.list_(pa.string()),
             "pdq": pa.string(), "quality": pa.int32(), "vpdq_frames": pa.int32(), "video_md5": pa.string(),
             "matches": pa.list_(match), "skipped": pa.string(), "status": pa.string(), "error_type": pa.string(),
             "error": pa.string(), "seconds": pa.float64()}
    return pa.schema([(name, types[name]) for name in ROW_FIELDS])


#: Rows per Parquet row group: the conversion holds one group in memory, whatever the scan's size.
ROW_GROUP = 100_000


def write_parquet(path: Path, rows: Iterable[Row]) -> None:
    """Write rows as one Parquet file, a row group at a time, atomically (a temporary file renamed over `path`)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - pyarrow is a dependency
        raise InvalidInputError("Parquet RESULTS need pyarrow: pip install pyarrow, or write .jsonl") from e
    schema = _schema()
    with atomic_write(path) as f, pq.ParquetWriter(f, schema) as out:
        group: List[Row] = []
        for row in rows:
            group.append(row)
            if len(group) == ROW_GROUP:
                out.write_table(pa.Table.from_pylist(group, schema=schema))
                group = []
        out.write_table(pa.Table.from_pylist(group, schema=schema))  # also gives an empty scan its schema


def _iter_jsonl(path: Path) -> Iterator[Row]:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def read_results(path: str) -> List[Row]:
    """The rows of a RESULTS file (``.jsonl`` or ``.parquet``)."""
    p = Path(path)
    if p.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(p).to_pylist()
    return list(_iter_jsonl(p))


def summarize(rows: Iterable[Optional[Row]]) -> Dict[str, int]:
    """Counts over rows: files, ok, errors, files with a match, matches."""
    out = {"files": 0, "ok": 0, "errors": 0, "matched_files": 0, "matches": 0}
    for r in rows:
        if r is None:
            continue
        out["files"] += 1
        out["ok" if r["status"] == "ok" else "errors"] += 1
        out["matched_files"] += bool(r["matches"])
        out["matches"] += len(r["matches"] or [])
    return out
