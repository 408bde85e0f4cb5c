"""The interoperability layer: every hash format named as the field names it, one codec each.

``dumps(fmt, value)`` / ``loads(fmt, text_or_bytes)`` serialise and parse; ``names()`` lists the
registry; ``get(fmt)`` gives the codec (validate, distance, default threshold, media type);
``from_external`` / ``to_external`` translate NCMEC, StopNCII and CyberTipline names.
"""

from __future__ import annotations

from typing import Any, Optional

from . import digests, opaque, pdq, tmk, vpdq  # noqa: F401  (each registers its formats)
from .base import Format, OpaqueFormat, Serialized, get, names, register
from .external import SYSTEMS, from_external, table, to_external

__all__ = ["Format", "OpaqueFormat", "SYSTEMS", "distance", "dumps", "from_external", "get", "is_match",
           "loads", "names", "register", "table", "to_external", "validate"]


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
    codec = get(fmt)
    return codec.distance(_value(codec, a), _value(codec, b))


def is_match(fmt: str, a: Any, b: Any, threshold: Optional[float] = None) -> bool:
    """Whether two values of format `fmt` match at `threshold` (default: the field's)."""
    codec = get(fmt)
    return codec.is_match(_value(codec, a), _value(codec, b), threshold)


def _value(codec: Format, v: Any) -> Any:
    return codec.loads(v) if isinstance(v, (str, bytes, bytearray)) else v
