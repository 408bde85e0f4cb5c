"""The store's derived indexes: one Hamming index per code space, one vector index per vector space.

The rows are the truth; the indexes follow them through the change log (``changes``: one
generation per change). A process at generation g applies only what came after: new code
rows (their ids grow in commit order, so "every row past the last one I hold"), entries
tombstoned (their rows leave the index) and entries restored (their rows come back). A
Hamming index is saved beside the database (``<db>.pdq-index`` for the ``pdq`` space,
``<db>.<space>-index`` for others; for PostgreSQL in a per-machine cache directory) and
trusted only when its tag (the database's random instance id and a generation) is current:
an older one is caught up from the log, a foreign or damaged one rebuilt from the rows.

A saved index is opened by mmap (every worker process shares its pages) and takes the log's
changes as a delta (HammingIndex.apply_delta, tagged with the generation they bring it to);
large deltas are merged into the file in the background. A file found damaged after it was
opened (its checksums are checked in the background) makes the next search rebuild.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .. import signals
from ..errors import IndexCorruptError
from ..files import remove_stale_temp_files
from ..index import HammingIndex, VectorIndex
from ..rwlock import ReadWriteLock
from .schema import chunks

Hits = List[List[Tuple[int, int]]]  # per query code: (code row id, distance)


class DerivedIndexes:
    """The in-memory indexes of one store, kept current with its rows; reads share a lock, writes hold it."""

    def __init__(self, conn_of, db_path: Path, instance: int) -> None:
        self._conn_of = conn_of  # a callable giving the open backend (the store may close it)
        self.db_path = db_path
        self.instance = instance
        self.lock = ReadWriteLock()
        self.hamming: Dict[str, HammingIndex] = {}
        self.dirty = False
        self.generation = -1
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

    def current_generation(self) -> int:
        """The database's latest generation (0 before any change)."""
        return int(self._conn_of().execute("SELECT COALESCE(MAX(generation), 0) FROM changes").fetchone()[0])

    def size(self) -> int:
        """Codes held over every Hamming space."""
        return sum(len(ix) for ix in self.hamming.values())

    def backend(self) -> Optional[str]:
        """The 'pdq' space's search backend ("mih" or "flat"), None before any index exists."""
        ix = self.hamming.get("pdq")
        return ix.backend if ix is not None else None

    # ----- keeping current -------------------------------------------------------------
    def apply_locked(self, new_rows: Dict[str, List[Tuple[int, bytes]]], removed_row_ids: List[int],
                     changes: int) -> None:
        """After our own write of `changes` generations: update in place when nothing else wrote in between."""
        generation = self.current_generation()
        if generation != self.generation + changes or not self.hamming:
            self.refresh_locked()
            return
        try:
            self._apply(new_rows, removed_row_ids, generation)
        except IndexCorruptError:  # the opened file failed its background check: the rows are the truth
            self._rebuild(generation)

    def _apply(self, new_rows: Dict[str, List[Tuple[int, bytes]]], removed_row_ids: List[int],
               generation: int) -> None:
        removed = np.array(removed_row_ids, np.int64)
        for ix in self.hamming.values():
            ix.apply_delta(removes=removed)
        for space, rows in new_rows.items():
            if rows:
                codes = np.frombuffer(b"".join(b for _, b in rows), np.uint8).reshape(-1, 32)
                ids = np.fromiter((i for i, _ in rows), np.int64, len(rows))
                self.hamming.setdefault(space, HammingIndex()).apply_delta(adds=(codes, ids))
                self.max_row_id = max(self.max_row_id, int(ids.max()))
        self._reached(generation)

    def refresh_if_changed(self) -> None:
        """Catch up with writes made through other connections (one cheap query when there are none)."""
        if self.current_generation() != self.generation:
            with self.lock.write():
                self.refresh_locked()

    def refresh_locked(self) -> None:
        """Bring the Hamming indexes to the database's generation (the caller holds the write lock)."""
        generation = self.current_generation()
        if generation == self.generation:
            return
        if not self.hamming:
            loaded = self._load_saved(generation)
            if loaded is None:
                self._rebuild(generation)
                return
        try:
            self._catch_up(generation)
        except IndexCorruptError:
            self._rebuild(generation)

    def _load_saved(self, generation: int) -> Optional[int]:
        """Open the saved indexes if they are this database's, at `generation` or before; their generation."""
        spaces = self.hamming_spaces()
        for g in self._saved_generations(generation):
            loaded = {space: HammingIndex.open_if_tagged(self.path_of(space), tag=self.tag(g)) for space in spaces}
            if all(ix is not None for ix in loaded.values()):
                self.hamming = loaded  # type: ignore[assignment]
                self.max_row_id = max([0] + [int(ix.max_id()) for ix in loaded.values()])
                self.generation, self.dirty = g, False
                return g
        return None

    def _saved_generations(self, generation: int) -> List[int]:
        # The tag holds the generation the file was saved at: read it, then check the file against it.
        tags = [HammingIndex.saved_tag(self.path_of(space)) for space in self.hamming_spaces()]
        found = {t & 0xFFFFFFFF for t in tags if t is not None and t >> 32 == self.instance}
        return sorted((g for g in found if g <= generation), reverse=True)[:1]

    def _rebuild(self, generation: int) -> None:
        self.hamming = {space: HammingIndex() for space in self.hamming_spaces()}
        self.max_row_id = 0
        self._load_rows(after_id=0)
        self.generation, self.dirty = generation, True

    def _catch_up(self, generation: int) -> None:
        """Apply the log's changes after our generation: tombstones and restores, then the new rows."""
        db = self._conn_of()
        state: Dict[int, str] = {}  # entry -> its last remove/restore
        for op, entry in db.execute("SELECT op, entry_id FROM changes WHERE generation > ? AND generation <= ?"
                                    " AND op IN ('remove', 'restore') ORDER BY generation",
                                    (self.generation, generation)).fetchall():
            state[int(entry)] = op
        removed = [e for e, op in state.items() if op == "remove"]
        restored = [e for e, op in state.items() if op == "restore"]
        for chunk in chunks(removed):
            marks = ",".join("?" * len(chunk))
            ids = np.array([r[0] for r in db.execute(f"SELECT id FROM code_rows WHERE entry_id IN ({marks})",
                                                     chunk).fetchall()], np.int64)
            for ix in self.hamming.values():
                ix.apply_delta(removes=ids)
        for chunk in chunks(restored):  # rows past max_row_id come with the new rows below
            marks = ",".join("?" * len(chunk))
            rows = db.execute(f"SELECT r.id, r.bits, r.space FROM code_rows r JOIN entries e ON e.id = r.entry_id"
                              f" WHERE e.deleted = 0 AND r.entry_id IN ({marks}) AND r.id <= ?",
                              [*chunk, self.max_row_id]).fetchall()
            for ix in self.hamming.values():
                ix.apply_delta(removes=np.array([r[0] for r in rows], np.int64))  # never twice
            self._add(rows)
        self._load_rows(after_id=self.max_row_id)
        self._reached(generation)

    def _reached(self, generation: int) -> None:
        """The indexes now hold the database at `generation`: tag their state (a merge may save it)."""
        for ix in self.hamming.values():
            ix.apply_delta(tag=self.tag(generation))
        self.generation, self.dirty = generation, True

    def _load_rows(self, after_id: int) -> None:
        cur = self._conn_of().execute(
            "SELECT r.id, r.bits, r.space FROM code_rows r JOIN entries e ON e.id = r.entry_id"
            " WHERE e.deleted = 0 AND r.id > ? ORDER BY r.id", (after_id,))
        while True:
            rows = cur.fetchmany(1_000_000)  # bounded memory for ten-million-row databases
            if not rows:
                break
            self._add(rows)
            self.max_row_id = max(self.max_row_id, int(rows[-1][0]))

    def _add(self, rows: List[Tuple]) -> None:
        """Add (row id, bits, space) rows to their spaces' indexes."""
        for space in {r[2] for r in rows}:
            mine = [r for r in rows if r[2] == space] if len(self.hamming) > 1 else rows
            codes = np.frombuffer(b"".join(bytes(r[1]) for r in mine), np.uint8).reshape(-1, 32)
            ids = np.fromiter((r[0] for r in mine), np.int64, len(mine))
            self.hamming.setdefault(space, HammingIndex()).apply_delta(adds=(codes, ids))

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
        try:
            with self.lock.read():
                ix = self.hamming.get(space)
                if ix is None or len(ix) == 0:
                    return [[] for _ in range(len(codes))]
                lims, distances, row_ids = ix.range_search(codes, radius=radius)
        except IndexCorruptError:  # the opened file failed its background check: the rows are the truth
            with self.lock.write():
                self._rebuild(self.current_generation())
            return self.search(space, codes, radius)
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
