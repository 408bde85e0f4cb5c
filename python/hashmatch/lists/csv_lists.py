"""CSV hash lists of one format: a header naming the value column, optional metadata columns."""

from __future__ import annotations

import csv
import io
from typing import IO, Any, Dict, Iterable, List, Optional, Tuple

from .. import signals
from ..config import MAX_LINE_BYTES
from ..errors import HashFormatError, InvalidInputError
from ..store import Record
from .values import list_value, media_of, text_fingerprint, validated

#: Columns of a CSV hash list besides the value column, and the header names accepted for each.
_CSV_COLUMNS = {
    "uid": ("uid",),
    "external_id": ("external_id", "id", "hash_id", "media_id"),
    "source": ("source", "list", "list_name"),
    "bank": ("bank", "bank_name"),
    "labels": ("labels", "tags", "label"),
    "classification": ("classification", "category", "class"),
    "quality": ("quality", "pdq_quality"),
    "media_type": ("media_type",),
}
_VALUE_COLUMNS = ("value", "hash", "signal", "signal_value", "hex")


def export_csv(records: Iterable[Record], fmt: str, out: IO[str]) -> int:
    """Write one format's values as CSV with a header, one row per fingerprint; returns the row count."""
    codec = signals.get(fmt)
    if codec.binary:
        raise InvalidInputError(f"format {fmt!r} is binary: export it as files (.tmk), JSON Lines or a list")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([fmt, "quality", "uid", "external_id", "source", "labels", "classification", "media_type",
                     "bank"])
    n = 0
    for r in records:
        for f in r.fingerprints:
            if f.format == fmt and not r.deleted:
                writer.writerow([list_value(f), "" if f.quality is None else f.quality, r.uid, r.external_id or "",
                                 r.source or "", ";".join(r.labels), r.classification or "", r.media_type,
                                 r.bank or ""])
                n += 1
    return n


def read_csv(text: str, name: str, fmt: Optional[str] = None) -> List[Record]:
    """Parse a CSV hash list of one format: the header names the value column (or the format)."""
    # The csv module refuses fields over 128 KiB, and an hour of vPDQ is ~270 KB in one field.
    # Lines are bounded by max_line_bytes before parsing; the limit is only ever raised, never
    # lowered, so other csv users in the process keep at least what they had.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
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
        fp = validated(text_fingerprint(codec.name, row[col], quality), f"{where}: field {header[col]}")
        uid = get("uid") or None
        if uid is not None:
            if uid in seen:
                raise HashFormatError(f"{where}: field uid {uid!r} duplicates line {seen[uid]}")
            seen[uid] = lineno
        labels = [x.strip() for x in get("labels").replace("|", ";").split(";") if x.strip()]
        record = Record(get("media_type") or media_of(codec), [fp], get("source") or None,
                        get("external_id") or None, labels, get("classification") or None, uid)
        record.bank = get("bank") or None
        records.append(record)
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


def _getter(row: List[str], cols: Dict[str, Optional[int]]) -> Any:
    """A lookup of a CSV row's optional columns by key ('' where the header lacks the column)."""
    return lambda key: row[cols[key]].strip() if cols[key] is not None else ""


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


def is_csv_header(line: str) -> bool:
    """A header names its columns: one of them is a format name or a known value column."""
    cells = {c.strip().strip('"').lower() for c in line.split(",")}
    return bool(cells & (set(signals.names()) | set(_VALUE_COLUMNS))) and (len(cells) > 1 or " " not in line)
