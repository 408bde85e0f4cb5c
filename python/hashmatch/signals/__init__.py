"""Signal types: every hash format named as the field names it, each one class holding its whole story.

``dumps(fmt, value)`` / ``loads(fmt, text_or_bytes)`` serialise and parse; ``names()`` lists the
registry; ``get(fmt)`` gives the signal type (codec, computing, distance, default threshold,
index kind, media type); ``from_external`` / ``to_external`` translate NCMEC, StopNCII and
CyberTipline names. Third-party signal types register through the ``hashmatch.signals``
entry-point group (``[project.entry-points."hashmatch.signals"] name = "module:SignalClass"``).
"""

from __future__ import annotations

from typing import Any, Optional

from . import pdq, vpdq, tmk, digests, opaque  # noqa: F401,I001  (each registers its signal types, in this order)
from .base import (ENTRY_POINT_GROUP, Code, IndexSpec, OpaqueSignal, Serialized, SignalType, Stored, Thresholds,
                   all_signals, computed, get, in_space, names, of_names, register, spaces, value_of)
from .external import from_external, systems, table, to_external

#: The names this module had as ``hashmatch.formats``.
Format = SignalType
OpaqueFormat = OpaqueSignal

__all__ = ["ENTRY_POINT_GROUP", "Code", "Format", "IndexSpec", "OpaqueFormat", "OpaqueSignal", "SYSTEMS",
           "Serialized", "SignalType", "Stored", "Thresholds", "all_signals", "computed", "distance", "dumps",
           "from_external", "get", "in_space", "is_match", "loads", "names", "of_names", "register", "spaces",
           "systems", "table", "to_external", "validate", "value_of"]


def __getattr__(name: str) -> Any:
    if name == "SYSTEMS":  # computed: a plugin may add a system
        return systems()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def dumps(fmt: str, value: Any) -> Serialized:
    """Serialise `value` in format `fmt` as the field exchanges it."""
    return get(fmt).dumps(value)


def loads(fmt: str, data: Serialized, *, source: str = "<value>") -> Any:
    """Parse `data` in format `fmt`; errors name `source`."""
    return get(fmt).loads(data, source=source)


def validate(fmt: str, data: Serialized, *, source: str = "<value>") -> Serialized:
    """The canonical serialisation of `data` in format `fmt`, or HashFormatError."""
    return get(fmt).validate(data, source=source)


def distance(fmt: str, a: Any, b: Any) -> float:
    """Distance (a similarity for TMK and vPDQ, see ``get(fmt).similarity``) between two values."""
    signal = get(fmt)
    return signal.distance(_value(signal, a), _value(signal, b))


def is_match(fmt: str, a: Any, b: Any, threshold: Optional[float] = None) -> bool:
    """Whether two values of format `fmt` match at `threshold` (default: the field's)."""
    signal = get(fmt)
    return signal.is_match(_value(signal, a), _value(signal, b), threshold)


def _value(signal: SignalType, v: Any) -> Any:
    return signal.loads(v) if isinstance(v, (str, bytes, bytearray)) else v
