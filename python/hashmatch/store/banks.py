"""Banks: the named lists a database holds, their switches, thresholds, and the checks on them.

A bank's thresholds override the match thresholds per signal; the keys a signal takes depend on
its index kind: Hamming codes ``max_distance`` and ``min_quality``; frames (vPDQ) those and
``query_percent``, ``compared_percent``; vectors ``level1`` (the vector search's threshold) and
``level2`` (the signal's confirmation, TMK's level 2).
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
from typing import Any, Dict, List, Optional

from .. import signals
from ..errors import HashFormatError, InvalidInputError
from .backends import Backend
from .records import BANK_KINDS, Bank
from .rows import metadata_json

_KEYS = {
    "hamming": {"max_distance", "min_quality"},
    "frames": {"max_distance", "min_quality", "query_percent", "compared_percent"},
    "vector": {"level1", "level2"},
    "exact": set(),
}

BANK_COLUMNS = "id, name, kind, enabled, enabled_ratio, seed, thresholds, notes, metadata, created, updated"


def threshold_keys(signal: signals.SignalType) -> set:
    """The threshold keys a bank may set for a signal."""
    spec = signal.index
    if spec is None:
        return set()
    return _KEYS["frames" if spec.kind == "hamming" and spec.frames else spec.kind]


def check_thresholds(thresholds: Any) -> Dict[str, Dict[str, float]]:
    """Per-signal thresholds as stored, every signal and key checked (InvalidInputError names the bad one)."""
    if thresholds is None:
        return {}
    if not isinstance(thresholds, dict):
        raise InvalidInputError(f"thresholds must be a dict of signal name -> {{key: value}}, got "
                                f"{type(thresholds).__name__}")
    out: Dict[str, Dict[str, float]] = {}
    for name, values in thresholds.items():
        try:
            signal = signals.get(name)
        except HashFormatError as e:
            raise InvalidInputError(f"thresholds: {e}") from None
        allowed = threshold_keys(signal)
        if not isinstance(values, dict) or not values:
            raise InvalidInputError(f"thresholds[{name!r}] must be a non-empty dict of {sorted(allowed)}")
        for key, value in values.items():
            if key not in allowed:
                raise InvalidInputError(f"thresholds[{name!r}]: {key!r} is not a {signal.name} threshold; "
                                        f"known: {', '.join(sorted(allowed)) or 'none (matched exactly)'}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidInputError(f"thresholds[{name!r}][{key!r}] must be a number, got {value!r}")
            if key == "max_distance" and not 0 <= value <= 256:
                raise InvalidInputError(f"thresholds[{name!r}]['max_distance'] must be in 0..256, got {value}")
        out[signal.name] = {k: float(v) for k, v in values.items()}
    return out


def check_name(name: Any) -> str:
    """A bank name: non-empty text without surrounding space, at most 200 characters."""
    if not isinstance(name, str) or not name.strip() or name != name.strip() or len(name) > 200:
        raise InvalidInputError(f"a bank name is non-empty text without surrounding spaces, got {name!r}")
    return name


def _check_fields(kind: Optional[str], ratio: Optional[float]) -> None:
    if kind is not None and kind not in BANK_KINDS:
        raise InvalidInputError(f"kind must be one of {BANK_KINDS}, got {kind!r}")
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float))
                              or not 0.0 <= float(ratio) <= 1.0):
        raise InvalidInputError(f"enabled_ratio must be a number in [0, 1], got {ratio!r}")


def bank_of(row: tuple, entries: int = 0) -> Bank:
    """A Bank from its row (BANK_COLUMNS order)."""
    bid, name, kind, enabled, ratio, seed, thresholds, notes, metadata, created, updated = row
    return Bank(name, kind, bool(enabled), float(ratio), int(seed), json.loads(thresholds), notes,
                json.loads(metadata), created, updated, int(bid), entries)


def list_banks(db: Backend) -> List[Bank]:
    """Every bank, by name, with its count of live entries."""
    counts = dict(db.execute("SELECT bank_id, COUNT(*) FROM entries WHERE deleted = 0 GROUP BY bank_id").fetchall())
    return [bank_of(r, int(counts.get(r[0], 0)))
            for r in db.execute(f"SELECT {BANK_COLUMNS} FROM banks ORDER BY name").fetchall()]


def find_bank(db: Backend, name: str) -> Optional[Bank]:
    """The bank of that name, or None."""
    row = db.execute(f"SELECT {BANK_COLUMNS} FROM banks WHERE name = ?", (name,)).fetchone()
    return bank_of(row) if row else None


def insert_bank(db: Backend, name: str, *, kind: str = "match", enabled: bool = True, enabled_ratio: float = 1.0,
                thresholds: Optional[Dict] = None, notes: Optional[str] = None,
                metadata: Optional[Dict[str, Any]] = None, seed: Optional[int] = None) -> int:
    """Create a bank (inside the caller's write transaction); its id. InvalidInputError if the name is taken."""
    check_name(name)
    _check_fields(kind, enabled_ratio)
    if find_bank(db, name) is not None:
        raise InvalidInputError(f"a bank named {name!r} already exists")
    bid = int(db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM banks").fetchone()[0])
    now = time.time()
    db.execute(f"INSERT INTO banks ({BANK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (bid, name, kind, int(bool(enabled)), float(enabled_ratio),
                int(secrets.randbits(31) if seed is None else seed), json.dumps(check_thresholds(thresholds),
                                                                                 sort_keys=True),
                notes, metadata_json(metadata), now, now))
    return bid


def update_bank(db: Backend, name: str, fields: Dict[str, Any]) -> None:
    """Change a bank's fields (inside the caller's write transaction): name, kind, enabled, enabled_ratio,
    thresholds, notes, metadata, seed."""
    if find_bank(db, name) is None:
        raise KeyError(f"no bank named {name!r}")
    allowed = {"name", "kind", "enabled", "enabled_ratio", "thresholds", "notes", "metadata", "seed"}
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidInputError(f"unknown bank field(s) {sorted(unknown)}; known: {sorted(allowed)}")
    _check_fields(fields.get("kind"), fields.get("enabled_ratio"))
    if "name" in fields:
        check_name(fields["name"])
        if fields["name"] != name and find_bank(db, fields["name"]) is not None:
            raise InvalidInputError(f"a bank named {fields['name']!r} already exists")
    values = dict(fields)
    if "thresholds" in values:
        values["thresholds"] = json.dumps(check_thresholds(values["thresholds"]), sort_keys=True)
    if "metadata" in values:
        values["metadata"] = metadata_json(values["metadata"])
    if "enabled" in values:
        values["enabled"] = int(bool(values["enabled"]))
    if not values:
        return
    sets = ", ".join(f"{k} = ?" for k in values)
    db.execute(f"UPDATE banks SET {sets}, updated = ? WHERE name = ?", [*values.values(), time.time(), name])


def takes_part(bank: Bank, key: bytes) -> bool:
    """Whether a bank takes part in the lookup of a query with this key: a stable draw against enabled_ratio."""
    if not bank.enabled:
        return False
    if bank.enabled_ratio >= 1.0:
        return True
    digest = hashlib.blake2b(key, digest_size=8, key=bank.seed.to_bytes(8, "big", signed=False)).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64 < bank.enabled_ratio
