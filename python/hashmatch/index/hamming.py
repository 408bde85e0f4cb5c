"""Exact Hamming search over 256-bit codes (PDQ hashes): brute force or multi-index hashing.

The search logic is the native core's (cpp/hamming.cpp, cpp/segment.cpp); this module validates
input, keeps the FAISS-like result layout, and saves and opens the index (saved.py).

An index is a set of immutable segments (none for an index built in memory; those of a saved
file opened by `open`, mapped and searched in place) plus an in-memory delta: the codes added
since (a core HammingIndex) and the segment rows removed since (dead-row bitmaps). An index
opened with merges on folds its delta into new segments in a background thread once it is
large (config.HAMMING_MERGE_*), writes them to a new file published atomically over the old
one, and swaps it in; searches meanwhile use the old mapping and the delta.

Backends. The issue suggested `faiss.IndexBinaryFlat` for small sets. Measured on the
development machine (2 vCPU AMD EPYC, one thread, radius 31, random codes), per query:

    codes    FAISS flat      core brute force   core MIH        FAISS flat   core brute force
             (200 a call)    (200 a call)       (200 a call)    (1 a call)   (1 a call)
    1,000    1.0 us          0.7 us             -               10.6 us      3.3 us
    4,096    3.8 us          2.9 us             1.9 us          12.6 us      5.5 us
    20,000   18.5 us         14.4 us            3.6 us          28.3 us      17.6 us

The core's scan (AVX-512 VPOPCNTQ where the CPU has it) beats FAISS's at every size, and from
4,096 codes its multi-index hashing beats both, so FAISS is not used: small sets use the core's
brute force ("flat") and sets of 4,096 codes or more its multi-index hashing tables ("mih"),
which still fall back to brute force, per search, where probing would cost more (large radii).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from typing import Any, Optional, Tuple, Union

import numpy as np

from .. import _core
from ..config import (HAMMING_MAX_SEGMENTS, HAMMING_MERGE_FRACTION, HAMMING_MERGE_MIN_ROWS, HAMMING_MIH_MIN_ROWS,
                      HAMMING_TAIL_MIN_ROWS, MAX_KNN_RESULTS)
from ..errors import HashFormatError, HashmatchError, InputTypeError, InvalidInputError, \
    ResourceLimitError
from . import saved as fmt

CODE_BYTES = 32
CODE_BITS = 256

# Format 1 (read only): magic, version 1, flags (bit 0: tag present), tag, count; then codes,
# ids (little-endian int64), then a 32-byte BLAKE2b digest of everything before it.
_HEADER = fmt.PREFIX
_DIGEST_BYTES = 32
_log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


def _codes(value: Any, name: str) -> np.ndarray:
    """`value` as a C-contiguous (n, 32) uint8 array; one (32,) row or 32-byte string is n = 1."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if len(raw) % CODE_BYTES:
            raise InvalidInputError(f"{name} as bytes must hold whole 32-byte codes, got {len(raw)} bytes")
        return np.frombuffer(raw, np.uint8).reshape(-1, CODE_BYTES)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (bytes, bytearray, memoryview)) for v in value):
        rows = [bytes(v) for v in value]
        bad = next((len(r) for r in rows if len(r) != CODE_BYTES), None)
        if bad is not None:
            raise InvalidInputError(f"{name}: every code must be 32 bytes, got one of {bad} bytes")
        return np.frombuffer(b"".join(rows), np.uint8).reshape(-1, CODE_BYTES)
    if isinstance(value, str):
        raise InputTypeError(f"{name} must be uint8 codes, not a str; for hex use bytes.fromhex(...)")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and other things numpy cannot make an array of
        raise InputTypeError(f"{name} must be an (n, 32) uint8 array or a list of 32-byte bytes: {exc}") from None
    if arr.dtype != np.uint8:
        if arr.size == 0 and arr.dtype == np.float64:  # np.asarray([]) of an empty list
            arr = arr.astype(np.uint8)
        elif np.issubdtype(arr.dtype, np.integer) and arr.dtype != np.bool_:
            # Lists of ints are byte values too, as long as they are bytes.
            if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 255):
                raise InvalidInputError(f"{name} must hold byte values 0..255 (32 bytes a code), "
                                        f"got values in {int(arr.min())}..{int(arr.max())}")
            arr = arr.astype(np.uint8)
        else:
            raise InputTypeError(f"{name} must be uint8 bytes (32 a code), got dtype {arr.dtype}; "
                                 f"packed PDQ bits are bytes, e.g. PDQ.bits or bytes.fromhex(hex)")
    if arr.ndim == 1 and arr.shape[0] == CODE_BYTES:
        arr = arr.reshape(1, CODE_BYTES)
    elif arr.ndim == 1 and arr.shape[0] == 0:
        arr = arr.reshape(0, CODE_BYTES)
    if arr.ndim != 2 or arr.shape[1] != CODE_BYTES:
        raise InvalidInputError(f"{name} must have shape (n, 32) or (32,), got {arr.shape}")
    return np.ascontiguousarray(arr)


