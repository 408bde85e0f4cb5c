"""Hash-list files in and out of a database: JSON Lines, CSV, ``format value`` lists, vPDQ and .tmk files.

Every reader parses and validates the whole file before anything is written (an import
applies whole or not at all), and its errors name the file, the line and the field. Every
writer streams, so a database of millions of entries exports in bounded memory.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import os
from pathlib import Path
from typing import IO, Any, Dict, Iterable, List, Optional, Tuple, Union

from .. import signals
from ..config import MAX_LINE_BYTES, TMK_MAX_BYTES
from ..errors import HashFormatError, InvalidInputError, MediaNotFoundError, ResourceLimitError
from ..files import atomic_write, write_bytes_atomic
from ..pipeline.records import fingerprint
from ..signals.tmk import parse_header, read_tmk_bytes
from ..signals.vpdq import loads as vpdq_loads
from ..store import Fingerprint, Record

DEFAULT_MAX_TMK_BYTES = TMK_MAX_BYTES

PathLike = Union[str, "os.PathLike[str]"]

#: Longest line of an imported hash list: a vPDQ signal string of a 6-hour video at one frame a
#: second is ~2 MiB, a JSON Lines entry with a .tmk in base64 ~350 KiB.
DEFAULT_MAX_LINE_BYTES = MAX_LINE_BYTES
_READ_CHUNK = 1 << 20

#: Columns of a CSV hash list besides the value column, and the header names accepted for each.
_CSV_COLUMNS = {
    "uid": ("uid",),
    "external_id": ("external_id", "id", "hash_id", "media_id"),
    "source": ("source", "list", "list_name"),
    "labels": ("labels", "tags", "label"),
    "classification": ("classification", "category", "class"),
    "quality": ("quality", "pdq_quality"),
    "media_type": ("media_type",),
}
_VALUE_COLUMNS = ("value", "hash", "signal", "signal_value", "hex")


# ----- JSON Lines: the whole database, losslessly ------------------------------------

def record_to_json(r: Record) -> Dict[str, Any]:
    """A record as a JSON-ready dict (binary fingerprint data in base64)."""
    return {
        "uid": r.uid, "id": r.id, "media_type": r.media_type, "source": r.source, "external_id": r.external_id,
        "labels": list(r.labels), "classification": r.classification, "created": r.created, "updated": r.updated,
        "deleted": r.deleted, "media_uri": r.media_uri,
        "fingerprints": [{"format": f.format, "value": f.value, "quality": f.quality,
                          "algorithm_version": f.algorithm_version, "params": f.params,
                          **({"data": base64.b64encode(f.data).decode("ascii")} if f.data is not None else {})}
                         for f in r.fingerprints],
    }


def record_from_json(obj: Any, where: str) -> Record:
    """A record from its JSON dict; HashFormatError names `where` and the field."""
    if not isinstance(obj, dict):
        raise HashFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    media_type = _field(obj, "media_type", str, where, required=True)
    if media_type not in ("image", "video"):
        raise HashFormatError(f"{where}: field media_type must be 'image' or 'video', got {media_type!r}")
    fps = obj.get("fingerprints", [])
    if not isinstance(fps, list):
        raise HashFormatError(f"{where}: field fingerprints must be a list")
    fingerprints = [_fingerprint_from_json(f, f"{where}: fingerprints[{i}]") for i, f in enumerate(fps)]
    labels = obj.get("labels") or []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise HashFormatError(f"{where}: field labels must be a list of strings")
    deleted = obj.get("deleted", False)
    if not isinstance(deleted, bool):
        raise HashFormatError(f"{where}: field deleted must be true or false")
    return Record(media_type, fingerprints, _field(obj, "source", str, where), _field(obj, "external_id", str, where),
                  labels, _field(obj, "classification", str, where), _field(obj, "uid", str, where),
                  _time(obj, "created", where), _time(obj, "updated", where), deleted,
                  _field(obj, "id", int, where), _field(obj, "media_uri", str, where))


def _fingerprint_from_json(obj: Any, where: str) -> Fingerprint:
    if not isinstance(obj, dict):
        raise HashFormatError(f"{where}: expected a JSON object")
    name = _field(obj, "format", str, where, required=True)
    codec = _codec(name, f"{where}: field format")
    data = None
    if obj.get("data") is not None:
        try:
            data = base64.b64decode(_field(obj, "data", str, where), validate=True)
        except (binascii.Error, ValueError):
            raise HashFormatError(f"{where}: field data is not base64") from None
    value = _field(obj, "value", str, where) or ""
    quality = _field(obj, "quality", int, where)
    if quality is not None and not 0 <= quality <= 100:
        raise HashFormatError(f"{where}: field quality must be in 0..100, got {quality}")
    params = obj.get("params") or {}
    if not isinstance(params, dict):
        raise HashFormatError(f"{where}: field params must be an object")
    fp = Fingerprint(codec.name, value, quality, _field(obj, "algorithm_version", str, where), params, data)
    return _validated(fp, f"{where}: field {'data' if codec.binary else 'value'}")


def export_jsonl(records: Iterable[Record], out: IO[str]) -> int:
    """Write records as JSON Lines; returns the count."""
    n = 0
    for r in records:
        out.write(json.dumps(record_to_json(r), sort_keys=True, allow_nan=False) + "\n")
        n += 1
    return n


def read_jsonl(text: str, name: str) -> List[Record]:
    """Parse a JSON Lines export (one entry per line), whole or not at all."""
    records, seen = [], {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name}:{lineno}"
        try:
            obj = json.loads(line, parse_constant=_no_constants)
        except json.JSONDecodeError as e:
            raise HashFormatError(f"{where}: not JSON ({e.msg})") from None
        except ValueError as e:
            raise HashFormatError(f"{where}: {e}") from None
        except RecursionError:
            raise HashFormatError(f"{where}: JSON nested too deeply") from None
        r = record_from_json(obj, where)
        if r.uid is not None:
            if r.uid in seen:
                raise HashFormatError(f"{where}: field uid {r.uid!r} duplicates line {seen[r.uid]}")
            seen[r.uid] = lineno
        records.append(r)
    return records


# ----- one format: CSV and "format value" lists ---------------------------------------

def export_csv(records: Iterable[Record], fmt: str, out: IO[str]) -> int:
    """Write one format's values as CSV with a header, one row per fingerprint; returns the row count."""
    codec = signals.get(fmt)
    if codec.binary:
        raise InvalidInputError(f"format {fmt!r} is binary: export it as files (.tmk), JSON Lines or a list")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([fmt, "quality", "uid", "external_id", "source", "labels", "classification", "media_type"])
    n = 0
    for r in records:
        for f in r.fingerprints:
            if f.format == fmt and not r.deleted:
                writer.writerow([_list_value(f), "" if f.quality is None else f.quality, r.uid, r.external_id or "",
                                 r.source or "", ";".join(r.labels), r.classification or "", r.media_type])
                n += 1
    return n


