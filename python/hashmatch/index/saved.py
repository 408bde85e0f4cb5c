"""Saved Hamming index files, format 2: immutable segments opened by mmap and searched in place.

Layout: a 4096-byte header (magic, version 2, flags, tag, live count, largest id, segment
table, CRC-32 of the header), then per segment its bytes (cpp/segment.hpp: codes, ids and
multi-index hashing tables, page-aligned) and, when some of its rows are removed, a dead-row
bitmap. Each entry of the segment table holds the segment's CRC-32 and its bitmap's.

Opening reads the header only: the header's CRC and every segment's extent are checked
(a truncated file fails here), segments are mapped, not read. The segment checksums are
verified by a background thread (`Verification`), so a bit flip is detected without a
verification pass before the first search. Files are only ever replaced by rename
(files.atomic_write), never rewritten in place: a process keeps searching the file it mapped
(the old inode) until it opens the new one, and no mapped page ever disappears. Format 1 (one checksummed array of codes and ids)
shares the first 32 header bytes, so `read_tag` reads either.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _core
from ..errors import IndexCorruptError
from ..files import atomic_write

MAGIC = b"HMHAMIDX"
#: magic, version, flags (bit 0: tag present), tag, count: the same in formats 1 and 2.
PREFIX = struct.Struct("<8sIIqQ")
_V2 = struct.Struct("<8sIIqQqI4x")  # ... then the largest id held and the segment count
_ENTRY = struct.Struct("<QQQQQII")  # offset, bytes, rows, dead offset, dead bytes, crc, dead crc
HEADER_BYTES = 4096
MAX_SEGMENTS = (HEADER_BYTES - _V2.size - 4) // _ENTRY.size
_PAGE = 4096
_CHUNK = 64 << 20  # checksums in 64 MiB steps (zlib releases the GIL on each)

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Entry:
    """One segment of a saved file."""
    offset: int
    nbytes: int
    rows: int
    dead_offset: int
    dead_bytes: int
    crc: int
    dead_crc: int


@dataclass
class SavedFile:
    """An open format-2 file: its mapping, header fields and segment table."""
    path: str
    mm: mmap.mmap
    tag: Optional[int]
    count: int
    max_id: int
    entries: List[Entry]

    def segment(self, i: int) -> memoryview:
        """Segment i's bytes, in place."""
        e = self.entries[i]
        return memoryview(self.mm)[e.offset:e.offset + e.nbytes]

    def padded(self, i: int) -> memoryview:
        """Segment i's bytes and the zeros to its page end: what its CRC-32 covers."""
        e = self.entries[i]
        return memoryview(self.mm)[e.offset:e.offset + _page(e.nbytes)]

    def dead(self, i: int) -> Optional[memoryview]:
        """Segment i's dead-row bitmap, None when none of its rows are dead."""
        e = self.entries[i]
        return memoryview(self.mm)[e.dead_offset:e.dead_offset + e.dead_bytes] if e.dead_bytes else None


def crc(view: memoryview) -> int:
    """CRC-32 of a buffer, in chunks."""
    value = 0
    for at in range(0, len(view), _CHUNK):
        value = zlib.crc32(view[at:at + _CHUNK], value)
    return value


def read_tag(path: PathLike) -> Tuple[Optional[int], Optional[int]]:
    """(format version, tag) from a saved index's header; (None, None) when not an index or unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(PREFIX.size)
    except OSError:
        return None, None
    if len(head) < PREFIX.size:
        return None, None
    magic, version, flags, tag, _ = PREFIX.unpack(head)
    if magic != MAGIC:
        return None, None
    return version, (tag if flags & 1 else None)


def open_file(path: PathLike) -> SavedFile:
    """Map a format-2 file and check its header and extents (IndexCorruptError when damaged)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < HEADER_BYTES:
            raise IndexCorruptError(f"{path}: Hamming index truncated ({size} bytes, shorter than its header)")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    head = mm[:HEADER_BYTES]
    if zlib.crc32(head[:-4]) != struct.unpack("<I", head[-4:])[0]:
        raise IndexCorruptError(f"{path}: Hamming index header checksum mismatch (the file is damaged)")
    magic, version, flags, tag, count, max_id, nseg = _V2.unpack_from(head)
    if magic != MAGIC or version != 2 or flags & ~1 or nseg > MAX_SEGMENTS:
        raise IndexCorruptError(f"{path}: not a format-2 Hamming index header")
    entries = [Entry(*_ENTRY.unpack_from(head, _V2.size + i * _ENTRY.size)) for i in range(nseg)]
    end = HEADER_BYTES
    for i, e in enumerate(entries):
        end = max(end, _page(e.offset + e.nbytes), _page(e.dead_offset + e.dead_bytes))
        if e.offset < HEADER_BYTES or e.offset % _PAGE or _page(e.offset + e.nbytes) > size or \
                e.dead_offset + e.dead_bytes > size:
            raise IndexCorruptError(f"{path}: Hamming index truncated: segment {i} ends past the file's "
                                    f"{size} bytes; rebuild it")
    if size != end:
        raise IndexCorruptError(f"{path}: Hamming index is {size} bytes, its header implies {end} "
                                "(truncated or damaged)")
    return SavedFile(os.fspath(path), mm, tag if flags & 1 else None, count, max_id, entries)


