"""Reading any hash-list file, its kind recognised from the content, in bounded lines."""

from __future__ import annotations

import os
from typing import IO, List, Optional, Union

from ..config import MAX_LINE_BYTES, TMK_MAX_BYTES
from ..errors import HashFormatError, MediaNotFoundError, ResourceLimitError
from ..signals.tmk import read_tmk_bytes
from ..store import Record
from .csv_lists import is_csv_header, read_csv
from .jsonl import read_jsonl
from .per_entry import looks_like_vpdq_line, read_tmk, read_vpdq_file
from .plain import read_list

PathLike = Union[str, "os.PathLike[str]"]
#: Longest line of an imported hash list (hashmatch.config.MAX_LINE_BYTES).
DEFAULT_MAX_LINE_BYTES = MAX_LINE_BYTES
DEFAULT_MAX_TMK_BYTES = TMK_MAX_BYTES
_READ_CHUNK = 1 << 20


def read_file(path: PathLike, *, fmt: Optional[str] = None, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
              max_tmk_bytes: int = DEFAULT_MAX_TMK_BYTES) -> List[Record]:
    """Records from any hash-list file, its kind recognised from the content."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            return read_stream(f, name, fmt=fmt, max_line_bytes=max_line_bytes, max_tmk_bytes=max_tmk_bytes)
    except FileNotFoundError:
        raise MediaNotFoundError(f"no such file: {name!r}") from None


def read_stream(stream: IO[bytes], name: str, *, fmt: Optional[str] = None,
                max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, max_tmk_bytes: int = DEFAULT_MAX_TMK_BYTES
                ) -> List[Record]:
    """Records from a binary stream, read in chunks: a line over max_line_bytes stops the read there."""
    head = stream.read(_READ_CHUNK)
    if head[:4] == b"TMK1":
        return [read_tmk(read_tmk_bytes(stream, name, max_tmk_bytes, head), name, max_tmk_bytes)]
    bound = _LineBound(name, max_line_bytes)
    chunks = []
    while head:
        bound.feed(head)
        chunks.append(head)
        head = stream.read(_READ_CHUNK)
    return read_bytes(b"".join(chunks), name, fmt=fmt, max_line_bytes=None)


class _LineBound:
    """Raises ResourceLimitError once a line fed so far, in chunks, is longer than the bound."""

    def __init__(self, name: str, max_line_bytes: int) -> None:
        self.name, self.limit = name, max_line_bytes
        self.current = 0  # bytes of the line still open at the end of the last chunk
        self.lineno = 1

    def feed(self, chunk: bytes) -> None:
        lengths = list(map(len, chunk.split(b"\n")))
        lengths[0] += self.current
        if max(lengths) > self.limit:
            line = self.lineno + next(i for i, n in enumerate(lengths) if n > self.limit)
            raise ResourceLimitError(f"{self.name}:{line}: a line longer than max_line_bytes={self.limit:,}"
                                     f" (pass a larger max_line_bytes if this list is trusted)")
        self.current = lengths[-1]
        self.lineno += len(lengths) - 1


def read_bytes(data: bytes, name: str, *, fmt: Optional[str] = None,
               max_line_bytes: Optional[int] = DEFAULT_MAX_LINE_BYTES,
               max_tmk_bytes: int = DEFAULT_MAX_TMK_BYTES) -> List[Record]:
    """Records from the bytes of a hash-list file (JSON Lines, CSV, list, vPDQ text, .tmk)."""
    if data[:4] == b"TMK1":
        return [read_tmk(data, name, max_tmk_bytes)]
    if max_line_bytes is not None:
        bound = _LineBound(name, max_line_bytes)
        view = memoryview(data)
        for i in range(0, len(data), _READ_CHUNK):
            bound.feed(bytes(view[i:i + _READ_CHUNK]))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise HashFormatError(f"{name}:{line}: not UTF-8 text (byte {e.start})") from None
    first = next((line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")), "")
    if not first:
        return []
    if first.startswith("{"):
        return read_jsonl(text, name)
    if looks_like_vpdq_line(first):
        return [read_vpdq_file(text, name)]
    if is_csv_header(first):
        return read_csv(text, name, fmt)
    return read_list(text, name)