def read_csv(text: str, name: str, fmt: Optional[str] = None) -> List[Record]:
    """Parse a CSV hash list of one format: the header names the value column (or the format)."""
    # The csv module refuses fields over 128 KiB, and an hour of vPDQ is ~270 KB in one field.
    # Lines are bounded by max_line_bytes before parsing; the limit is only ever raised, never
    # lowered, so other csv users in the process keep at least what they had.
    csv.field_size_limit(max(csv.field_size_limit(), DEFAULT_MAX_LINE_BYTES))
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise HashFormatError(f"{name}:1: empty CSV file") from None
    except csv.Error as e:
        raise HashFormatError(f"{name}:1: not CSV ({e})") from None
    col, fmt = _value_column(header, fmt, name)
    codec = signals.get(fmt)
    cols = {key: next((header.index(n) for n in names if n in header), None) for key, names in _CSV_COLUMNS.items()}
    records, seen = [], {}
    for lineno, row in enumerate(_csv_rows(reader, name), 2):
        if not row or all(not c.strip() for c in row):
            continue
        where = f"{name}:{lineno}"
        if len(row) != len(header):
            raise HashFormatError(f"{where}: {len(row)} fields, the header has {len(header)}")
        get = _getter(row, cols)
        quality = None
        if get("quality"):
            try:
                quality = int(get("quality"))
            except ValueError:
                raise HashFormatError(f"{where}: field quality must be an integer, got {get('quality')!r}") from None
        fp = _validated(_text_fingerprint(codec.name, row[col], quality), f"{where}: field {header[col]}")
        uid = get("uid") or None
        if uid is not None:
            if uid in seen:
                raise HashFormatError(f"{where}: field uid {uid!r} duplicates line {seen[uid]}")
            seen[uid] = lineno
        labels = [x.strip() for x in get("labels").replace("|", ";").split(";") if x.strip()]
        records.append(Record(get("media_type") or _media_of(codec), [fp], get("source") or None,
                              get("external_id") or None, labels, get("classification") or None, uid))
    return records


