"""The store's derived indexes: one Hamming index per code space, one vector index per vector space.

The rows are the truth; the indexes are rebuilt from them when they may disagree. A Hamming
index is saved beside the database (``<db>.pdq-index`` for the ``pdq`` space,
``<db>.<space>-index`` for others) and trusted only when its tag (the database's random
instance id and its write generation) is current. Our own writes update the indexes in
place; other processes' writes are caught up from the rows (additions only: by row id) or
rebuild them (anything removed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .. import signals
from ..files import remove_stale_temp_files
from ..index import HammingIndex, VectorIndex
from ..rwlock import ReadWriteLock

Hits = List[List[Tuple[int, int]]]  # per query code: (code row id, distance)


class DerivedIndexes:
    """The in-memory indexes of one store, kept current with its rows; reads share a lock, writes hold it."""

    def __init__(self, conn_of, db_path: Path, instance: int) -> None:
        self._conn_of = conn_of  # a callable giving the open connection (the store may close it)
        self.db_path = db_path
        self.instance = instance
        self.lock = ReadWriteLock()
        self.hamming: Dict[str, HammingIndex] = {}
        self.dirty = False
        self.generation = -1
        self.removals = -1
        self.max_row_id = 0
        self._vectors: Dict[str, Tuple[int, VectorIndex]] = {}  # space -> (generation, index)
        for space in self.hamming_spaces():
            remove_stale_temp_files(self.path_of(space))  # left by processes killed while saving

    # ----- where and what --------------------------------------------------------------
    @staticmethod
    def hamming_spaces() -> List[str]:
        """Every Hamming space the registered signals use ('pdq' first)."""
        return sorted(signals.spaces("hamming"), key=lambda s: (s != "pdq", s))

    def path_of(self, space: str) -> Path:
        """The saved index file of a Hamming space."""
        return self.db_path.with_name(f"{self.db_path.name}.{space}-index")

    def tag(self, generation: int) -> int:
        """The tag a saved index carries: this database's instance and a write generation."""
        return (self.instance << 32) | (generation & 0xFFFFFFFF)

    def state(self) -> Tuple[int, int]:
        """The database's (generation, removals) counters."""
        rows = dict(self._conn_of().execute("SELECT key, value FROM meta WHERE key IN ('generation', 'removals')"))
        return int(rows.get("generation", 0)), int(rows.get("removals", 0))

    def size(self) -> int:
        """Codes held over every Hamming space."""
        return sum(len(ix) for ix in self.hamming.values())

    def backend(self) -> Optional[str]:
        """The 'pdq' space's search backend ("mih" or "flat"), None before any index exists."""
        ix = self.hamming.get("pdq")
        return ix.backend if ix is not None else None

    # ----- keeping current -------------------------------------------------------------
    def apply_locked(self, new_rows: Dict[str, List[Tuple[int, bytes]]], removed_row_ids: List[int]) -> None:
        """After our own write: update in place when nothing else wrote in between, else catch up from rows."""
        generation, removals = self.state()
        if generation != self.generation + 1 or not self.hamming:
            self.refresh_locked()
            return
        for space, rows in new_rows.items():
            if rows:
                codes = np.frombuffer(b"".join(b for _, b in rows), np.uint8).reshape(-1, 32)
                ids = np.fromiter((i for i, _ in rows), np.int64, len(rows))
                self.hamming.setdefault(space, HammingIndex()).add(codes, ids)
                self.max_row_id = max(self.max_row_id, int(ids.max()))
        if removed_row_ids:
            removed = np.array(removed_row_ids, np.int64)
            for ix in self.hamming.values():
                ix.remove(removed)
        self.generation, self.removals = generation, removals
        self.dirty = True

    def refresh_if_changed(self) -> None:
        """Catch up with writes made through other connections."""
        if self.state()[0] != self.generation:
            with self.lock.write():
                self.refresh_locked()

    def refresh_locked(self) -> None:
        """Bring the Hamming indexes to the rows' generation (the caller holds the write lock)."""
        generation, removals = self.state()
        if generation == self.generation:
            return
        if self.hamming and removals == self.removals:
            self._load_rows(after_id=self.max_row_id)  # only additions since we last looked
            self.generation, self.dirty = generation, True
            return
        loaded = {space: HammingIndex.load_if_tagged(self.path_of(space), tag=self.tag(generation))
                  for space in self.hamming_spaces()}
        if all(ix is not None for ix in loaded.values()):
            self.hamming, self.dirty = loaded, False  # type: ignore[assignment]
            self.max_row_id = max([0] + [int(ix.max_id()) for ix in loaded.values()])
        else:
            self.hamming = {space: HammingIndex() for space in self.hamming_spaces()}
            self.max_row_id = 0
            self._load_rows(after_id=0)
            self.dirty = True
        self.generation, self.removals = generation, removals

    def _load_rows(self, after_id: int) -> None:
        cur = self._conn_of().execute(
            "SELECT r.id, r.bits, r.space FROM code_rows r JOIN entries e ON e.id = r.entry_id"
            " WHERE e.deleted = 0 AND r.id > ? ORDER BY r.id", (after_id,))
        while True:
            rows = cur.fetchmany(1_000_000)  # bounded memory for ten-million-row databases
            if not rows:
                break
            for space in {s for _, _, s in rows}:
                mine = [(i, b) for i, b, s in rows if s == space] if len(self.hamming) > 1 else rows
                codes = np.frombuffer(b"".join(r[1] for r in mine), np.uint8).reshape(-1, 32)
                ids = np.fromiter((r[0] for r in mine), np.int64, len(mine))
                self.hamming.setdefault(space, HammingIndex()).add(codes, ids)
            self.max_row_id = max(self.max_row_id, int(rows[-1][0]))

    def save(self) -> None:
        """Write every Hamming index beside the database (atomically), tagged with the current generation."""
        with self.lock.read():
            for space, ix in self.hamming.items():
                ix.save(self.path_of(space), tag=self.tag(self.generation))
            self.dirty = False

    # ----- searching -------------------------------------------------------------------
    def search(self, space: str, codes: np.ndarray, radius: int) -> Hits:
        """(row id, distance) hits per query code in one Hamming space, against the current rows."""
        self.refresh_if_changed()
        with self.lock.read():
            ix = self.hamming.get(space)
            if ix is None or len(ix) == 0:
                return [[] for _ in range(len(codes))]
            lims, distances, row_ids = ix.range_search(codes, radius=radius)
        return [list(zip(row_ids[lims[q]:lims[q + 1]].tolist(), distances[lims[q]:lims[q + 1]].tolist()))
                for q in range(len(codes))]

    def vectors(self, space: str) -> VectorIndex:
        """The vector index of a space, built from its rows on first use and after any write."""
        self.refresh_if_changed()
        with self.lock.write():
            held = self._vectors.get(space)
            if held is None or held[0] != self.generation:
                spec = signals.spaces("vector")[space]
                index = VectorIndex(spec.dim, spec.metric)
                rows = self._conn_of().execute(
                    "SELECT v.fingerprint_id, v.vector FROM vector_rows v JOIN entries e ON e.id = v.entry_id"
                    " WHERE e.deleted = 0 AND v.space = ? ORDER BY v.fingerprint_id", (space,)).fetchall()
                if rows:
                    index.add(np.frombuffer(b"".join(v for _, v in rows), np.float32).reshape(len(rows), -1),
                              np.array([i for i, _ in rows], np.int64))
                held = self._vectors[space] = (self.generation, index)
            return held[1]
