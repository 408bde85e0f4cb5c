"""Store: the hash database in one SQLite file. Hashes in, matches out; it never sees media.

SQLite (one file, WAL mode) is the source of truth; the indexes over its rows are derived
(store.indexes). Every write is one transaction, so a process killed mid-write leaves the
previous consistent state. Opening never creates a database unless asked (``create=True``):
a reader pointed at a missing file gets an error, never an empty answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import signals
from ..config import (PDQ_MIN_QUALITY, TMK_LEVEL1_THRESHOLD, TMK_LEVEL2_THRESHOLD, VPDQ_COMPARED_MATCH_PERCENT,
                      VPDQ_QUERY_MATCH_PERCENT)
from ..errors import DatabaseNotFoundError, InvalidInputError
from .indexes import DerivedIndexes
from .matching import Matcher, check_radius
from .records import Fingerprint, Matches, Query, Record
from .rows import Inserts, check_labels, index_rows, labels_json
from .schema import SCHEMA, SCHEMA_VERSION, statements, upgrade

PathLike = Union[str, "os.PathLike[str]"]


class Store:
    """A hash database in one SQLite file: add records, remove entries, match hashes."""

    def __init__(self, path: PathLike, *, create: bool = True, max_distance: Optional[int] = None,
                 min_quality: int = PDQ_MIN_QUALITY, vpdq_query_percent: float = VPDQ_QUERY_MATCH_PERCENT,
                 vpdq_compared_percent: float = VPDQ_COMPARED_MATCH_PERCENT,
                 tmk_level1: float = TMK_LEVEL1_THRESHOLD, tmk_level2: float = TMK_LEVEL2_THRESHOLD,
                 read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = bool(read_only)
        self.max_distance = None if max_distance is None else check_radius(max_distance)
        self.min_quality = int(min_quality)
        self.vpdq_query_percent = float(vpdq_query_percent)
        self.vpdq_compared_percent = float(vpdq_compared_percent)
        self.tmk_level1, self.tmk_level2 = float(tmk_level1), float(tmk_level2)
        if self.path.is_dir():
            raise InvalidInputError(f"{self.path} is a directory; pass the database file's path")
        if not self.path.is_file() and (self.read_only or not create):
            raise DatabaseNotFoundError(f"no hash database at {self.path}; create one with `hashmatch db add` "
                                        "or `hashmatch db import`, or HashDB(path) in Python")
        self._conn: Optional[sqlite3.Connection] = None
        if self.read_only:
            self._open_read_only()
        else:
            self._open_read_write()
        version = int(self._meta("schema_version"))
        if version != SCHEMA_VERSION:
            raise InvalidInputError(f"{self.path}: database schema {version}, this hashmatch reads {SCHEMA_VERSION}"
                                    + ("; open it once without read_only to upgrade it" if version < SCHEMA_VERSION
                                       and self.read_only else ""))
        self.indexes = DerivedIndexes(lambda: self._conn, self.path, int(self._meta("instance")))
        self.matcher = Matcher(lambda: self._conn, self.indexes)
        with self.indexes.lock.write():
            self.indexes.refresh_locked()

    # ----- opening ---------------------------------------------------------------------
    def _open_read_only(self) -> None:
        # Scan workers share one database: a read-only connection can never write it, and
        # close() then never saves the index (the parent saves it once before they start).
        try:
            self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=60,
                                         isolation_level=None, check_same_thread=False)
            self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            raise InvalidInputError(f"{self.path}: not a hashmatch database ({e})") from e

    def _open_read_write(self) -> None:
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as e:
            raise InvalidInputError(f"{self.path}: not a hashmatch database ({e})") from e
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self._transaction():
            found = self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
                                       ).fetchone()
            version = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() \
                if found else None
            if version is not None and int(version[0]) < SCHEMA_VERSION:
                upgrade(self._conn, int(version[0]))  # an older release's database, upgraded in this transaction
                self._conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
            for statement in statements(SCHEMA):
                self._conn.execute(statement)
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('removals', '0')")
            # A random id per database file, so that an index file left behind by a deleted
            # database of the same name is never mistaken for this one's at the same generation.
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('instance', ?)", (str(secrets.randbits(30)),))

    # ----- writing ---------------------------------------------------------------------
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
        with self.indexes.lock.write():
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
                    self.indexes.refresh_locked()
                else:
                    self.indexes.apply_locked(inserts.searchable, removed_row_ids=[])
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
        with self.indexes.lock.write():
            with self._transaction():
                marks = ",".join("?" * len(ids))
                live = f"SELECT id FROM entries WHERE deleted = 0 AND id IN ({marks})"
                row_ids = [r[0] for r in self._conn.execute(
                    f"SELECT id FROM code_rows WHERE entry_id IN ({live})", ids)]
                n = self._conn.execute(f"UPDATE entries SET deleted = 1, updated = ? WHERE deleted = 0"
                                       f" AND id IN ({marks})", [time.time(), *ids]).rowcount
                if n:
                    self._bump_generation(removed=True)
            if n:
                self.indexes.apply_locked({}, removed_row_ids=row_ids)
        return n

    # ----- matching --------------------------------------------------------------------
    def thresholds(self, max_distance: Optional[int] = None, min_quality: Optional[int] = None) -> signals.Thresholds:
        """The thresholds of one lookup: this store's, narrowed by the call's."""
        radius = self.max_distance if max_distance is None else check_radius(max_distance)
        return signals.Thresholds(radius, self.min_quality if min_quality is None else int(min_quality),
                                  self.vpdq_query_percent, self.vpdq_compared_percent,
                                  {"tmk_pdqf": self.tmk_level1}, {"tmk_pdqf": self.tmk_level2})

    def match_query(self, query: Query, *, max_distance: Optional[int] = None,
                    min_quality: Optional[int] = None) -> Matches:
        """Entries that match hashes already computed (a ``store.Query``), best first."""
        return self.matcher.match(query, self.thresholds(max_distance, min_quality))

    def match_hash(self, fmt: str, value: Any, *, max_distance: Optional[int] = None,
                   min_quality: Optional[int] = None) -> Matches:
        """Match a hash given in any format by name (``pdq``, ``vpdq``, ``tmk_pdqf``, ``video_md5`` ...)."""
        signal = signals.get(fmt)
        if not signal.matchable:
            raise InvalidInputError(f"format {signal.name!r} is kept but never matched by hashmatch")
        parsed = signal.loads(value) if isinstance(value, (str, bytes, bytearray)) else value
        media = signal.media_type if signal.media_type in ("image", "video") else "image"
        return self.match_query(Query(media_type=media).add(signal.name, parsed), max_distance=max_distance,
                                min_quality=min_quality)

    # ----- reading ---------------------------------------------------------------------
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
        self.indexes.refresh_if_changed()
        with self.indexes.lock.read():
            size, backend = self.indexes.size(), self.indexes.backend()
        return {
            "path": str(self.path),
            "entries": len(self),
            "deleted": int(c.execute("SELECT COUNT(*) FROM entries WHERE deleted = 1").fetchone()[0]),
            "media_types": by_media,
            "fingerprints": by_format,
            "sources": sources,
            "index": {"path": str(self.index_path), "size": size, "backend": backend,
                      "generation": self.indexes.generation},
        }

    # ----- the derived index -----------------------------------------------------------
    @property
    def index_path(self) -> Path:
        """The saved index of the 'pdq' Hamming space (PDQ and vPDQ frames)."""
        return self.indexes.path_of("pdq")

    def save_index(self) -> None:
        """Write the indexes next to the database (atomically), tagged with the current generation."""
        self.indexes.save()

    def close(self) -> None:
        """Save the indexes if they changed and close the database."""
        if self._conn is None:
            return
        try:
            if self.indexes.dirty and not self.read_only:
                self.save_index()
        finally:
            self._conn.close()
            self._conn = None

    @property
    def closed(self) -> bool:
        """Whether close() has run."""
        return self._conn is None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _meta(self, key: str) -> str:
        return self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]

    def _bump_generation(self, removed: bool) -> None:
        keys = "('generation', 'removals')" if removed else "('generation')"
        self._conn.execute(f"UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key IN {keys}")

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