def _csv_rows(reader: Any, name: str) -> Iterable[List[str]]:
    """The reader's rows; a malformed row (stray newline, NUL, oversized field) is a HashFormatError."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise HashFormatError(f"{name}:{reader.line_num}: not CSV ({e})") from None
        yield row


def export_list(records: Iterable[Record], fmt: Optional[str], out: IO[str]) -> int:
    """Write ``format value`` lines as ThreatExchange tools do (one format, or every text format)."""
    n = 0
    for r in records:
        if r.deleted:
            continue
        for f in r.fingerprints:
            if (fmt is None or f.format == fmt) and not signals.get(f.format).binary:
                out.write(f"{f.format} {_list_value(f)}\n")
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
        codec = _codec(fmt, f"{where}: format")
        fp = _validated(_text_fingerprint(codec.name, value, None), f"{where}: value")
        records.append(Record(_media_of(codec), [fp]))
    return records


# ----- per-video files: vPDQ text and .tmk ---------------------------------------------

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


_SUFFIX_KIND = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".txt": "list"}


def export(db: Any, out: PathLike, *, fmt: Optional[str] = None, kind: Optional[str] = None) -> Tuple[int, str]:
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
    records = db.iter_records(include_deleted=kind == "jsonl", formats=[fmt] if fmt else None)
    if kind == "files":
        return export_files(records, fmt, out), kind
    with atomic_write(out, "w", encoding="utf-8", newline="") as f:  # a partner never sees half a list
        writer = {"jsonl": lambda: export_jsonl(records, f), "csv": lambda: export_csv(records, fmt, f),
                  "list": lambda: export_list(records, fmt, f)}.get(kind)
        if writer is None:
            raise InvalidInputError(f"kind={kind!r}: pass 'jsonl', 'csv', 'list' or 'files'")
        n = writer()
    return n, kind


# ----- reading any of them -------------------------------------------------------------

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
        return [_read_tmk(read_tmk_bytes(stream, name, max_tmk_bytes, head), name, max_tmk_bytes)]
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
        return [_read_tmk(data, name, max_tmk_bytes)]
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
    if _looks_like_vpdq_line(first):
        return [read_vpdq_file(text, name)]
    if _is_csv_header(first):
        return read_csv(text, name, fmt)
    return read_list(text, name)


def _read_tmk(data: bytes, name: str, max_tmk_bytes: int = DEFAULT_MAX_TMK_BYTES) -> Record:
    codec = signals.get("tmk_pdqf")
    parse_header(data, name, max_tmk_bytes)  # the size bound, before the codec parses it all
    fp = _validated(Fingerprint(codec.name, "", None, codec.version, {}, data), name)
    return Record(_media_of(codec), [fp], uid=_uid_of(name))


def _uid_of(name: str) -> Optional[str]:
    """Per-entry files are named by the entry's uid, so they merge back into the entry they came from."""
    stem = Path(name).stem
    return stem if len(stem) == 32 and all(c in "0123456789abcdef" for c in stem) else None


# ----- helpers -------------------------------------------------------------------------

def _getter(row: List[str], cols: Dict[str, Optional[int]]) -> Any:
    """A lookup of a CSV row's optional columns by key ('' where the header lacks the column)."""
    return lambda key: row[cols[key]].strip() if cols[key] is not None else ""


def _codec(name: str, where: str) -> signals.SignalType:
    try:
        return signals.get(name)
    except HashFormatError as e:
        raise HashFormatError(f"{where}: {e}") from None


def _validated(fp: Fingerprint, where: str) -> Fingerprint:
    """The fingerprint with its value in canonical form; HashFormatError naming `where` otherwise."""
    try:
        fp.value, fp.data = signals.get(fp.format).canonical(fp.value, fp.data, source=where)
    except HashFormatError as e:
        msg = str(e)
        raise HashFormatError(msg if msg.startswith(where) else f"{where}: {msg}") from None
    return fp


def _text_fingerprint(fmt: str, value: str, quality: Optional[int]) -> Fingerprint:
    return Fingerprint(fmt, value, quality, signals.get(fmt).version)


def _list_value(f: Fingerprint) -> str:
    """A fingerprint's value as one line (vPDQ as python-threatexchange's compact string)."""
    return signals.get(f.format).as_line(f.value, f.data)


def _media_of(codec: signals.SignalType) -> str:
    return "video" if codec.media_type == "video" else "image"


def _value_column(header: List[str], fmt: Optional[str], name: str) -> Tuple[int, str]:
    known = set(signals.names())
    for i, h in enumerate(header):
        if h in known and (fmt is None or h == fmt):
            return i, h
    for i, h in enumerate(header):
        if h in _VALUE_COLUMNS:
            if fmt is None and h not in ("hex",):
                fmt = "pdq"  # the field's plain hash lists are PDQ
            return i, fmt or "pdq"
    raise HashFormatError(f"{name}:1: no hash column in the CSV header {header}; name it after its format"
                          f" ({', '.join(signals.names())}) or one of {_VALUE_COLUMNS}")


def _is_csv_header(line: str) -> bool:
    """A header names its columns: one of them is a format name or a known value column."""
    cells = {c.strip().strip('"').lower() for c in line.split(",")}
    return bool(cells & (set(signals.names()) | set(_VALUE_COLUMNS))) and (len(cells) > 1 or " " not in line)


def _looks_like_vpdq_line(line: str) -> bool:
    parts = line.split(",")
    return len(parts) == 4 and parts[0].strip().isdigit() and len(parts[2].strip()) == 64


def _field(obj: Dict[str, Any], key: str, kind: type, where: str, required: bool = False) -> Any:
    value = obj.get(key)
    if value is None:
        if required:
            raise HashFormatError(f"{where}: field {key} is missing")
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise HashFormatError(f"{where}: field {key} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _time(obj: Dict[str, Any], key: str, where: str) -> Optional[float]:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HashFormatError(f"{where}: field {key} must be a Unix time in seconds, got {value!r}")
    return float(value)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a hash list")


__all__ = ["DEFAULT_MAX_LINE_BYTES", "export", "export_csv", "export_files", "export_jsonl", "export_list",
           "read_bytes", "read_csv", "read_file", "read_jsonl", "read_list", "read_stream", "read_vpdq_file",
           "record_from_json", "record_to_json"]

