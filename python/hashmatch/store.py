"""The hash database: entries with fingerprints in SQLite, and a derived Hamming index.

SQLite (one file, WAL mode) is the source of truth. Every PDQ hash it holds, an image's or
one frame of a video's vPDQ, is a row of ``pdq_rows``; the Hamming index over those rows is
derived data, saved next to the database as ``<db>.pdq-index`` and trusted only when its
tag (this database's random instance id and its write generation) is current; otherwise it
is rebuilt from the rows. Every write is one transaction, so a process killed mid-write
leaves the previous consistent state.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import InputTypeError, InvalidInputError, MediaNotFoundError
from .index import HammingIndex, remove_stale_temp_files
from .ingest import Query, query_of, record_of
from .records import (DEFAULT_MAX_DISTANCE, DEFAULT_MIN_QUALITY, PDQ_ALGORITHM_VERSION, Fingerprint, Match,
                      Matches, Record)
from .rwlock import ReadWriteLock
from .vpdq_frames import VPDQ_COMPARED_MATCH_PERCENT, VPDQ_QUERY_MATCH_PERCENT, loads as vpdq_loads
from .vpdq_frames import unique_good_frames

__all__ = ["HashDB", "Match", "Matches", "Record", "Fingerprint", "PDQ_ALGORITHM_VERSION", "open_db", "match"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    media_type TEXT NOT NULL,
    source TEXT,
    external_id TEXT,
    labels TEXT NOT NULL DEFAULT '[]',
    classification TEXT,
    media_uri TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS fingerprints (
    id INTEGER PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES entries(id),
    format TEXT NOT NULL,
    value TEXT NOT NULL,
    quality INTEGER,
    algorithm_version TEXT,
    params TEXT NOT NULL DEFAULT '{}',
    data BLOB
);
CREATE TABLE IF NOT EXISTS pdq_rows (
    id INTEGER PRIMARY KEY,
    fingerprint_id INTEGER NOT NULL REFERENCES fingerprints(id),
    entry_id INTEGER NOT NULL REFERENCES entries(id),
    bits BLOB NOT NULL,
    quality INTEGER,
    frame_number INTEGER,
    timestamp REAL
);
CREATE TABLE IF NOT EXISTS tmk_rows (
    fingerprint_id INTEGER PRIMARY KEY REFERENCES fingerprints(id),
    entry_id INTEGER NOT NULL REFERENCES entries(id),
    average BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS fingerprints_by_entry ON fingerprints(entry_id);
CREATE INDEX IF NOT EXISTS digests_by_value ON fingerprints(format, value) WHERE format IN {DIGESTS};
CREATE INDEX IF NOT EXISTS entries_by_external_id ON entries(source, external_id);
CREATE INDEX IF NOT EXISTS pdq_rows_by_entry ON pdq_rows(entry_id);
CREATE INDEX IF NOT EXISTS pdq_rows_by_fingerprint ON pdq_rows(fingerprint_id);
"""

# Exact-match formats are looked up by value; perceptual ones through the in-memory indexes,
# so only digests pay for a B-tree (a 64-character PDQ value per row would slow bulk adds).
_DIGEST_FORMATS = ("md5", "sha1", "sha256", "video_md5", "video_sha1", "video_sha256")
_DIGESTS_SQL = "(" + ", ".join(f"'{f}'" for f in _DIGEST_FORMATS) + ")"
_SCHEMA = _SCHEMA.replace("{DIGESTS}", _DIGESTS_SQL)

Item = Any  # a path, bytes, file object, PIL image, array, PDQ / hex / 32 bytes, or vPDQ frames