def _ids(value: Any, name: str = "ids") -> np.ndarray:
    """`value` as a 1-D C-contiguous int64 array."""
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise InputTypeError(f"{name} must be a 1-D array of integers: {exc}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise InputTypeError(f"{name} must be integers, got dtype {arr.dtype}; convert with np.asarray(ids, np.int64)")
    if arr.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise InvalidInputError(f"{name} must fit in int64, got {int(arr.max())}")
    return np.ascontiguousarray(arr, dtype=np.int64)


_INT32_MAX = 2 ** 31 - 1


def _int(value: Any, name: str, low: int, high: Optional[int] = _INT32_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputTypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        raise InvalidInputError(f"{name} must be in {low}..{'' if high is None else high}, got {value}")
    return int(value)


def _threads(threads: Optional[int]) -> int:
    # 0 asks the core for one thread per CPU.
    return 0 if threads is None else _int(threads, "threads", 1, 1024)


class HammingIndex:
    """Exact Hamming search over 256-bit codes with unique int64 ids; calls are serialised by a lock."""

    def __init__(self, *, mih_min_rows: Optional[int] = None, tail_min_rows: Optional[int] = None,
                 force_mih: bool = False, substrings: int = 0, portable_kernels: bool = False) -> None:
        """Empty index; the keywords are tuning/testing knobs (defaults are measured, see module doc)."""
        m = _int(substrings, "substrings", 0, CODE_BITS)
        if 0 < m < 8:  # substrings of at most 32 bits
            raise InvalidInputError(f"substrings must be 0 (automatic) or 8..256, got {m}")
        self._knobs = (HAMMING_MIH_MIN_ROWS if mih_min_rows is None else _int(mih_min_rows, "mih_min_rows", 0, 2 ** 62),
                       HAMMING_TAIL_MIN_ROWS if tail_min_rows is None else _int(tail_min_rows, "tail_min_rows", 0,
                                                                                 2 ** 62),
                       m, bool(force_mih), bool(portable_kernels))
        self._core = self._new_core()
        self._lock = threading.Lock()
        self._segs: Any = None  # _core.HammingSegments of the mapped file, None for an in-memory index
        self._file: Optional[fmt.SavedFile] = None
        self._verification: Optional[fmt.Verification] = None
        self._tag: Optional[int] = None  # the tag of the state held (apply_delta's), None when unknown
        self._merges = False
        self._merge_thread: Optional[threading.Thread] = None
        self._since_snapshot: Optional[list] = None  # changes made while a merge runs, replayed on its result
        self._max_id = -1  # largest id ever added (ids only grow in a store); -1: ask the rows

    def _new_core(self):
        return _core.HammingIndex(*self._knobs)

    def __len__(self) -> int:
        """Number of codes held."""
        return len(self._core) + (self._segs.live if self._segs is not None else 0)

    @property
    def backend(self) -> str:
        """What searches use now: "mih" (substring tables; large radii still brute-force) or "flat"."""
        segs = self._segs is not None and self._segs.rows >= self._knobs[0]
        return "mih" if self._core.has_tables or segs else "flat"

    @property
    def segments(self) -> int:
        """Number of mapped segments (0 for an index built in memory)."""
        return 0 if self._segs is None else len(self._segs)

    def _check(self) -> None:
        if self._verification is not None and self._verification.error is not None:
            raise self._verification.error

    def add(self, codes: Any, ids: Any) -> None:
        """Add (n, 32) uint8 codes with unique int64 ids (an id already held is an error)."""
        self.apply_delta(adds=(codes, ids), tag=None)

    def remove(self, ids: Any) -> int:
        """Remove the codes with these ids (unknown ids are ignored); returns how many were removed."""
        return self.apply_delta(removes=ids, tag=None)

    def apply_delta(self, adds: Optional[Tuple[Any, Any]] = None, removes: Any = None, *,
                    tag: Optional[int] = None) -> int:
        """Remove then add ((codes, ids)); the state then carries `tag` (merges save only tagged states).

        Returns how many codes were removed. `tag` is the caller's name for the state reached (a
        store's generation); a call without one leaves the state untagged.
        """
        removed_ids = _ids(removes) if removes is not None else np.zeros(0, np.int64)
        if adds is not None:
            codes_arr, ids_arr = _codes(adds[0], "codes"), _ids(adds[1])
            if len(ids_arr) != len(codes_arr):
                raise InvalidInputError(f"ids must have one id per code: {len(codes_arr)} codes, {len(ids_arr)} ids")
        if tag is not None:
            tag = _int(tag, "tag", -(2 ** 63), 2 ** 63 - 1)
        with self._lock:
            self._check()
            removed = self._remove_locked(removed_ids)
            if adds is not None and len(ids_arr):
                self._add_locked(codes_arr, ids_arr)
            if self._since_snapshot is not None:
                self._since_snapshot.append((removed_ids, None if adds is None else (codes_arr, ids_arr)))
            self._tag = tag
            self._maybe_merge_locked()
        return removed

    def _remove_locked(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        removed = int(self._segs.remove(ids)) if self._segs is not None else 0
        return removed + int(self._core.remove(ids))

    def _add_locked(self, codes: np.ndarray, ids: np.ndarray) -> None:
        # Ids past every id a saved file held cannot be in its segments: a store's ids only grow.
        if self._segs is not None and (self._file is None or int(ids.min()) <= self._file.max_id):
            held = self._segs.contains(ids)
            if held.any():
                raise InvalidInputError(f"ids: id {int(ids[np.argmax(held)])} is already in the index; "
                                        "remove it first to replace a code")
        try:
            self._core.add(codes, ids)
        except ValueError as exc:
            raise InvalidInputError(f"ids: {exc}; remove it first to replace a code") from None
        if self._max_id >= 0 or self._segs is None:
            self._max_id = max(self._max_id, int(ids.max()))

    def range_search(self, queries: Any, radius: int = 31, *,
                     threads: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lims, distances, ids) of codes with distance <= radius, per query sorted by (distance, id)."""
        q = _codes(queries, "queries")
        r = min(_int(radius, "radius", 0, None), CODE_BITS)  # any radius past 256 is 256
        with self._lock:
            self._check()
            if self._segs is not None:
                return self._segs.range_search(q, r, _threads(threads), self._core)
            return self._core.range_search(q, r, _threads(threads))

    def search(self, queries: Any, k: int, *, threads: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(distances, ids), each (nq, k): the k nearest, ties by id; missing slots are -1 / -1."""
        q = _codes(queries, "queries")
        kk = _int(k, "k", 1)
        if len(q) * kk > MAX_KNN_RESULTS:
            raise ResourceLimitError(f"search returns (queries, k) arrays: {len(q):,} x {kk:,} is over "
                                     f"{MAX_KNN_RESULTS:,} results; ask for a smaller k or fewer queries at once")
        with self._lock:
            self._check()
            if self._segs is not None:
                return self._segs.knn(q, kk, _threads(threads), self._core)
            return self._core.knn(q, kk, _threads(threads))

    def _rows_locked(self) -> Tuple[np.ndarray, np.ndarray]:
        codes, ids = self._core.export_rows()
        if self._segs is None:
            return codes, ids
        seg_codes, seg_ids = self._segs.export_rows()
        all_ids = np.concatenate([seg_ids, ids])
        order = np.argsort(all_ids, kind="stable")
        return np.concatenate([seg_codes, codes])[order], all_ids[order]

    def rows(self) -> Tuple[np.ndarray, np.ndarray]:
        """(codes, ids) of every code held, sorted by id."""
        with self._lock:
            self._check()
            return self._rows_locked()

    def ids(self) -> np.ndarray:
        """The ids held, sorted ascending (int64)."""
        return self.rows()[1]

    def max_id(self) -> int:
        """The largest id held, or -1 when empty."""
        with self._lock:
            if self._file is not None and self._file.max_id >= 0:
                # The file's largest id is held unless removed since; the delta is small to list.
                if self._segs.contains(np.array([self._file.max_id], np.int64))[0]:
                    delta = self._core.export_rows()[1]
                    return max(self._file.max_id, int(delta[-1]) if len(delta) else -1)
        ids = self.ids()
        return int(ids[-1]) if len(ids) else -1

    def memory_bytes(self) -> int:
        """Bytes held by the native index's arrays (a mapped file's segments counted whole)."""
        return int(self._core.memory_bytes()) + (int(self._segs.memory_bytes()) if self._segs is not None else 0)

    def verify(self) -> None:
        """Wait for the background check of a mapped file's checksums; IndexCorruptError if it failed."""
        v = self._verification
        if v is not None and v.wait() is not None:
            raise v.error

    def damaged(self) -> bool:
        """Whether the background check has found the mapped file damaged (calls then raise IndexCorruptError)."""
        return self._verification is not None and self._verification.error is not None

    # ----- saving, opening, merging ----------------------------------------------------------
    def save(self, path: PathLike, *, tag: Optional[int] = None) -> None:
        """Write the index to path atomically (format 2: segments, opened by mmap), with an optional int64 tag."""
        if tag is not None:
            tag = _int(tag, "tag", -(2 ** 63), 2 ** 63 - 1)
        with self._lock:
            self._check()
            plan = self._plan_locked(compact=self._segs is None)
        self._write(path, plan, tag)

    def _plan_locked(self, compact: bool):
        """What a file of the current state is made of, copied now (the lock is held)."""
        codes, ids = self._core.export_rows()
        max_id = max(self._file.max_id if self._file is not None else -1, int(ids[-1]) if len(ids) else -1)
        segs = self._segs
        if segs is not None:
            dead = segs.rows - segs.live
            compact = compact or len(segs) + 1 > HAMMING_MAX_SEGMENTS or dead * 8 > max(segs.rows, 1)
        if segs is None or compact:
            return ("compact", None if segs is None else segs.snapshot(), codes, ids, max_id)
        copies = []
        for i, e in enumerate(self._file.entries):
            words = segs.dead_words(i)
            copies.append((self._file.padded(i), e.crc, words if any(words) else b""))
        return ("copy", copies, codes, ids, max_id)

    def _write(self, path: PathLike, plan, tag: Optional[int]) -> None:
        kind, source, codes, ids, max_id = plan
        if kind == "compact":
            if source is not None:  # the live rows of the segments (unlocked: a snapshot) and the delta
                seg_codes, seg_ids = source.export_rows()
                all_ids = np.concatenate([seg_ids, ids])
                order = np.argsort(all_ids, kind="stable")
                codes, ids = np.concatenate([seg_codes, codes])[order], all_ids[order]
                del seg_codes, seg_ids, all_ids, order
            fmt.write_file(path, [], [(codes, ids)], tag, max_id)
        else:
            fmt.write_file(path, source, [(codes, ids)] if len(ids) else [], tag, max_id)

    @staticmethod
    def build(path: PathLike, codes: Any, ids: Any, *, tag: Optional[int] = None, threads: Optional[int] = None) -> None:
        """Write a saved index (one segment) straight from (n, 32) codes and unique ids, without an index in memory."""
        codes_arr, ids_arr = _codes(codes, "codes"), _ids(ids)
        if len(ids_arr) != len(codes_arr):
            raise InvalidInputError(f"ids must have one id per code: {len(codes_arr)} codes, {len(ids_arr)} ids")
        if tag is not None:
            tag = _int(tag, "tag", -(2 ** 63), 2 ** 63 - 1)
        try:
            fmt.write_file(path, [], [(codes_arr, ids_arr)], tag, int(ids_arr.max()) if len(ids_arr) else -1,
                           _threads(threads))
        except ValueError as exc:
            raise InvalidInputError(f"ids: {exc}") from None

    @classmethod
    def open(cls, path: PathLike, *, merges: bool = False, **knobs: Any) -> "HammingIndex":
        """The index saved at path, mapped and searched in place (format 1 is read into memory).

        Checksums are verified in the background (see verify()); with merges=True the delta is
        merged into new segments written over path in the background.
        """
        version, _ = fmt.read_tag(path)
        if version == 1:
            return cls._read(path, expect_tag=None, check_tag=False)
        if version != 2:
            if not os.path.exists(path):
                raise FileNotFoundError(path)
            raise HashFormatError(f"{path}: not a hashmatch Hamming index (or a format this hashmatch does not read)")
        index = cls(**knobs)
        saved = fmt.open_file(path)
        index._segs = fmt.segments_of(saved, force_mih=index._knobs[3], portable_kernels=index._knobs[4])
        index._file, index._tag, index._merges = saved, saved.tag, merges
        index._max_id = saved.max_id
        index._verification = fmt.Verification(saved)
        return index

    @classmethod
    def load(cls, path: PathLike) -> "HammingIndex":
        """open() and verify() at once: a damaged or foreign file raises HashFormatError."""
        index = cls.open(path)
        index.verify()
        return index

    @classmethod
    def open_if_tagged(cls, path: PathLike, tag: int, *, merges: bool = True) -> Optional["HammingIndex"]:
        """The index saved at path if it opens and carries this tag, else None (never raises)."""
        if fmt.read_tag(path)[1] != tag:
            return None
        try:
            return cls.open(path, merges=merges)
        except (OSError, HashmatchError):
            return None

    @classmethod
    def load_if_tagged(cls, path: PathLike, tag: int) -> Optional["HammingIndex"]:
        """open_if_tagged without background merges, verified before it returns (None when damaged)."""
        index = cls.open_if_tagged(path, tag, merges=False)
        if index is not None and index._verification is not None and index._verification.wait() is not None:
            return None
        return index

    @staticmethod
    def saved_tag(path: PathLike) -> Optional[int]:
        """The tag in a saved index's header, without reading the rest (None: no file, untagged, or not an index)."""
        version, tag = fmt.read_tag(path)
        return tag if version in (1, 2) else None

    def _maybe_merge_locked(self) -> None:
        # Only a tagged state is merged: between the calls of one catch-up the state is partial.
        if not self._merges or self._file is None or self._merge_thread is not None or self._tag is None:
            return
        if len(self._core) < max(HAMMING_MERGE_MIN_ROWS, self._segs.rows // HAMMING_MERGE_FRACTION):
            return
        self._start_merge_locked()

    def _start_merge_locked(self) -> threading.Thread:
        plan, tag, path = self._plan_locked(compact=False), self._tag, self._file.path
        self._since_snapshot = []
        thread = threading.Thread(target=self._merge, args=(path, plan, tag), name="hashmatch-index-merge",
                                  daemon=True)
        self._merge_thread = thread
        thread.start()
        return thread

    def merge(self) -> None:
        """Merge the delta into the saved file now (in the background thread) and wait for it."""
        with self._lock:
            if self._file is None:
                raise InvalidInputError("merge() needs an index opened from a file (HammingIndex.open)")
            thread = self._merge_thread or self._start_merge_locked()
        thread.join()

    def _merge(self, path: str, plan, tag: Optional[int]) -> None:
        try:
            self._write(path, plan, tag)
            saved = fmt.open_file(path)
            if saved.tag != tag:  # another process's file replaced ours in between: not our state
                raise HashFormatError(f"{path} was replaced during the merge (tag {saved.tag}, not {tag})")
            segs = fmt.segments_of(saved, force_mih=self._knobs[3], portable_kernels=self._knobs[4])
        except Exception:  # the old file and the delta still answer; the next change retries
            _log.exception("merging the Hamming index into %s failed", path)
            with self._lock:
                self._since_snapshot, self._merge_thread = None, None
            return
        core = self._new_core()
        with self._lock:
            # Replay what changed while the merge ran onto the merged state, then swap it in.
            for removed_ids, adds in self._since_snapshot or []:
                if len(removed_ids):
                    segs.remove(removed_ids)
                    core.remove(removed_ids)
                if adds is not None and len(adds[1]):
                    core.add(*adds)
            self._segs, self._core, self._file = segs, core, saved
            self._max_id = max(self._max_id, saved.max_id)
            self._verification = None  # written by this process just now
            self._since_snapshot, self._merge_thread = None, None

    @classmethod
    def _read(cls, path: PathLike, expect_tag: Optional[int], check_tag: bool) -> Optional["HammingIndex"]:
        with open(path, "rb") as f:
            head = f.read(_HEADER.size)
            if len(head) < _HEADER.size:
                raise HashFormatError(f"{path}: not a hashmatch Hamming index (truncated header)")
            magic, version, flags, tag, count = _HEADER.unpack(head)
            if magic != fmt.MAGIC:
                raise HashFormatError(f"{path}: not a hashmatch Hamming index (bad magic {magic!r})")
            if version != 1:
                raise HashFormatError(f"{path}: Hamming index format version {version}, this hashmatch reads 1 and 2")
            if flags & ~1:
                raise HashFormatError(f"{path}: unknown flags {flags:#x} in Hamming index header")
            file_tag = tag if flags & 1 else None
            if check_tag and file_tag != expect_tag:
                return None
            size = os.fstat(f.fileno()).st_size
            expected = _HEADER.size + count * (CODE_BYTES + 8) + _DIGEST_BYTES
            if size != expected:
                raise HashFormatError(f"{path}: Hamming index is {size} bytes, its header implies {expected}"
                                      " (truncated or damaged)")
            payload = f.read(count * (CODE_BYTES + 8))
            stored = f.read(_DIGEST_BYTES)
        digest = hashlib.blake2b(head, digest_size=_DIGEST_BYTES)
        digest.update(payload)
        if digest.digest() != stored:
            raise HashFormatError(f"{path}: Hamming index checksum mismatch (the file is damaged)")
        codes = np.frombuffer(payload, np.uint8, count * CODE_BYTES).reshape(count, CODE_BYTES)
        ids = np.frombuffer(payload, "<i8", count, offset=count * CODE_BYTES).astype(np.int64)
        index = cls()
        try:
            index.add(codes, ids)
        except InvalidInputError as exc:
            raise HashFormatError(f"{path}: Hamming index holds invalid entries: {exc}") from None
        return index
