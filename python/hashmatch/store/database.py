"""HashDB: the database's connection, its writes, reads and stats, and the derived Hamming index."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InvalidInputError, MediaNotFoundError
from ..index import HammingIndex, remove_stale_temp_files
from ..ingest import record_of
from ..records import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_QUALITY, Fingerprint, Matches, Record
from ..rwlock import ReadWriteLock
from ..vpdq_frames import VPDQ_COMPARED_MATCH_PERCENT, VPDQ_QUERY_MATCH_PERCENT
from .matching import Item, Matching, check_radius
from .rows import Inserts, check_labels, index_rows, labels_json, media_uri
from .schema import SCHEMA, SCHEMA_VERSION



class HashDB(Matching):
    """A hash database in one SQLite file: add, remove and match images, videos or hashes."""

    def __init__(self, path: Union[str, os.PathLike], *, max_distance: int = DEFAULT_MAX_DISTANCE,
                 min_quality: int = DEFAULT_MIN_QUALITY,
                 vpdq_query_percent: float = VPDQ_QUERY_MATCH_PERCENT,
                 vpdq_compared_percent: float = VPDQ_COMPARED_MATCH_PERCENT,
                 tmk_level1: float = 0.7, tmk_level2: float = 0.7, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = bool(read_only)
        self.index_path = self.path.with_name(self.path.name + ".pdq-index")
        self.max_distance = check_radius(max_distance)
        self.min_quality = int(min_quality)
        self.vpdq_query_percent = float(vpdq_query_percent)
        self.vpdq_compared_percent = float(vpdq_compared_percent)
        self.tmk_level1, self.tmk_level2 = float(tmk_level1), float(tmk_level2)
        if self.path.is_dir():
            raise InvalidInputError(f"{self.path} is a directory; pass the database file's path")
        self._lock = ReadWriteLock()
        if self.read_only:
            self._open_read_only()
        else:
            self._open_read_write()
        version = int(self._meta("schema_version"))
        if version != SCHEMA_VERSION:
            raise InvalidInputError(f"{self.path}: database schema {version}, this hashmatch reads {SCHEMA_VERSION}")
        self._instance = int(self._meta("instance"))
        self._index: Optional[HammingIndex] = None
        self._index_dirty = False
        self._generation = -1
        self._removals = -1
        self._max_row_id = 0
        self._tmk: Optional[Any] = None  # TMKIndex, built on the first TMK query
        self._tmk_generation = -1
        with self._lock.write():
            self._refresh_index_locked()

    def _open_read_only(self) -> None:
        # Scan workers share one database: a read-only connection can never write it, and
        # close() then never saves the index (the parent saves it once before they start).
        if not self.path.is_file():
            raise MediaNotFoundError(f"no database at {self.path}; create it with `hashmatch db add` first")
        try:
            self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=60,
                                         isolation_level=None, check_same_thread=False)
            self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            raise InvalidInputError(f"{self.path}: not a hashmatch database ({e})") from e

    def _open_read_write(self) -> None:
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as e:
            raise InvalidInputError(f"{self.path}: not a hashmatch database ({e})") from e
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self._transaction():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('removals', '0')")
            # A random id per database file, so that an index file left behind by a deleted
            # database of the same name is never mistaken for this one's at the same generation.
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('instance', ?)", (str(secrets.randbits(30)),))
        remove_stale_temp_files(self.index_path)  # left by processes killed while saving the index

    # ----- writing -------------------------------------------------------------------

    def add(self, item: Item, *, source: Optional[str] = None, labels: Sequence[str] = (),
            external_id: Optional[str] = None, classification: Optional[str] = None,
            quality: Optional[int] = None) -> int:
        """Add one image, video or hash as a new entry; returns the entry id."""
        return self.add_many([item], source=source, labels=labels, external_ids=[external_id],
                             classification=classification, qualities=[quality])[0]

    def add_many(self, items: Iterable[Item], *, source: Optional[str] = None, labels: Sequence[str] = (),
                 external_ids: Optional[Sequence[Optional[str]]] = None, classification: Optional[str] = None,
                 qualities: Optional[Sequence[Optional[int]]] = None) -> List[int]:
        """Add many images, videos or hashes in one transaction (all or nothing); returns their entry ids."""
        items = list(items)
        external_ids = list(external_ids) if external_ids is not None else [None] * len(items)
        qualities = list(qualities) if qualities is not None else [None] * len(items)
        if len(external_ids) != len(items) or len(qualities) != len(items):
            raise InvalidInputError("external_ids and qualities must have one value per item")
        labels = check_labels(labels)
        records = []
        for item, ext, q in zip(items, external_ids, qualities):
            record = record_of(item, q)
            record.source, record.external_id, record.media_uri = source, ext, media_uri(item)
            record.labels, record.classification = list(labels), classification
            records.append(record)
        return self.add_records(records)

    def add_records(self, records: Sequence[Record]) -> List[int]:
        """Insert records as new entries in one transaction; returns their entry ids."""
        return self._write_records(records, merge=False)[0]

    def merge_records(self, records: Sequence[Record]) -> Dict[str, int]:
        """Import records in one transaction, merging into existing entries instead of duplicating.

        A record is the same entry as a stored one with its uid, else with its (source,
        external_id). Merging adds the fingerprints the entry lacks and, when the record is
        newer (``updated``), takes its fields and its tombstone. Returns counts of entries
        added, updated and left unchanged.
        """
        return self._write_records(records, merge=True)[1]

    def _write_records(self, records: Sequence[Record], merge: bool) -> Tuple[List[int], Dict[str, int]]:
        rows = [[index_rows(fp) for fp in r.fingerprints] for r in records]  # parse before writing
        for r in records:
            check_labels(r.labels)
        ids: List[int] = []
        counts = {"added": 0, "updated": 0, "unchanged": 0}
        reindex = False
        with self._lock.write():
            with self._transaction():
                inserts = Inserts(self._conn)
                for r, fp_rows in zip(records, rows):
                    found = self._find_entry(r) if merge else None
                    if found is None:
                        entry_id = inserts.entry(r)
                        counts["added"] += 1
                        changed, deleted = True, bool(r.deleted)
                    else:
                        entry_id, was_deleted, updated = found
                        changed = self._update_entry(entry_id, r, updated)
                        deleted = bool(r.deleted) if changed else bool(was_deleted)
                        reindex |= changed and bool(was_deleted) != bool(r.deleted)
                    ids.append(entry_id)
                    have = self._fingerprint_keys(entry_id) if found is not None else set()
                    for fp, fp_index_rows in zip(r.fingerprints, fp_rows):
                        if (fp.format, fp.value, fp.data) in have:
                            continue
                        changed = True
                        inserts.fingerprint(entry_id, fp, fp_index_rows, searchable=not deleted)
                    if found is not None:
                        counts["updated" if changed else "unchanged"] += 1
                    if merge:
                        inserts.write()  # the next record may merge into this one: it must find it
                inserts.write()
                if counts["added"] or counts["updated"]:
                    self._bump_generation(removed=reindex)
            if counts["added"] or counts["updated"]:
                if reindex:  # a tombstone came or went: the rows are the truth, reload from them
                    self._refresh_index_locked()
                else:
                    self._apply_locked(inserts.searchable, removed_row_ids=[])
        return ids, counts

    def _find_entry(self, r: Record) -> Optional[Tuple[int, int, float]]:
        if r.uid:
            row = self._conn.execute("SELECT id, deleted, updated FROM entries WHERE uid = ?", (r.uid,)).fetchone()
            if row is not None:
                return row
        if r.source is not None and r.external_id is not None:
            return self._conn.execute("SELECT id, deleted, updated FROM entries WHERE source = ? AND external_id = ?"
                                      " ORDER BY id LIMIT 1", (r.source, r.external_id)).fetchone()
        return None

    def _update_entry(self, entry_id: int, r: Record, stored_updated: float) -> bool:
        if r.updated is None or r.updated <= stored_updated:
            return False  # ours is as new or newer: keep our fields, still take missing fingerprints
        self._conn.execute(
            "UPDATE entries SET media_type = ?, source = ?, external_id = ?, labels = ?, classification = ?,"
            " media_uri = COALESCE(?, media_uri), updated = ?, deleted = ? WHERE id = ?",
            (r.media_type, r.source, r.external_id, labels_json(r.labels), r.classification, r.media_uri,
             r.updated, int(bool(r.deleted)), entry_id))
        return True

    def _fingerprint_keys(self, entry_id: int) -> set:
        return {tuple(row) for row in self._conn.execute(
            "SELECT format, value, data FROM fingerprints WHERE entry_id = ?", (entry_id,))}

    def remove(self, entry_ids: Union[int, Iterable[int]]) -> int:
        """Mark entries deleted (kept as tombstones) and drop them from matching; returns the count."""
        ids = [int(entry_ids)] if isinstance(entry_ids, (int, np.integer)) else [int(i) for i in entry_ids]
        if not ids:
            return 0
        with self._lock.write():
            with self._transaction():
                marks = ",".join("?" * len(ids))
                live = f"SELECT id FROM entries WHERE deleted = 0 AND id IN ({marks})"
                row_ids = [r[0] for r in self._conn.execute(
                    f"SELECT id FROM pdq_rows WHERE entry_id IN ({live})", ids)]
                n = self._conn.execute(f"UPDATE entries SET deleted = 1, updated = ? WHERE deleted = 0"
                                       f" AND id IN ({marks})", [time.time(), *ids]).rowcount
                if n:
                    self._bump_generation(removed=True)
            if n:
                self._apply_locked([], removed_row_ids=row_ids)
        return n

    # ----- reading -------------------------------------------------------------------

    def get(self, entry_id: int) -> Record:
        """One entry and its fingerprints (tombstones included, with deleted=True)."""
        found = self.records(entry_ids=[int(entry_id)], include_deleted=True)
        if not found:
            raise KeyError(f"no entry {entry_id} in {self.path}")
        return found[0]

    def records(self, *, entry_ids: Optional[Sequence[int]] = None, include_deleted: bool = True,
                formats: Optional[Sequence[str]] = None) -> List[Record]:
        """Entries as records, by id (all when entry_ids is None); only the named formats if given."""
        return list(self.iter_records(entry_ids=entry_ids, include_deleted=include_deleted, formats=formats))

    def iter_records(self, *, entry_ids: Optional[Sequence[int]] = None, include_deleted: bool = True,
                     formats: Optional[Sequence[str]] = None, batch: int = 500) -> Iterator[Record]:
        """Entries as records in id order, read in batches so a whole database streams in bounded memory."""
        where = [] if include_deleted else ["deleted = 0"]
        ids = list(entry_ids) if entry_ids is not None else None
        last = 0
        while True:
            if ids is not None:
                chunk, ids = ids[:batch], ids[batch:]
                if not chunk:
                    return
                cond = where + [f"id IN ({','.join('?' * len(chunk))})"]
                params: List[Any] = list(chunk)
            else:
                cond, params = where + ["id > ?"], [last]
            rows = self._conn.execute(
                "SELECT id, uid, media_type, source, external_id, labels, classification, created, updated, deleted,"
                f" media_uri FROM entries WHERE {' AND '.join(cond)} ORDER BY id LIMIT {batch}", params).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            fps: Dict[int, List[Fingerprint]] = defaultdict(list)
            marks = ",".join("?" * len(rows))
            fmt_cond = f" AND format IN ({','.join('?' * len(formats))})" if formats else ""
            for eid, f, v, q, av, p, d in self._conn.execute(
                    "SELECT entry_id, format, value, quality, algorithm_version, params, data FROM fingerprints"
                    f" WHERE entry_id IN ({marks}){fmt_cond} ORDER BY id", [r[0] for r in rows] + list(formats or [])):
                fps[eid].append(Fingerprint(f, v, q, av, json.loads(p), d))
            for eid, uid, mt, src, ext, labels, cls, created, updated, deleted, uri in rows:
                yield Record(mt, fps[eid], src, ext, json.loads(labels), cls, uid, created, updated, bool(deleted), eid,
                             uri)

    def entry_id(self, uid: str) -> int:
        """The local id of the entry with this uid (its identity across databases)."""
        row = self._conn.execute("SELECT id FROM entries WHERE uid = ?", (uid,)).fetchone()
        if row is None:
            raise KeyError(f"no entry with uid {uid!r} in {self.path}")
        return int(row[0])

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM entries WHERE deleted = 0").fetchone()[0])

    def __iter__(self) -> Iterator[int]:
        return iter([r[0] for r in self._conn.execute("SELECT id FROM entries WHERE deleted = 0 ORDER BY id")])

    def stats(self) -> Dict[str, Any]:
        """Counts of entries, tombstones and fingerprints by format and media type, and the index's state."""
        c = self._conn
        by_format = dict(c.execute(
            "SELECT f.format, COUNT(*) FROM fingerprints f JOIN entries e ON e.id = f.entry_id"
            " WHERE e.deleted = 0 GROUP BY f.format ORDER BY f.format").fetchall())
        by_media = dict(c.execute(
            "SELECT media_type, COUNT(*) FROM entries WHERE deleted = 0 GROUP BY media_type").fetchall())
        sources = dict(c.execute(
            "SELECT COALESCE(source, ''), COUNT(*) FROM entries WHERE deleted = 0 GROUP BY source").fetchall())
        self._refresh_if_changed()
        with self._lock.read():
            size = len(self._index) if self._index is not None else 0
            backend = self._index.backend if self._index is not None else None
        return {
            "path": str(self.path),
            "entries": len(self),
            "deleted": int(c.execute("SELECT COUNT(*) FROM entries WHERE deleted = 1").fetchone()[0]),
            "media_types": by_media,
            "fingerprints": by_format,
            "sources": sources,
            "index": {"path": str(self.index_path), "size": size, "backend": backend,
                      "generation": self._generation},
        }

    # ----- the derived index ---------------------------------------------------------

    def save_index(self) -> None:
        """Write the index next to the database (atomically), tagged with the current generation."""
        with self._lock.read():
            if self._index is not None:
                self._index.save(self.index_path, tag=self._tag(self._generation))
                self._index_dirty = False

    def close(self) -> None:
        """Save the index if it changed and close the database."""
        if self._conn is None:
            return
        try:
            if self._index is not None and self._index_dirty and not self.read_only:
                self.save_index()
        finally:
            self._conn.close()
            self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> "HashDB":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _tag(self, generation: int) -> int:
        return (self._instance << 32) | (generation & 0xFFFFFFFF)

    def _meta(self, key: str) -> str:
        return self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]

    def _bump_generation(self, removed: bool) -> None:
        keys = "('generation', 'removals')" if removed else "('generation')"
        self._conn.execute(f"UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key IN {keys}")

    def _state(self) -> Tuple[int, int]:
        rows = dict(self._conn.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'removals')"))
        return int(rows.get("generation", 0)), int(rows.get("removals", 0))

    def _apply_locked(self, new_rows: List[Tuple[int, bytes]], removed_row_ids: List[int]) -> None:
        # Our own writes update the in-memory index directly when nothing else wrote in
        # between; otherwise the rows are the truth and the index catches up from them.
        generation, removals = self._state()
        if generation != self._generation + 1 or self._index is None:
            self._refresh_index_locked()
            return
        if new_rows:
            codes = np.frombuffer(b"".join(b for _, b in new_rows), np.uint8).reshape(-1, 32)
            ids = np.fromiter((i for i, _ in new_rows), np.int64, len(new_rows))
            self._index.add(codes, ids)
            self._max_row_id = max(self._max_row_id, int(ids.max()))
        if removed_row_ids:
            self._index.remove(np.array(removed_row_ids, np.int64))
        self._generation, self._removals = generation, removals
        self._index_dirty = True

    def _refresh_if_changed(self) -> None:
        if self._state()[0] != self._generation:
            with self._lock.write():
                self._refresh_index_locked()

    def _refresh_index_locked(self) -> None:
        generation, removals = self._state()
        if generation == self._generation:
            return
        if self._index is not None and removals == self._removals:
            # Only additions since we last looked (another process's writes): load the new rows.
            self._load_rows(self._index, after_id=self._max_row_id)
            self._generation, self._index_dirty = generation, True
            return
        loaded = HammingIndex.load_if_tagged(self.index_path, tag=self._tag(generation))
        if loaded is not None:
            self._index, self._index_dirty = loaded, False
            self._max_row_id = max(0, int(loaded.max_id()))
        else:
            self._index, self._max_row_id = HammingIndex(), 0
            self._load_rows(self._index, after_id=0)
            self._index_dirty = True
        self._generation, self._removals = generation, removals

    def _load_rows(self, index: HammingIndex, after_id: int) -> None:
        cur = self._conn.execute(
            "SELECT r.id, r.bits FROM pdq_rows r JOIN entries e ON e.id = r.entry_id"
            " WHERE e.deleted = 0 AND r.id > ? ORDER BY r.id", (after_id,))
        while True:
            rows = cur.fetchmany(1_000_000)  # bounded memory for ten-million-row databases
            if not rows:
                break
            codes = np.frombuffer(b"".join(b for _, b in rows), np.uint8).reshape(-1, 32)
            ids = np.fromiter((i for i, _ in rows), np.int64, len(rows))
            index.add(codes, ids)
            self._max_row_id = max(self._max_row_id, int(ids[-1]))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # BEGIN IMMEDIATE takes the write lock up front, so concurrent writers queue
        # (up to the connection timeout) instead of failing half-way.
        if self.read_only:
            raise InvalidInputError(f"{self.path} was opened with read_only=True; open it without read_only to write")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

_OPEN: Dict[str, HashDB] = {}
_OPEN_LOCK = threading.Lock()


def open_db(db: Union[None, str, os.PathLike, HashDB] = None) -> HashDB:
    """The HashDB for `db` (a path or HashDB; None: $HASHMATCH_DB, else ./hashmatch.db), opened once."""
    if isinstance(db, HashDB):
        return db
    path = os.fspath(db) if db is not None else os.environ.get("HASHMATCH_DB", "hashmatch.db")
    key = os.path.realpath(path)
    with _OPEN_LOCK:
        found = _OPEN.get(key)
        if found is None or found._conn is None:
            found = _OPEN[key] = HashDB(path)
        return found


def match(media: Item, *, db: Union[None, str, os.PathLike, HashDB] = None, dihedral: bool = False,
          trim_borders: bool = False) -> Matches:
    """Match one image, video or hash against the database (opened once per process and cached)."""
    return open_db(db).match(media, dihedral=dihedral, trim_borders=trim_borders)
