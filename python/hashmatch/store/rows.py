"""Records to table rows: ids, the INSERT statements run in batches, and each fingerprint's index rows."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .. import signals
from ..errors import HashFormatError, InputTypeError
from ..index import CODE_BYTES
from .backends import Backend
from .records import Fingerprint, Record
from .schema import INSERT_CODE_ROW, INSERT_ENTRY, INSERT_FINGERPRINT, INSERT_VECTOR_ROW


class IndexRows(NamedTuple):
    """What one fingerprint adds to the indexes: Hamming code rows and at most one vector, with their spaces."""

    space: str = ""
    codes: Tuple[signals.Code, ...] = ()
    vector: Optional[bytes] = None


def index_rows(fp: Fingerprint) -> IndexRows:
    """The rows a fingerprint contributes to its signal's index (none for exact and opaque signals)."""
    signal = signals.get(fp.format)
    spec = signal.index
    if spec is None or spec.kind == "exact" or not signal.matchable:
        return IndexRows()
    try:
        if spec.kind == "hamming":
            codes = signal.stored_codes(fp.value, fp.data)
            if spec.bits != CODE_BYTES * 8 or any(len(c.bits) != CODE_BYTES for c in codes):
                codes = [_padded(c, spec.bits) for c in codes]
            return IndexRows(spec.space, tuple(codes))
        value = signal.from_stored(fp.value, fp.data)
    except (HashFormatError, ValueError) as e:
        raise HashFormatError(f"{fp.format} fingerprint: {e}") from None
    vector = np.asarray(signal.index_vector(value), np.float32).reshape(-1)
    if vector.shape[0] != spec.dim:
        raise HashFormatError(f"{fp.format} vector has {vector.shape[0]} values, its index holds {spec.dim}")
    return IndexRows(spec.space, (), vector.tobytes())


def _padded(code: signals.Code, bits: int) -> signals.Code:
    # Every space is searched by the 256-bit core: shorter codes are zero-padded, which leaves
    # every distance as it was.
    if len(code.bits) != bits // 8:
        raise HashFormatError(f"a code of {len(code.bits)} bytes in a {bits}-bit space")
    if len(code.bits) == CODE_BYTES:
        return code
    return code._replace(bits=code.bits + bytes(CODE_BYTES - len(code.bits)))


class Inserts:
    """New rows for one write transaction, with ids assigned here and written with executemany.

    Assigning ids is safe because the write transaction holds the single-writer lock (see
    store.backends): no other writer can take them. Rows go in batches (executemany on SQLite,
    COPY on PostgreSQL), far faster than one by one.
    """

    def __init__(self, db: Backend, bank_id: Callable[[Record], int]) -> None:
        self.db = db
        self.bank_id = bank_id

        def next_id(table: str, column: str = "id") -> int:
            return int(db.execute(f"SELECT COALESCE(MAX({column}), 0) + 1 FROM {table}").fetchone()[0])

        self.entry_id, self.fp_id, self.row_id = next_id("entries"), next_id("fingerprints"), next_id("code_rows")
        self.now = time.time()
        self.entries: List[Tuple] = []
        self.fingerprints: List[Tuple] = []
        self.codes: List[Tuple] = []
        self.vectors: List[Tuple] = []
        self.searchable: Dict[str, List[Tuple[int, bytes]]] = {}  # space -> (code row id, bits) for the index

    def entry(self, r: Record, metadata: Optional[str] = None) -> int:
        """A new entry for r (`metadata`: r's metadata as metadata_json gave it, when already made); its id."""
        entry_id, self.entry_id = self.entry_id, self.entry_id + 1
        created = r.created if r.created is not None else self.now
        self.entries.append((entry_id, r.uid or new_uid(), r.media_type, r.source, r.external_id,
                             labels_json(r.labels), r.classification, r.media_uri, created,
                             r.updated if r.updated is not None else created, int(bool(r.deleted)),
                             self.bank_id(r), r.content_uri, r.notes,
                             metadata_json(r.metadata) if metadata is None else metadata,
                             r.disabled_until))
        return entry_id

    def fingerprint(self, entry_id: int, fp: Fingerprint, rows: IndexRows, searchable: bool) -> None:
        """A new fingerprint of an entry, with its index rows (searched unless the entry is a tombstone)."""
        fp_id, self.fp_id = self.fp_id, self.fp_id + 1
        self.fingerprints.append((fp_id, entry_id, fp.format, fp.value, fp.quality, fp.algorithm_version,
                                  params_json(fp.params), fp.data))
        if rows.vector is not None:
            self.vectors.append((fp_id, entry_id, rows.vector, rows.space))
        for bits, quality, frame, timestamp in rows.codes:
            self.codes.append((self.row_id, fp_id, entry_id, bits, quality, frame, timestamp, rows.space))
            if searchable:
                self.searchable.setdefault(rows.space, []).append((self.row_id, bits))
            self.row_id += 1

    def write_entries(self) -> None:
        """Write the entries gathered so far (before rows that refer to them)."""
        if self.entries:
            self.db.insert_rows(*INSERT_ENTRY, self.entries)
            self.entries.clear()

    def write(self) -> None:
        """Write the rows gathered since the last write."""
        for (table, columns), rows in ((INSERT_ENTRY, self.entries), (INSERT_FINGERPRINT, self.fingerprints),
                                       (INSERT_CODE_ROW, self.codes), (INSERT_VECTOR_ROW, self.vectors)):
            if rows:
                self.db.insert_rows(table, columns, rows)
                rows.clear()


def new_uid() -> str:
    """32 hex characters: nanoseconds then 64 random bits, so new uids append to the uid B-tree
    (random uids made each insert a random B-tree write, slowing ten-million-entry imports)."""
    return f"{time.time_ns():016x}{os.urandom(8).hex()}"


def labels_json(labels: Sequence[str]) -> str:
    """Labels as stored: a sorted JSON list without repeats."""
    return json.dumps(sorted(set(check_labels(labels)))) if labels else "[]"


def metadata_json(metadata: Optional[Dict[str, Any]]) -> str:
    """Entry or bank metadata as stored: JSON with sorted keys; InputTypeError if it is not a JSON object."""
    if not metadata:  # most entries: no JSON encoder call per row of a bulk import
        if metadata is None or isinstance(metadata, dict):
            return "{}"
    if not isinstance(metadata, dict):
        raise InputTypeError(f"metadata must be a dict (a JSON object), not {type(metadata).__name__}")
    try:
        return json.dumps(metadata, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InputTypeError(f"metadata must be JSON-serialisable: {e}") from None


def params_json(params: Dict[str, Any]) -> str:
    """Fingerprint parameters as stored: JSON with sorted keys."""
    return json.dumps(params, sort_keys=True) if params else "{}"


def check_labels(labels: Sequence[str]) -> List[str]:
    """Labels as a list of strings (one string is one label); InputTypeError otherwise."""
    if isinstance(labels, str):
        return [labels]
    out = list(labels)
    if not all(isinstance(x, str) for x in out):
        raise InputTypeError(f"labels must be strings, got {out!r}")
    return out
