"""Exporting a database to one hash-list file, written atomically, or to per-entry files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Tuple, Union

from .. import signals
from ..errors import InvalidInputError
from ..files import atomic_write
from .csv_lists import export_csv
from .jsonl import export_jsonl
from .per_entry import export_files
from .plain import export_list

PathLike = Union[str, "os.PathLike[str]"]

_SUFFIX_KIND = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".txt": "list"}


def export(db: Any, out: PathLike, *, fmt: Optional[str] = None, kind: Optional[str] = None,
           bank: Optional[str] = None) -> Tuple[int, str]:
    """Export a HashDB to `out` (kind from the suffix, or a directory of per-video files); (count, kind)."""
    if fmt is not None:
        fmt = signals.get(fmt).name
    out = os.fspath(out)
    if kind is None:
        kind = "files" if os.path.isdir(out) or out.endswith(os.sep) else _SUFFIX_KIND.get(Path(out).suffix.lower())
        if kind is None:
            raise InvalidInputError(f"cannot tell the file kind of {out!r}: use .jsonl, .csv or .txt, a directory,"
                                    " or --kind")
    if kind in ("csv", "files") and fmt is None:
        raise InvalidInputError(f"a {kind} export holds one format: pass fmt (--format)")
    records = db.iter_records(include_deleted=kind == "jsonl", formats=[fmt] if fmt else None, bank=bank)
    if kind == "files":
        return export_files(records, fmt, out), kind
    with atomic_write(out, "w", encoding="utf-8", newline="") as f:  # a partner never sees half a list
        writer = {"jsonl": lambda: export_jsonl(records, f), "csv": lambda: export_csv(records, fmt, f),
                  "list": lambda: export_list(records, fmt, f)}.get(kind)
        if writer is None:
            raise InvalidInputError(f"kind={kind!r}: pass 'jsonl', 'csv', 'list' or 'files'")
        n = writer()
    return n, kind
