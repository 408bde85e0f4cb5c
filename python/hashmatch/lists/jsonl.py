"""JSON Lines: a whole database, losslessly, one entry per line (binary data in base64)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import IO, Any, Dict, Iterable, List, Optional

from ..errors import HashFormatError
from ..store import Fingerprint, Record
from .values import signal_named, validated


def record_to_json(r: Record) -> Dict[str, Any]:
    """A record as a JSON-ready dict (binary fingerprint data in base64)."""
    return {
        "uid": r.uid, "id": r.id, "media_type": r.media_type, "source": r.source, "external_id": r.external_id,
        "labels": list(r.labels), "classification": r.classification, "created": r.created, "updated": r.updated,
        "deleted": r.deleted, "media_uri": r.media_uri, "bank": r.bank, "content_uri": r.content_uri,
        "notes": r.notes, "metadata": r.metadata or {}, "disabled_until": r.disabled_until,
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
                  _field(obj, "id", int, where), _field(obj, "media_uri", str, where), _field(obj, "bank", str, where),
                  _field(obj, "content_uri", str, where), _field(obj, "notes", str, where),
                  _field(obj, "metadata", dict, where) or {}, _time(obj, "disabled_until", where))


def _fingerprint_from_json(obj: Any, where: str) -> Fingerprint:
    if not isinstance(obj, dict):
        raise HashFormatError(f"{where}: expected a JSON object")
    name = _field(obj, "format", str, where, required=True)
    codec = signal_named(name, f"{where}: field format")
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
    return validated(fp, f"{where}: field {'data' if codec.binary else 'value'}")


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