class HashDB:
    """A hash database in one SQLite file: add, remove and match images, videos or hashes."""

    def __init__(self, path: Union[str, os.PathLike], *, max_distance: int = DEFAULT_MAX_DISTANCE,
                 min_quality: int = DEFAULT_MIN_QUALITY,
                 vpdq_query_percent: float = VPDQ_QUERY_MATCH_PERCENT,
                 vpdq_compared_percent: float = VPDQ_COMPARED_MATCH_PERCENT,
                 tmk_level1: float = 0.7, tmk_level2: float = 0.7, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = bool(read_only)
        self.index_path = self.path.with_name(self.path.name + ".pdq-index")
        self.max_distance = _radius(max_distance)
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
            for statement in _SCHEMA.split(";"):
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
        labels = _check_labels(labels)
        records = []
        for item, ext, q in zip(items, external_ids, qualities):
            record = record_of(item, q)
            record.source, record.external_id, record.media_uri = source, ext, _media_uri(item)
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
        rows = [[_index_rows(fp) for fp in r.fingerprints] for r in records]  # parse before writing
        for r in records:
            _check_labels(r.labels)
        ids: List[int] = []
        counts = {"added": 0, "updated": 0, "unchanged": 0}
        new_rows: List[Tuple[int, bytes]] = []
        reindex = False
        with self._lock.write():
            with self._transaction():
                if not merge and records:
                    ids, new_rows = self._bulk_insert(records, rows)
                    counts["added"] = len(ids)
                    records = []  # done: the loop below is the merging path
                for r, fp_rows in zip(records, rows):
                    found = self._find_entry(r) if merge else None
                    if found is None:
                        entry_id = self._insert_entry(r)
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
                        added = self._insert_fingerprint(entry_id, fp, fp_index_rows)
                        if not deleted:  # a tombstone's hashes are kept, never searched
                            new_rows += added
                    if found is not None:
                        counts["updated" if changed else "unchanged"] += 1
                if counts["added"] or counts["updated"]:
                    self._bump_generation(removed=reindex)
            if counts["added"] or counts["updated"]:
                if reindex:  # a tombstone came or went: the rows are the truth, reload from them
                    self._refresh_index_locked()
                else:
                    self._apply_locked(new_rows, removed_row_ids=[])
        return ids, counts

    def _bulk_insert(self, records: Sequence[Record], rows: List[List[List[Tuple]]]
                     ) -> Tuple[List[int], List[Tuple[int, bytes]]]:
        """New entries with ids assigned here and rows written with executemany (~5x the row-at-a-time rate).

        Safe because BEGIN IMMEDIATE holds SQLite's write lock: no other writer can take these ids.
        """
        def next_id(table: str) -> int:
            return int(self._conn.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()[0])

        entry_id, fp_id, row_id = next_id("entries"), next_id("fingerprints"), next_id("pdq_rows")
        now = time.time()
        entries, fingerprints, pdq, tmk = [], [], [], []
        ids, new_rows = [], []
        for r, fp_rows in zip(records, rows):
            created = r.created if r.created is not None else now
            entries.append((entry_id, r.uid or _new_uid(), r.media_type, r.source, r.external_id,
                            _labels_json(r.labels), r.classification, r.media_uri, created,
                            r.updated if r.updated is not None else created, int(bool(r.deleted))))
            ids.append(entry_id)
            for fp, fp_index_rows in zip(r.fingerprints, fp_rows):
                fingerprints.append((fp_id, entry_id, fp.format, fp.value, fp.quality, fp.algorithm_version,
                                     _params_json(fp.params), fp.data))
                if fp.format == "tmk_pdqf" and fp.data is not None:
                    tmk.append((fp_id, entry_id, _tmk_average(fp.data)))
                for bits, quality, frame, timestamp in fp_index_rows:
                    pdq.append((row_id, fp_id, entry_id, bits, quality, frame, timestamp))
                    if not r.deleted:
                        new_rows.append((row_id, bits))
                    row_id += 1
                fp_id += 1
            entry_id += 1
        self._conn.executemany(
            "INSERT INTO entries (id, uid, media_type, source, external_id, labels, classification, media_uri,"
            " created, updated, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", entries)
        self._conn.executemany(
            "INSERT INTO fingerprints (id, entry_id, format, value, quality, algorithm_version, params, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", fingerprints)
        self._conn.executemany("INSERT INTO pdq_rows (id, fingerprint_id, entry_id, bits, quality, frame_number,"
                               " timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)", pdq)
        self._conn.executemany("INSERT INTO tmk_rows (fingerprint_id, entry_id, average) VALUES (?, ?, ?)", tmk)
        return ids, new_rows

    def _find_entry(self, r: Record) -> Optional[Tuple[int, int, float]]:
        if r.uid:
            row = self._conn.execute("SELECT id, deleted, updated FROM entries WHERE uid = ?", (r.uid,)).fetchone()
            if row is not None:
                return row
        if r.source is not None and r.external_id is not None:
            return self._conn.execute("SELECT id, deleted, updated FROM entries WHERE source = ? AND external_id = ?"
                                      " ORDER BY id LIMIT 1", (r.source, r.external_id)).fetchone()
        return None

    def _insert_entry(self, r: Record) -> int:
        now = time.time()
        created = r.created if r.created is not None else now
        cur = self._conn.execute(
            "INSERT INTO entries (uid, media_type, source, external_id, labels, classification, media_uri, created,"
            " updated, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r.uid or _new_uid(), r.media_type, r.source, r.external_id, _labels_json(r.labels),
             r.classification, r.media_uri, created, r.updated if r.updated is not None else created,
             int(bool(r.deleted))))
        return int(cur.lastrowid)

    def _update_entry(self, entry_id: int, r: Record, stored_updated: float) -> bool:
        if r.updated is None or r.updated <= stored_updated:
            return False  # ours is as new or newer: keep our fields, still take missing fingerprints
        self._conn.execute(
            "UPDATE entries SET media_type = ?, source = ?, external_id = ?, labels = ?, classification = ?,"
            " media_uri = COALESCE(?, media_uri), updated = ?, deleted = ? WHERE id = ?",
            (r.media_type, r.source, r.external_id, _labels_json(r.labels), r.classification, r.media_uri,
             r.updated, int(bool(r.deleted)), entry_id))
        return True

    def _fingerprint_keys(self, entry_id: int) -> set:
        return {tuple(row) for row in self._conn.execute(
            "SELECT format, value, data FROM fingerprints WHERE entry_id = ?", (entry_id,))}

    def _insert_fingerprint(self, entry_id: int, fp: Fingerprint, index_rows: List[Tuple]) -> List[Tuple[int, bytes]]:
        cur = self._conn.execute(
            "INSERT INTO fingerprints (entry_id, format, value, quality, algorithm_version, params, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (entry_id, fp.format, fp.value, fp.quality, fp.algorithm_version, json.dumps(fp.params, sort_keys=True),
             fp.data))
        fp_id = int(cur.lastrowid)
        if fp.format == "tmk_pdqf" and fp.data is not None:
            self._conn.execute("INSERT INTO tmk_rows (fingerprint_id, entry_id, average) VALUES (?, ?, ?)",
                               (fp_id, entry_id, _tmk_average(fp.data)))
        out = []
        for bits, quality, frame, timestamp in index_rows:
            cur = self._conn.execute(
                "INSERT INTO pdq_rows (fingerprint_id, entry_id, bits, quality, frame_number, timestamp)"
                " VALUES (?, ?, ?, ?, ?, ?)", (fp_id, entry_id, bits, quality, frame, timestamp))
            out.append((int(cur.lastrowid), bits))
        return out

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

    # ----- matching ------------------------------------------------------------------

    def match(self, item: Item, *, max_distance: Optional[int] = None, min_quality: Optional[int] = None,
              dihedral: bool = False, trim_borders: bool = False) -> Matches:
        """Entries that match an image, a video or a hash, best first.

        Images and PDQ hashes match image entries within max_distance, and video entries one of
        whose frames is that close (with the timestamps that matched). Videos match in every
        format the database holds: vPDQ as the reference does (percent of unique good-quality
        frames matched), TMK+PDQF at level 1 then level 2, and the file MD5 exactly; one Match
        per entry and format. trim_borders=True also looks up the image with its uniform borders
        (letterbox, pillarbox, frame) cut off, and keeps the closer of the two.
        """
        if max_distance is not None:
            _radius(max_distance)  # a bad threshold fails before the media is hashed
        return self.match_query(query_of(item, dihedral, trim_borders), max_distance=max_distance,
                                min_quality=min_quality)

    def match_query(self, query: Query, *, max_distance: Optional[int] = None,
                    min_quality: Optional[int] = None) -> Matches:
        """Entries that match hashes already computed (an ``ingest.Query``), best first."""
        radius = self.max_distance if max_distance is None else _radius(max_distance)
        floor = self.min_quality if min_quality is None else int(min_quality)
        return self._match_query(query, radius, floor)

    def match_hash(self, fmt: str, value: Any, *, max_distance: Optional[int] = None,
                   min_quality: Optional[int] = None) -> Matches:
        """Match a hash given in any format by name (``pdq``, ``vpdq``, ``tmk_pdqf``, ``video_md5`` ...)."""
        from . import formats

        codec = formats.get(fmt)
        if not codec.matchable:
            raise InvalidInputError(f"format {codec.name!r} is kept but never matched by hashmatch")
        parsed = codec.loads(value) if isinstance(value, (str, bytes, bytearray)) else value
        radius = self.max_distance if max_distance is None else _radius(max_distance)
        floor = self.min_quality if min_quality is None else int(min_quality)
        if codec.name == "pdq":
            query = Query(pdq=[("original", parsed)])
        elif codec.name == "vpdq":
            query = Query(vpdq=parsed, media_type="video")
        elif codec.name == "tmk_pdqf":
            query = Query(tmk=parsed, media_type="video")
        else:
            query = Query(digests={codec.name: parsed}, media_type=codec.media_type)
        return self._match_query(query, radius, floor)

    def _match_query(self, query: Query, radius: int, floor: int) -> Matches:
        if query.pdq:
            return self._match_pdq(query, radius, floor)
        out = Matches(media_type=query.media_type)
        for fmt, value in query.digests.items():
            out.extend(self._match_digest(fmt, value))
        if query.vpdq is not None:
            found = self._match_vpdq(query, radius, floor)
            out.extend(found)
            out.skipped = found.skipped
        if query.tmk is not None:
            out.extend(self._match_tmk(query.tmk))
        return out

    def _match_pdq(self, query: Query, radius: int, floor: int) -> Matches:
        first = query.pdq[0][1]
        if first.quality is not None and first.quality < floor:
            return Matches(query=first, skipped=f"quality {first.quality} < min_quality {floor}")
        codes = np.frombuffer(b"".join(h.bits for _, h in query.pdq), np.uint8).reshape(-1, 32)
        hits = self._search(codes, radius)
        if not hits:
            return Matches(query=first)
        rows = self._rows(list({row for q in hits for row, _ in q}))
        best: Dict[int, Tuple[int, str]] = {}  # entry -> (distance, variant)
        stamps: Dict[int, set] = defaultdict(set)
        for (variant, _), found in zip(query.pdq, hits):
            for row_id, d in found:
                fp_id, entry_id, quality, frame, timestamp = rows[row_id]
                if frame is not None and quality is not None and quality < floor:
                    continue  # a poor frame of a stored video is not matched, as vPDQ does
                if frame is not None:
                    stamps[entry_id].add(timestamp)
                if entry_id not in best or d < best[entry_id][0]:
                    best[entry_id] = (d, variant)
        entries = self._entries(list(best))
        out = [self._make_match(entries[e], d, v, timestamps=tuple(sorted(stamps[e])))
               for e, (d, v) in best.items() if e in entries]
        return Matches(sorted(out, key=lambda m: (m.distance, m.entry_id)), query=first)

    def _match_vpdq(self, query: Query, radius: int, floor: int) -> Matches:
        frames = unique_good_frames(query.vpdq, floor)
        if not frames:
            return Matches(skipped=f"no frame of quality >= {floor}", media_type="video")
        codes = np.frombuffer(bytes.fromhex("".join(f.hex for f in frames)), np.uint8).reshape(-1, 32)
        hits = self._search(codes, radius)
        rows = self._rows(list({row for q in hits for row, _ in q}))
        query_hits: Dict[int, set] = defaultdict(set)  # fingerprint -> query frames matched
        stored_hits: Dict[int, set] = defaultdict(set)  # fingerprint -> stored rows matched
        nearest: Dict[int, int] = {}
        stamps: Dict[int, set] = defaultdict(set)
        owner: Dict[int, int] = {}
        for i, found in enumerate(hits):
            for row_id, d in found:
                fp_id, entry_id, quality, frame, timestamp = rows[row_id]
                if quality is not None and quality < floor:
                    continue
                owner[fp_id] = entry_id
                query_hits[fp_id].add(i)
                stored_hits[fp_id].add(row_id)
                nearest[fp_id] = min(d, nearest.get(fp_id, 257))
                # Video entries: when in the stored video; image entries: when in the query.
                stamps[fp_id].add(timestamp if frame is not None else frames[i].timestamp)
        denominators = self._good_row_counts(list(owner), floor)
        entries = self._entries(list(set(owner.values())))
        best: Dict[int, Match] = {}
        for fp_id, entry_id in owner.items():
            if entry_id not in entries:
                continue
            entry = entries[entry_id]
            q_pct = 100.0 * len(query_hits[fp_id]) / len(frames)
            c_pct = 100.0 * len(stored_hits[fp_id]) / max(1, denominators.get(fp_id, 0))
            if entry["media_type"] == "video" and not (q_pct >= self.vpdq_query_percent
                                                       and c_pct >= self.vpdq_compared_percent):
                continue
            m = self._make_match(entry, nearest[fp_id], "original", q_pct, c_pct, tuple(sorted(stamps[fp_id])))
            if entry_id not in best or (m.query_match_percent or 0) > (best[entry_id].query_match_percent or 0):
                best[entry_id] = m
        ranked = sorted(best.values(), key=lambda m: (-(m.query_match_percent or 0), m.distance, m.entry_id))
        return Matches(ranked, media_type="video")

    def _match_digest(self, fmt: str, value: str) -> List[Match]:
        # The repeated IN term lets SQLite use the partial index on digests.
        rows = self._conn.execute("SELECT DISTINCT entry_id FROM fingerprints WHERE format = ? AND value = ?"
                                  f" AND format IN {_DIGESTS_SQL}", (fmt, value)).fetchall()
        entries = self._entries([r[0] for r in rows])
        return [replace(self._make_match(entries[e], 0, "original"), format=fmt) for e in sorted(entries)]

    def _match_tmk(self, tmk: Any) -> List[Match]:
        from .formats import loads

        index = self._tmk_index()
        fp_ids, cosines = index.range_search(tmk.pure_average, self.tmk_level1)
        if not len(fp_ids):
            return []
        marks = ",".join("?" * len(fp_ids))
        blobs = dict(((fid, (eid, data)) for fid, eid, data in self._conn.execute(
            f"SELECT id, entry_id, data FROM fingerprints WHERE id IN ({marks})", fp_ids.tolist())))
        entries = self._entries(list({eid for eid, _ in blobs.values()}))
        best: Dict[int, Match] = {}
        for fid, level1 in zip(fp_ids.tolist(), cosines.tolist()):
            eid, data = blobs.get(fid, (None, None))
            if eid not in entries:
                continue
            stored = loads("tmk_pdqf", data)
            level2 = tmk.level2(stored)
            if level2 < self.tmk_level2:
                continue
            m = replace(self._make_match(entries[eid], None, "original"), format="tmk_pdqf", level1=float(level1),
                        level2=float(level2))
            if eid not in best or level2 > (best[eid].level2 or 0):
                best[eid] = m
        return sorted(best.values(), key=lambda m: (-(m.level2 or 0), m.entry_id))

    def _tmk_index(self) -> Any:
        from .tmk_index import TMKIndex

        self._refresh_if_changed()
        with self._lock.write():
            if self._tmk is None or self._tmk_generation != self._generation:
                index = TMKIndex()
                rows = self._conn.execute(
                    "SELECT t.fingerprint_id, t.average FROM tmk_rows t JOIN entries e ON e.id = t.entry_id"
                    " WHERE e.deleted = 0 ORDER BY t.fingerprint_id").fetchall()
                if rows:
                    index.add(np.frombuffer(b"".join(a for _, a in rows), np.float32).reshape(len(rows), -1),
                              np.array([i for i, _ in rows], np.int64))
                self._tmk, self._tmk_generation = index, self._generation
            return self._tmk

    def _make_match(self, entry: Dict[str, Any], distance: int, variant: str, q_pct: Optional[float] = None,
                    c_pct: Optional[float] = None, timestamps: Tuple[float, ...] = ()) -> Match:
        fmt = "pdq" if entry["media_type"] == "image" else "vpdq"
        return Match(entry["id"], distance, fmt, entry["source"], entry["external_id"], tuple(entry["labels"]),
                     entry["classification"], entry["media_type"], variant, q_pct, c_pct, timestamps,
                     uid=entry["uid"])

    def _search(self, codes: np.ndarray, radius: int) -> List[List[Tuple[int, int]]]:
        """(row id, distance) hits per query code, against the current rows."""
        self._refresh_if_changed()
        with self._lock.read():
            if self._index is None or len(self._index) == 0:
                return [[] for _ in range(len(codes))]
            lims, distances, row_ids = self._index.range_search(codes, radius=radius)
        return [list(zip(row_ids[lims[q]:lims[q + 1]].tolist(), distances[lims[q]:lims[q + 1]].tolist()))
                for q in range(len(codes))]

    def _rows(self, row_ids: List[int]) -> Dict[int, Tuple]:
        out: Dict[int, Tuple] = {}
        for chunk in _chunks(row_ids):
            marks = ",".join("?" * len(chunk))
            for r in self._conn.execute(
                    "SELECT id, fingerprint_id, entry_id, quality, frame_number, timestamp"
                    f" FROM pdq_rows WHERE id IN ({marks})",
                    chunk):
                out[r[0]] = r[1:]
        return out

    def _entries(self, entry_ids: List[int]) -> Dict[int, Dict[str, Any]]:
        """Live entries by id (tombstones left out)."""
        out = {}
        for chunk in _chunks(entry_ids):
            marks = ",".join("?" * len(chunk))
            for row in self._conn.execute(
                    "SELECT id, media_type, source, external_id, labels, classification, uid FROM entries"
                    f" WHERE deleted = 0 AND id IN ({marks})", chunk):
                out[row[0]] = {"id": row[0], "media_type": row[1], "source": row[2], "external_id": row[3],
                               "labels": json.loads(row[4]), "classification": row[5], "uid": row[6]}
        return out

    def _good_row_counts(self, fp_ids: List[int], floor: int) -> Dict[int, int]:
        out: Dict[int, int] = {}
        for chunk in _chunks(fp_ids):
            marks = ",".join("?" * len(chunk))
            out.update(self._conn.execute(
                f"SELECT fingerprint_id, COUNT(*) FROM pdq_rows WHERE fingerprint_id IN ({marks})"
                " AND (quality IS NULL OR quality >= ?) GROUP BY fingerprint_id", [*chunk, floor]).fetchall())
        return out

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


