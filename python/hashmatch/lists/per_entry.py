"""Per-entry files the reference tools write: vPDQ text (``frame,quality,hex,time`` lines) and ``.tmk``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional, Union

from .. import signals
from ..config import TMK_MAX_BYTES
from ..errors import HashFormatError, InvalidInputError
from ..files import write_bytes_atomic
from ..pipeline.records import fingerprint
from ..signals.tmk import parse_header
from ..signals.vpdq import loads as vpdq_loads
from ..store import Fingerprint, Record
from .values import media_of, validated

PathLike = Union[str, "os.PathLike[str]"]


def read_vpdq_file(text: str, name: str) -> Record:
    """A video entry from the reference vPDQ tool's text file."""
    frames = vpdq_loads(text, source=name)
    if not frames:
        raise HashFormatError(f"{name}: vPDQ file has no frames")
    return Record("video", [fingerprint(signals.get("vpdq"), frames)], uid=_uid_of(name))


def export_files(records: Iterable[Record], fmt: str, folder: PathLike) -> int:
    """One file per video entry: ``<uid>.tmk`` for tmk_pdqf, ``<uid>.txt`` (the reference's text) for vpdq."""
    suffix = signals.get(fmt).file_suffix
    if suffix is None:
        with_files = [s.name for s in signals.all_signals() if s.file_suffix]
        raise InvalidInputError(f"per-entry files are written for {', '.join(with_files)}, not {fmt!r}")
    os.makedirs(folder, exist_ok=True)
    n = 0
    for r in records:
        for f in r.fingerprints:
            if f.format == fmt and not r.deleted:
                target = Path(folder) / f"{r.uid}{suffix}"
                write_bytes_atomic(target, f.data if f.data is not None else f.value.encode("utf-8"))
                n += 1
    return n


def read_tmk(data: bytes, name: str, max_tmk_bytes: int = TMK_MAX_BYTES) -> Record:
    """An entry from the bytes of a .tmk file, its size bound checked from the header first."""
    codec = signals.get("tmk_pdqf")
    parse_header(data, name, max_tmk_bytes)  # the size bound, before the codec parses it all
    fp = validated(Fingerprint(codec.name, "", None, codec.version, {}, data), name)
    return Record(media_of(codec), [fp], uid=_uid_of(name))


def _uid_of(name: str) -> Optional[str]:
    """Per-entry files are named by the entry's uid, so they merge back into the entry they came from."""
    stem = Path(name).stem
    return stem if len(stem) == 32 and all(c in "0123456789abcdef" for c in stem) else None


def looks_like_vpdq_line(line: str) -> bool:
    """Whether a line is one of the reference vPDQ tool's ``frame,quality,hex,time`` lines."""
    parts = line.split(",")
    return len(parts) == 4 and parts[0].strip().isdigit() and len(parts[2].strip()) == 64