def segments_of(saved: SavedFile, *, force_mih: bool = False, portable_kernels: bool = False):
    """A _core.HammingSegments over the file's segments, dead-row bitmaps checked (IndexCorruptError)."""
    segs = _core.HammingSegments(force_mih, portable_kernels)
    for i, e in enumerate(saved.entries):
        dead = saved.dead(i)
        if dead is not None and crc(dead) != e.dead_crc:
            raise IndexCorruptError(f"{saved.path}: segment {i}'s dead-row bitmap fails its checksum")
        try:
            segs.append(saved.segment(i), None if dead is None else bytes(dead))
        except RuntimeError as exc:
            raise IndexCorruptError(f"{saved.path}: segment {i}: {exc}; rebuild the index") from None
        if segs.segment_rows(i) != e.rows:
            raise IndexCorruptError(f"{saved.path}: segment {i} holds {segs.segment_rows(i)} rows, its entry says {e.rows}")
    return segs


class Verification:
    """Checks every segment's CRC-32 in a background thread; `wait()` returns the damage found, if any."""

    def __init__(self, saved: SavedFile) -> None:
        self.error: Optional[IndexCorruptError] = None
        self._saved = saved
        self._thread = threading.Thread(target=self._run, name="hashmatch-index-verify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for i, e in enumerate(self._saved.entries):
            if crc(self._saved.padded(i)) != e.crc:
                self.error = IndexCorruptError(f"{self._saved.path}: segment {i} fails its checksum "
                                               "(the file is damaged); rebuild the index")
                return

    def done(self) -> bool:
        """Whether the check has finished."""
        return not self._thread.is_alive()

    def wait(self) -> Optional[IndexCorruptError]:
        """Block until every segment is checked; the damage found, or None."""
        self._thread.join()
        return self.error


# A part of a file being written: an existing segment copied with a new dead-row bitmap,
# or codes and ids to build into a new segment.
Copy = Tuple[memoryview, int, bytes]  # padded segment bytes, their CRC-32, dead-row bitmap (b"" when none dead)
Build = Tuple[np.ndarray, np.ndarray]


def _page(n: int) -> int:
    return (n + _PAGE - 1) // _PAGE * _PAGE


def write_file(path: PathLike, copies: Sequence[Copy], builds: Sequence[Build], tag: Optional[int],
               max_id: int, threads: int = 0) -> None:
    """Write a format-2 file atomically from copied segments and new ones (temp file, fsync, rename)."""
    parts: List[Tuple[str, object, int]] = []  # kind, source, segment bytes
    for seg, _, _ in copies:
        parts.append(("copy", seg, int.from_bytes(bytes(seg[8:16]), "little")))  # SegmentHeader.bytes
    for codes, ids in builds:
        parts.append(("build", (codes, ids), int(_core.segment_bytes(codes, ids, 0, threads))))
    if len(parts) > MAX_SEGMENTS:
        raise ValueError(f"at most {MAX_SEGMENTS} segments in one file")
    at, layout = HEADER_BYTES, []
    deads = [d for _, _, d in copies] + [b""] * len(builds)
    for (_, _, nbytes), dead in zip(parts, deads):
        seg_at = at
        at = _page(at + nbytes)
        dead_at = at if dead else 0
        at = _page(at + len(dead))
        layout.append((seg_at, dead_at))
    total = at
    with atomic_write(path) as f:
        f.truncate(total)
        mm = mmap.mmap(f.fileno(), total)
        try:
            entries, count = [], 0
            for i, ((kind, source, nbytes), dead, (seg_at, dead_at)) in enumerate(zip(parts, deads, layout)):
                view = memoryview(mm)[seg_at:seg_at + nbytes]
                if kind == "copy":
                    mm[seg_at:seg_at + len(source)] = source
                    seg_crc = copies[i][1]
                    rows = int.from_bytes(bytes(view[16:24]), "little")
                    dead_rows = int(np.unpackbits(np.frombuffer(dead, np.uint8)).sum()) if dead else 0
                else:
                    codes, ids = source
                    _core.build_segment(codes, ids, 0, view, threads)
                    padded = memoryview(mm)[seg_at:seg_at + _page(nbytes)]
                    seg_crc, rows, dead_rows = crc(padded), len(ids), 0
                    padded.release()
                view.release()
                if dead:
                    mm[dead_at:dead_at + len(dead)] = dead
                entries.append(_ENTRY.pack(seg_at, nbytes, rows, dead_at, len(dead), seg_crc,
                                           zlib.crc32(dead) if dead else 0))
                count += rows - dead_rows
            head = bytearray(HEADER_BYTES)
            _V2.pack_into(head, 0, MAGIC, 2, 0 if tag is None else 1, 0 if tag is None else tag, count, max_id,
                          len(entries))
            for i, e in enumerate(entries):
                head[_V2.size + i * _ENTRY.size:_V2.size + (i + 1) * _ENTRY.size] = e
            head[-4:] = struct.pack("<I", zlib.crc32(bytes(head[:-4])))
            mm[:HEADER_BYTES] = bytes(head)
            mm.flush()
        finally:
            mm.close()
