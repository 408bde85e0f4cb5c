"""What every hash-list reader and writer shares: a checked value, its signal, its one-line form."""

from __future__ import annotations

from typing import Optional

from .. import signals
from ..errors import HashFormatError
from ..store import Fingerprint


def signal_named(name: str, where: str) -> signals.SignalType:
    """The signal type of that name; HashFormatError naming `where` otherwise."""
    try:
        return signals.get(name)
    except HashFormatError as e:
        raise HashFormatError(f"{where}: {e}") from None


def validated(fp: Fingerprint, where: str) -> Fingerprint:
    """The fingerprint with its value in canonical form; HashFormatError naming `where` otherwise."""
    try:
        fp.value, fp.data = signals.get(fp.format).canonical(fp.value, fp.data, source=where)
    except HashFormatError as e:
        msg = str(e)
        raise HashFormatError(msg if msg.startswith(where) else f"{where}: {msg}") from None
    return fp


def text_fingerprint(fmt: str, value: str, quality: Optional[int]) -> Fingerprint:
    """A fingerprint of a text value as read from a list (checked by validated())."""
    return Fingerprint(fmt, value, quality, signals.get(fmt).version)


def list_value(f: Fingerprint) -> str:
    """A fingerprint's value as one line (vPDQ as python-threatexchange's compact string)."""
    return signals.get(f.format).as_line(f.value, f.data)


def media_of(codec: signals.SignalType) -> str:
    """The media type of an entry holding only this signal."""
    return "video" if codec.media_type == "video" else "image"
