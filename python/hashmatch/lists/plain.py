"""``format value`` lines, as ThreatExchange tools write them (or bare PDQ hex lines)."""

from __future__ import annotations

from typing import IO, Iterable, List, Optional

from .. import signals
from ..store import Record
from .values import list_value, media_of, signal_named, text_fingerprint, validated


def export_list(records: Iterable[Record], fmt: Optional[str], out: IO[str]) -> int:
    """Write ``format value`` lines as ThreatExchange tools do (one format, or every text format)."""
    n = 0
    for r in records:
        if r.deleted:
            continue
        for f in r.fingerprints:
            if (fmt is None or f.format == fmt) and not signals.get(f.format).binary:
                out.write(f"{f.format} {list_value(f)}\n")
                n += 1
    return n


def read_list(text: str, name: str) -> List[Record]:
    """Parse ``format value`` lines (or bare PDQ hex lines); '#' starts a comment line."""
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        where = f"{name}:{lineno}"
        fmt, _, value = s.partition(" ")
        if not value:  # a bare hash: PDQ lists are written one hex per line
            fmt, value = "pdq", s
        codec = signal_named(fmt, f"{where}: format")
        fp = validated(text_fingerprint(codec.name, value, None), f"{where}: value")
        records.append(Record(media_of(codec), [fp]))
    return records