def _radius(value: Any) -> int:
    r = int(value)
    if not 0 <= r <= 256:
        raise InvalidInputError(f"max_distance must be in 0..256, got {value}")
    return r


def _chunks(items: List[int], size: int = 900) -> Iterator[List[int]]:
    # SQLite limits the number of bound parameters per statement.
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _new_uid() -> str:
    """32 hex characters: nanoseconds then 64 random bits, so new uids append to the uid B-tree
    (random uids made each insert a random B-tree write, slowing ten-million-entry imports)."""
    return f"{time.time_ns():016x}{os.urandom(8).hex()}"


def _tmk_average(data: bytes) -> bytes:
    """The unit-length pure average of a .tmk, as stored for level-1 search."""
    from .formats import loads
    from .tmk_index import normalized

    return normalized(loads("tmk_pdqf", data).pure_average).tobytes()


def _media_uri(item: Any) -> Optional[str]:
    if isinstance(item, (str, os.PathLike)) and os.path.isfile(item):
        return os.path.abspath(item)
    return None


def _labels_json(labels: Sequence[str]) -> str:
    return json.dumps(sorted(set(_check_labels(labels)))) if labels else "[]"


def _params_json(params: Dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True) if params else "{}"


def _check_labels(labels: Sequence[str]) -> List[str]:
    if isinstance(labels, str):
        return [labels]
    out = list(labels)
    if not all(isinstance(x, str) for x in out):
        raise InputTypeError(f"labels must be strings, got {out!r}")
    return out


def _index_rows(fp: Fingerprint) -> List[Tuple[bytes, Optional[int], Optional[int], Optional[float]]]:
    """The PDQ rows a fingerprint contributes to the index: (bits, quality, frame, timestamp)."""
    if fp.format == "pdq":
        return [(bytes.fromhex(fp.value), fp.quality, None, None)]
    if fp.format == "vpdq":
        seen, rows = set(), []
        for f in vpdq_loads(fp.value, source="vpdq fingerprint"):
            if f.hex not in seen:  # unique frame hashes, as the reference matches them
                seen.add(f.hex)
                rows.append((bytes.fromhex(f.hex), f.quality, f.frame_number, f.timestamp))
        return rows
    return []


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
