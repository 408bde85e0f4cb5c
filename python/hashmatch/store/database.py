"""Store: the hash database, in one SQLite file or a PostgreSQL database. Hashes in, matches out.

The database is the source of truth; the indexes over its rows are derived (store.indexes) and
kept current from the change log. Every write is one transaction, so a process killed mid-write
leaves the previous consistent state. Opening never creates a database unless asked
(``create=True``): a reader pointed at a missing one gets an error, never an empty answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import signals
from ..config import (PDQ_MIN_QUALITY, TMK_LEVEL1_THRESHOLD, TMK_LEVEL2_THRESHOLD, VPDQ_COMPARED_MATCH_PERCENT,
                      VPDQ_QUERY_MATCH_PERCENT)
from ..errors import InvalidInputError
from . import banks as bank_rows
from .backends import Backend, is_url, open_backend
from .indexes import DerivedIndexes
from .matching import Matcher, check_radius
from .records import Bank, Fingerprint, Matches, Query, Record
from .rows import Inserts, check_labels, index_rows, labels_json, metadata_json
from .schema import DEFAULT_BANK, ENTRY_COLUMNS, SCHEMA, SCHEMA_VERSION, UPGRADES, chunks, statements

PathLike = Union[str, "os.PathLike[str]"]

#: disabled_until for "until enabled again": the last second of the year 9999.
FOREVER = 253402300799.0


def _keys(r: Record) -> set:
    """What identifies the stored entry a record merges into: its uid, else its (source, external_id)."""
    keys = {("uid", r.uid)} if r.uid else set()
    if r.source is not None and r.external_id is not None:
        keys.add(("key", r.source, r.external_id))
    return keys


class Store:
    """A hash database: banks of entries, their fingerprints, and matching against them."""

    def __init__(self, path: PathLike, *, create: bool = True, max_distance: Optional[int] = None,
                 min_quality: int = PDQ_MIN_QUALITY, vpdq_query_percent: float = VPDQ_QUERY_MATCH_PERCENT,
                 vpdq_compared_percent: float = VPDQ_COMPARED_MATCH_PERCENT,
                 tmk_level1: float = TMK_LEVEL1_THRESHOLD, tmk_level2: float = TMK_LEVEL2_THRESHOLD,
                 read_only: bool = False, index_dir: Optional[PathLike] = None) -> None:
        self.path: Union[Path, str] = str(path) if is_url(path) else Path(path)
        self.read_only = bool(read_only)
        self.max_distance = None if max_distance is None else check_radius(max_distance)
        self.min_quality = int(min_quality)
        self.vpdq_query_percent = float(vpdq_query_percent)
        self.vpdq_compared_percent = float(vpdq_compared_percent)
        self.tmk_level1, self.tmk_level2 = float(tmk_level1), float(tmk_level2)
        self.sql: Optional[Backend] = open_backend(path, create=create, read_only=self.read_only)
        try:
            self._prepare()
        except BaseException:
            self.sql.close()
            raise
        self.indexes = DerivedIndexes(lambda: self.sql, self._index_base(index_dir), int(self._meta("instance")))
        self.matcher = Matcher(lambda: self.sql, self.indexes)
        with self.indexes.lock.write():
            self.indexes.refresh_locked()

    # ----- opening ---------------------------------------------------------------------
    def _prepare(self) -> None:
        db = self.sql
        if self.read_only:
            version = int(self._meta("schema_version")) if db.table_exists("meta") else 0
            if version != SCHEMA_VERSION:
                raise InvalidInputError(f"{db.where}: database schema {version}, this hashmatch reads "
                                        f"{SCHEMA_VERSION}" + ("; open it once without read_only to upgrade it"
                                                               if 0 < version < SCHEMA_VERSION else ""))
            return
        with db.write():
            found = db.table_exists("meta")
            version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() if found else None
            if version is not None:
                v = int(version[0])
                if v > SCHEMA_VERSION:
                    raise InvalidInputError(f"{db.where}: database schema {v}, newer than this hashmatch's "
                                            f"{SCHEMA_VERSION}: upgrade hashmatch")
                for target in range(v + 1, SCHEMA_VERSION + 1):  # an older release's database, upgraded here
                    for statement in statements(UPGRADES[target]):
                        db.execute(statement)
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
            for statement in db.ddl(SCHEMA):
                db.execute(statement)
            db.execute("INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING", (str(SCHEMA_VERSION),))
            # A random id per database, so that an index file left behind by a deleted database of
            # the same name is never mistaken for this one's at the same generation.
            db.execute("INSERT INTO meta VALUES ('instance', ?) ON CONFLICT DO NOTHING", (str(secrets.randbits(30)),))

    def _index_base(self, index_dir: Optional[PathLike]) -> Path:
        if isinstance(self.path, Path):
            return self.path if index_dir is None else Path(index_dir) / self.path.name
        # A server database: the saved index is a per-machine cache, named for the database.
        folder = Path(index_dir or os.environ.get("HASHMATCH_INDEX_DIR")
                      or Path.home() / ".cache" / "hashmatch")
        folder.mkdir(parents=True, exist_ok=True)
        return folder / re.sub(r"[^A-Za-z0-9_.-]+", "_", self.sql.where.split("://", 1)[-1])

    @property
    def where(self) -> str:
        """The database's path or URL (without a password), for messages."""
        return self.sql.where if self.sql is not None else str(self.path)

    # ----- banks -----------------------------------------------------------------------
    def banks(self) -> List[Bank]:
        """Every bank, by name, with its count of live entries."""
        return bank_rows.list_banks(self.sql)

    def bank(self, name: str) -> Bank:
        """The bank of that name (KeyError if there is none)."""
        found = bank_rows.find_bank(self.sql, name)
        if found is None:
            raise KeyError(f"no bank named {name!r} in {self.where}")
        return found

    def create_bank(self, name: str, *, kind: str = "match", enabled: bool = True, enabled_ratio: float = 1.0,
                    thresholds: Optional[Dict[str, Dict[str, float]]] = None, notes: Optional[str] = None,
                    metadata: Optional[Dict[str, Any]] = None, seed: Optional[int] = None) -> Bank:
        """A new bank; kind 'allow' makes its matches suppress a query's others (known false positives)."""
        with self._write("bank"):
            bank_rows.insert_bank(self.sql, name, kind=kind, enabled=enabled, enabled_ratio=enabled_ratio,
                                  thresholds=thresholds, notes=notes, metadata=metadata, seed=seed)
        return self.bank(name)

    def update_bank(self, bank: str, /, **fields: Any) -> Bank:
        """Change a bank: name (a rename), kind, enabled, enabled_ratio, thresholds, notes, metadata, seed."""
        with self._write("bank"):
            bank_rows.update_bank(self.sql, bank, fields)
        return self.bank(fields.get("name", bank))

    def rename_bank(self, name: str, new_name: str) -> Bank:
        """Rename a bank; its entries and settings stay."""
        return self.update_bank(name, name=new_name)

    def delete_bank(self, name: str, *, with_entries: bool = False) -> int:
        """Delete an empty bank, or (with_entries=True) tombstone its entries first; returns entries removed."""
        bank = self.bank(name)
        ids = [r[0] for r in self.sql.execute("SELECT id FROM entries WHERE bank_id = ? AND deleted = 0",
                                              (bank.id,)).fetchall()]
        if ids and not with_entries:
            raise InvalidInputError(f"bank {name!r} holds {len(ids)} entries; pass with_entries=True "
                                    "(--with-entries) to remove them with it")
        removed = self.remove(ids) if ids else 0
        with self._write("bank"):
            if self.sql.execute("SELECT 1 FROM entries WHERE bank_id = ? LIMIT 1", (bank.id,)).fetchone():
                # Tombstones keep their bank (retractions travel with exports): park them in a renamed bank.
                self.sql.execute("UPDATE banks SET name = ?, enabled = 0, updated = ? WHERE id = ?",
                                 (f"{name} (deleted {int(time.time())} #{bank.id})", time.time(), bank.id))
            else:
                self.sql.execute("DELETE FROM banks WHERE id = ?", (bank.id,))
        return removed

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
            metadata_json(r.metadata)
        ids: List[int] = []
        counts = {"added": 0, "updated": 0, "unchanged": 0}
        tombstones: List[Tuple[int, str]] = []  # (entry, 'remove' or 'restore') from merged records
        with self.indexes.lock.write():
            with self._transaction():
                bank_id = self._bank_ids()
                inserts = Inserts(self.sql, bank_id)
                existing = self._find_entries(records) if merge else {}
                pending: set = set()  # keys of the entries this transaction added or changed
                for i, (r, fp_rows) in enumerate(zip(records, rows)):
                    found = None
                    if merge:
                        keys = _keys(r)
                        if keys & pending:  # merges into one this transaction touched: write, look it up again
                            inserts.write()
                            found = self._find_entry(r)
                        else:
                            found = existing.get(i)
                        pending |= keys
                    if found is None:
                        entry_id = inserts.entry(r)
                        counts["added"] += 1
                        changed, deleted = True, bool(r.deleted)
                    else:
                        entry_id, was_deleted, updated = found
                        changed = self._update_entry(entry_id, r, updated, bank_id)
                        deleted = bool(r.deleted) if changed else bool(was_deleted)
                        if changed and bool(was_deleted) != bool(r.deleted):
                            tombstones.append((entry_id, "remove" if r.deleted else "restore"))
                    ids.append(entry_id)
                    have = self._fingerprint_keys(entry_id) if found is not None else set()
                    for fp, fp_index_rows in zip(r.fingerprints, fp_rows):
                        if (fp.format, fp.value, fp.data) in have:
                            continue
                        changed = True
                        inserts.fingerprint(entry_id, fp, fp_index_rows, searchable=not deleted)
                    if found is not None:
                        counts["updated" if changed else "unchanged"] += 1
                inserts.write()
                written = 0
                if counts["added"] or counts["updated"]:
                    written = self._log([("add", None)] + [(op, e) for e, op in tombstones])
            if written:
                if tombstones:  # a tombstone came or went: the change log says which rows
                    self.indexes.refresh_locked()
                else:
                    self.indexes.apply_locked(inserts.searchable, [], written)
        return ids, counts

    def sync_records(self, records: Sequence[Record], *, then: Optional[Callable[[Backend], None]] = None
                     ) -> Dict[str, int]:
        """Make the entries keyed by each record's (source, external_id) equal to it, in one transaction.

        A live exchange's page: a new key is added, a changed one replaced (fields and every
        fingerprint: its old fingerprints move to a hidden tombstone so every index drops them
        through the change log), a ``deleted`` record tombstones its entry; an unchanged one is
        left alone, so a repeated page changes nothing. The last record of a key in the batch
        wins. ``then(backend)`` runs inside the same transaction before it commits (an
        exchange's checkpoint), so the page and its checkpoint land together or not at all.
        Returns counts of entries added, updated, deleted and unchanged.
        """
        by_key: Dict[Tuple[str, str], Tuple[Record, str]] = {}
        for r in records:
            if r.source is None or r.external_id is None:
                raise InvalidInputError("sync_records needs every record's source and external_id (its key)")
            check_labels(r.labels)
            by_key[(r.source, r.external_id)] = (r, metadata_json(r.metadata))
        batch = [r for r, _ in by_key.values()]
        texts = [m for _, m in by_key.values()]
        rows = [None if r.deleted else [index_rows(fp) for fp in r.fingerprints] for r in batch]
        counts = {"added": 0, "updated": 0, "deleted": 0, "unchanged": 0}
        with self.indexes.lock.write():
            with self._transaction():
                bank_id = self._bank_ids()
                existing = self._find_entries(batch)
                stored = self._stored_state([e[0] for e in existing.values()])
                inserts = Inserts(self.sql, bank_id)
                ops: List[Tuple[str, Optional[int]]] = []
                moves: List[Tuple[int, int]] = []  # (entry, tombstone its old fingerprints move to)
                for i, (r, fp_rows, meta) in enumerate(zip(batch, rows, texts)):
                    found = existing.get(i)
                    if found is None:
                        if r.deleted:  # a deletion of an entry never held: nothing to keep
                            counts["unchanged"] += 1
                            continue
                        entry_id = inserts.entry(r, meta)
                        for fp, ir in zip(r.fingerprints, fp_rows):
                            inserts.fingerprint(entry_id, fp, ir, searchable=True)
                        counts["added"] += 1
                        continue
                    entry_id, was_deleted = found[0], bool(found[1])
                    fields, fps = stored[entry_id]
                    now = r.updated if r.updated is not None else inserts.now
                    if r.deleted:
                        if was_deleted:
                            counts["unchanged"] += 1
                        else:
                            self.sql.execute("UPDATE entries SET deleted = 1, updated = ? WHERE id = ?", (now, entry_id))
                            ops.append(("remove", entry_id))
                            counts["deleted"] += 1
                        continue
                    want = (r.media_type, r.classification, labels_json(r.labels), r.content_uri, r.notes, meta,
                            bank_id(r))
                    new_fps = sorted((fp.format, fp.value, fp.data or b"") for fp in r.fingerprints)
                    if want == fields and new_fps == fps and not was_deleted:
                        counts["unchanged"] += 1
                        continue
                    if new_fps != fps:
                        tomb = inserts.entry(Record(r.media_type, [], bank=r.bank, deleted=True, created=now,
                                                    updated=now, metadata={"superseded": entry_id}))
                        moves.append((entry_id, tomb))
                        ops.append(("remove", tomb))
                        for fp, ir in zip(r.fingerprints, fp_rows):
                            inserts.fingerprint(entry_id, fp, ir, searchable=not was_deleted)
                    self.sql.execute(
                        "UPDATE entries SET media_type = ?, classification = ?, labels = ?, content_uri = ?, notes = ?,"
                        " metadata = ?, bank_id = ?, deleted = 0, updated = ? WHERE id = ?", (*want, now, entry_id))
                    ops.append(("restore" if was_deleted else "entry", entry_id))
                    counts["updated"] += 1
                if moves:  # the tombstones first (foreign keys), then their fingerprints before the new ones
                    inserts.write_entries()
                    for table in ("code_rows", "vector_rows", "fingerprints"):
                        self.sql.executemany(f"UPDATE {table} SET entry_id = ? WHERE entry_id = ?",
                                             [(tomb, entry) for entry, tomb in moves])
                inserts.write()
                written = self._log([("add", None)] + ops) if (counts["added"] or ops) else 0
                if then is not None:
                    then(self.sql)
            if written:
                if ops:
                    self.indexes.refresh_locked()
                else:
                    self.indexes.apply_locked(inserts.searchable, [], written)
        return counts

    def _stored_state(self, entry_ids: List[int]) -> Dict[int, Tuple[Tuple, List[Tuple[str, str, bytes]]]]:
        """What sync_records compares, per entry: its fields and its sorted fingerprints."""
        out: Dict[int, Tuple[Tuple, List[Tuple[str, str, bytes]]]] = {}
        fps: Dict[int, List[Tuple[str, str, bytes]]] = defaultdict(list)
        for chunk in chunks(entry_ids):
            marks = ",".join("?" * len(chunk))
            for eid, *fields in self.sql.execute(
                    "SELECT id, media_type, classification, labels, content_uri, notes, metadata, bank_id"
                    f" FROM entries WHERE id IN ({marks})", chunk):
                out[eid] = (tuple(fields), [])
            for eid, f, v, d in self.sql.execute(
                    f"SELECT entry_id, format, value, data FROM fingerprints WHERE entry_id IN ({marks})", chunk):
                fps[eid].append((f, v, bytes(d) if d is not None else b""))
        return {eid: (fields, sorted(fps[eid])) for eid, (fields, _) in out.items()}

    def _bank_ids(self) -> Callable[[Record], int]:
        """The bank id of each record of one write transaction (its bank made when missing), looked up once per name."""
        ids: Dict[str, int] = {}

        def bank_id(r: Record) -> int:
            name = r.bank or r.source or DEFAULT_BANK
            if name not in ids:
                found = bank_rows.find_bank(self.sql, name)
                ids[name] = found.id if found else bank_rows.insert_bank(self.sql, name)
            return ids[name]
        return bank_id

    def _find_entries(self, records: Sequence[Record]) -> Dict[int, Tuple[int, int, float]]:
        """The stored entry each record merges into, by record position, looked up in batches."""
        by_uid: Dict[str, List[int]] = defaultdict(list)
        by_key: Dict[Optional[str], Dict[str, List[int]]] = defaultdict(lambda: defaultdict(list))
        for i, r in enumerate(records):
            if r.uid:
                by_uid[r.uid].append(i)
            if r.source is not None and r.external_id is not None:
                by_key[r.source][r.external_id].append(i)
        out: Dict[int, Tuple[int, int, float]] = {}
        uids = list(by_uid)
        for chunk in chunks(uids):
            marks = ",".join("?" * len(chunk))
            for eid, deleted, updated, uid in self.sql.execute(
                    f"SELECT id, deleted, updated, uid FROM entries WHERE uid IN ({marks})", chunk):
                for i in by_uid[uid]:
                    out[i] = (eid, deleted, updated)
        for source, wanted in by_key.items():
            keys = list(wanted)
            for chunk in chunks(keys):
                marks = ",".join("?" * len(chunk))
                for eid, deleted, updated, ext in self.sql.execute(
                        "SELECT id, deleted, updated, external_id FROM entries WHERE source = ? AND external_id IN"
                        f" ({marks}) ORDER BY id", [source, *chunk]):
                    for i in wanted[ext]:
                        if i not in out:  # the uid decides first, else the oldest entry with the key
                            out[i] = (eid, deleted, updated)
        return out

    def _find_entry(self, r: Record) -> Optional[Tuple[int, int, float]]:
        if r.uid:
            row = self.sql.execute("SELECT id, deleted, updated FROM entries WHERE uid = ?", (r.uid,)).fetchone()
            if row is not None:
                return row
        if r.source is not None and r.external_id is not None:
            return self.sql.execute("SELECT id, deleted, updated FROM entries WHERE source = ? AND external_id = ?"
                                    " ORDER BY id LIMIT 1", (r.source, r.external_id)).fetchone()
        return None

    def _update_entry(self, entry_id: int, r: Record, stored_updated: float, bank_id: Any) -> bool:
        if r.updated is None or r.updated <= stored_updated:
            return False  # ours is as new or newer: keep our fields, still take missing fingerprints
        self.sql.execute(
            "UPDATE entries SET media_type = ?, source = ?, external_id = ?, labels = ?, classification = ?,"
            " media_uri = COALESCE(?, media_uri), updated = ?, deleted = ?, bank_id = ?,"
            " content_uri = COALESCE(?, content_uri), notes = COALESCE(?, notes), metadata = ?,"
            " disabled_until = ? WHERE id = ?",
            (r.media_type, r.source, r.external_id, labels_json(r.labels), r.classification, r.media_uri,
             r.updated, int(bool(r.deleted)), bank_id(r), r.content_uri, r.notes, metadata_json(r.metadata),
             r.disabled_until, entry_id))
        return True

    def _fingerprint_keys(self, entry_id: int) -> set:
        return {(f, v, bytes(d) if d is not None else None) for f, v, d in self.sql.execute(
            "SELECT format, value, data FROM fingerprints WHERE entry_id = ?", (entry_id,))}

    def remove(self, entry_ids: Union[int, Iterable[int]]) -> int:
        """Mark entries deleted (kept as tombstones) and drop them from matching; returns the count."""
        ids = [int(entry_ids)] if isinstance(entry_ids, (int, np.integer)) else [int(i) for i in entry_ids]
        if not ids:
            return 0
        n = 0
        with self.indexes.lock.write():
            with self._transaction():
                live: List[int] = []
                for chunk in chunks(ids):
                    marks = ",".join("?" * len(chunk))
                    live += [r[0] for r in self.sql.execute(
                        f"SELECT id FROM entries WHERE deleted = 0 AND id IN ({marks})", chunk)]
                for chunk in chunks(live):
                    marks = ",".join("?" * len(chunk))
                    self.sql.execute(f"UPDATE entries SET deleted = 1, updated = ? WHERE id IN ({marks})",
                                     [time.time(), *chunk])
                n = len(live)
                if n:
                    self._log([("remove", e) for e in live])
            if n:
                self.indexes.refresh_locked()
        return n

    def disable(self, entry_ids: Union[int, Iterable[int]], until: Optional[float] = None) -> int:
        """Keep entries out of matching until a Unix time (None: until enable()); returns the count."""
        if until is not None and (isinstance(until, bool) or not isinstance(until, (int, float))):
            raise InvalidInputError(f"until must be a Unix time in seconds or None, got {until!r}")
        return self._set_disabled(entry_ids, FOREVER if until is None else float(until))

    def enable(self, entry_ids: Union[int, Iterable[int]]) -> int:
        """Let disabled entries match again; returns the count."""
        return self._set_disabled(entry_ids, None)

    def _set_disabled(self, entry_ids: Union[int, Iterable[int]], until: Optional[float]) -> int:
        ids = [int(entry_ids)] if isinstance(entry_ids, (int, np.integer)) else [int(i) for i in entry_ids]
        n = 0
        with self._write("entry", ids):
            for chunk in chunks(ids):
                marks = ",".join("?" * len(chunk))
                n += self.sql.execute(f"UPDATE entries SET disabled_until = ?, updated = ? WHERE id IN ({marks})",
                                      [until, time.time(), *chunk]).rowcount
        return n

    def update_entry(self, entry_id: int, **fields: Any) -> Record:
        """Change an entry's notes, metadata, content_uri, labels, classification or bank (by name)."""
        allowed = {"notes", "metadata", "content_uri", "labels", "classification", "bank"}
        unknown = set(fields) - allowed
        if unknown:
            raise InvalidInputError(f"unknown entry field(s) {sorted(unknown)}; known: {sorted(allowed)}")
        self.get(entry_id)  # KeyError for an unknown entry
        values = dict(fields)
        if "metadata" in values:
            values["metadata"] = metadata_json(values["metadata"])
        if "labels" in values:
            values["labels"] = labels_json(values["labels"])
        with self._write("entry", [int(entry_id)]):
            if "bank" in values:
                name = values.pop("bank")
                found = bank_rows.find_bank(self.sql, name)
                values["bank_id"] = found.id if found else bank_rows.insert_bank(self.sql, name)
            if values:
                sets = ", ".join(f"{k} = ?" for k in values)
                self.sql.execute(f"UPDATE entries SET {sets}, updated = ? WHERE id = ?",
                                 [*values.values(), time.time(), int(entry_id)])
        return self.get(entry_id)

    def _log(self, changes: Sequence[Tuple[str, Optional[int]]]) -> int:
        """Append changes to the log, one generation each (inside the write transaction); their count."""
        first = self.indexes.current_generation() + 1
        now = time.time()
        self.sql.insert_rows("changes", ("generation", "op", "entry_id", "at"),
                             [(first + i, op, entry, now) for i, (op, entry) in enumerate(changes)])
        return len(changes)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """The write transaction every write runs in (refused on a read-only store)."""
        if self.read_only:
            raise InvalidInputError(f"{self.where} was opened with read_only=True; open it without read_only "
                                    "to write")
        with self.sql.write():
            yield

    @contextlib.contextmanager
    def _write(self, op: str, entries: Sequence[int] = ()) -> Iterator[None]:
        """A write that changes no index rows (banks, entry fields), logged as one change per entry."""
        with self.indexes.lock.write():
            with self._transaction():
                yield
                self._log([(op, e) for e in entries] if entries else [(op, None)])
            self.indexes.refresh_locked()

    # ----- matching --------------------------------------------------------------------
    def thresholds(self, max_distance: Optional[int] = None, min_quality: Optional[int] = None) -> signals.Thresholds:
        """The thresholds of one lookup: this store's, narrowed by the call's."""
        radius = self.max_distance if max_distance is None else check_radius(max_distance)
        narrow = {k: v for k, v in (("max_distance", max_distance), ("min_quality", min_quality)) if v is not None}
        return signals.Thresholds(radius, self.min_quality if min_quality is None else int(min_quality),
                                  self.vpdq_query_percent, self.vpdq_compared_percent,
                                  {"tmk_pdqf": self.tmk_level1}, {"tmk_pdqf": self.tmk_level2}, narrow)

    def match_query(self, query: Query, *, max_distance: Optional[int] = None, min_quality: Optional[int] = None,
                    banks: Optional[Sequence[str]] = None) -> Matches:
        """Entries that match hashes already computed (a ``store.Query``), best first; only in `banks` if given."""
        return self.matcher.match(query, self.thresholds(max_distance, min_quality), banks=banks)

    def match_hash(self, fmt: str, value: Any, *, max_distance: Optional[int] = None,
                   min_quality: Optional[int] = None, banks: Optional[Sequence[str]] = None) -> Matches:
        """Match a hash given in any format by name (``pdq``, ``vpdq``, ``tmk_pdqf``, ``video_md5`` ...)."""
        signal = signals.get(fmt)
        if not signal.matchable:
            raise InvalidInputError(f"format {signal.name!r} is kept but never matched by hashmatch")
        parsed = signal.loads(value) if isinstance(value, (str, bytes, bytearray)) else value
        media = signal.media_type if signal.media_type in ("image", "video") else "image"
        return self.match_query(Query(media_type=media).add(signal.name, parsed), max_distance=max_distance,
                                min_quality=min_quality, banks=banks)

    # ----- reading ---------------------------------------------------------------------
    def get(self, entry_id: int) -> Record:
        """One entry and its fingerprints (tombstones included, with deleted=True)."""
        found = self.records(entry_ids=[int(entry_id)], include_deleted=True)
        if not found:
            raise KeyError(f"no entry {entry_id} in {self.where}")
        return found[0]

    def records(self, *, entry_ids: Optional[Sequence[int]] = None, include_deleted: bool = True,
                formats: Optional[Sequence[str]] = None, bank: Optional[str] = None) -> List[Record]:
        """Entries as records, by id (all when entry_ids is None); only the named formats, or one bank, if given."""
        return list(self.iter_records(entry_ids=entry_ids, include_deleted=include_deleted, formats=formats,
                                      bank=bank))

    def iter_records(self, *, entry_ids: Optional[Sequence[int]] = None, include_deleted: bool = True,
                     formats: Optional[Sequence[str]] = None, bank: Optional[str] = None,
                     batch: int = 500) -> Iterator[Record]:
        """Entries as records in id order, read in batches so a whole database streams in bounded memory."""
        where: List[str] = [] if include_deleted else ["deleted = 0"]
        fixed: List[Any] = []
        if bank is not None:
            where.append("bank_id = ?")
            fixed.append(self.bank(bank).id)
        names = {b.id: b.name for b in self.banks()}
        ids = list(entry_ids) if entry_ids is not None else None
        last = 0
        while True:
            if ids is not None:
                chunk, ids = ids[:batch], ids[batch:]
                if not chunk:
                    return
                cond = where + [f"id IN ({','.join('?' * len(chunk))})"]
                params: List[Any] = fixed + list(chunk)
            else:
                cond, params = where + ["id > ?"], fixed + [last]
            rows = self.sql.execute(f"SELECT {ENTRY_COLUMNS} FROM entries WHERE {' AND '.join(cond)}"
                                    f" ORDER BY id LIMIT {batch}", params).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            fps: Dict[int, List[Fingerprint]] = defaultdict(list)
            marks = ",".join("?" * len(rows))
            fmt_cond = f" AND format IN ({','.join('?' * len(formats))})" if formats else ""
            for eid, f, v, q, av, p, d in self.sql.execute(
                    "SELECT entry_id, format, value, quality, algorithm_version, params, data FROM fingerprints"
                    f" WHERE entry_id IN ({marks}){fmt_cond} ORDER BY id", [r[0] for r in rows] + list(formats or [])):
                fps[eid].append(Fingerprint(f, v, q, av, json.loads(p), bytes(d) if d is not None else None))
            for (eid, uid, mt, src, ext, labels, cls, created, updated, deleted, uri, bank_id, content_uri, notes,
                 metadata, disabled_until) in rows:
                yield Record(mt, fps[eid], src, ext, json.loads(labels), cls, uid, created, updated, bool(deleted),
                             eid, uri, names.get(bank_id), content_uri, notes, json.loads(metadata), disabled_until)

    def entry_id(self, uid: str) -> int:
        """The local id of the entry with this uid (its identity across databases)."""
        row = self.sql.execute("SELECT id FROM entries WHERE uid = ?", (uid,)).fetchone()
        if row is None:
            raise KeyError(f"no entry with uid {uid!r} in {self.where}")
        return int(row[0])

    def __len__(self) -> int:
        return int(self.sql.execute("SELECT COUNT(*) FROM entries WHERE deleted = 0").fetchone()[0])

    def __iter__(self) -> Iterator[int]:
        return iter([r[0] for r in self.sql.execute("SELECT id FROM entries WHERE deleted = 0 ORDER BY id")])

    def stats(self) -> Dict[str, Any]:
        """Counts of entries, tombstones and fingerprints by format, media type and bank, and the index's state."""
        c = self.sql
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
            "path": self.where,
            "backend": self.sql.name,
            "entries": len(self),
            "deleted": int(c.execute("SELECT COUNT(*) FROM entries WHERE deleted = 1").fetchone()[0]),
            "media_types": by_media,
            "fingerprints": by_format,
            "sources": sources,
            "banks": {b.name: b.entries for b in self.banks()},
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
        if self.sql is None:
            return
        try:
            if self.indexes.dirty and not self.read_only:
                self.save_index()
        finally:
            self.sql.close()
            self.sql = None

    @property
    def closed(self) -> bool:
        """Whether close() has run."""
        return self.sql is None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _meta(self, key: str) -> str:
        row = self.sql.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise InvalidInputError(f"{self.where}: not a hashmatch database (no {key} in its meta table)")
        return row[0]
