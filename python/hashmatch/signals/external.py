"""How other systems name our formats: NCMEC hash sharing, StopNCII, the CyberTipline.

One table, read both ways. A system's name may stand for different formats by media type
(NCMEC's ``MD5`` is ``md5`` on an image entry and ``video_md5`` on a video entry).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from ..errors import HashFormatError
from .base import all_signals

def _table() -> List[Tuple[str, str, Optional[str], str]]:
    """(system, their name, media type or None for any, our format name), from every signal's external names."""
    return [(system, theirs, media, signal.name) for signal in all_signals()
            for system, theirs, media in signal.external_names]


def systems() -> Tuple[str, ...]:
    """The systems whose names the registry knows (ncmec, stopncii, cybertipline, and any a plugin adds)."""
    return tuple(sorted({row[0] for row in _table()}))


def from_external(system: str, name: str, media_type: Optional[str] = None) -> str:
    """Our format name for `system`'s `name` (media_type settles names like NCMEC's MD5)."""
    ours = _system(system)
    rows = [r for r in _table() if r[0] == ours and r[1].lower() == name.strip().lower()]
    if not rows:
        known = sorted({r[1] for r in _table() if r[0] == ours})
        raise HashFormatError(f"unknown {system} hash type {name!r}; known: {', '.join(known)}")
    fitting = [r for r in rows if r[2] is None or media_type is None or r[2] == media_type]
    formats = sorted({r[3] for r in fitting})
    if len(formats) != 1:
        raise HashFormatError(f"{system} hash type {name!r} is {' or '.join(formats) or 'none of ours'}"
                              f" depending on the media type; say media_type='image' or 'video'")
    return formats[0]


def to_external(system: str, fmt: str) -> str:
    """`system`'s name for our format `fmt`; HashFormatError when that system has none."""
    for s, theirs, _, ours in _table():
        if s == _system(system) and ours == fmt:
            return theirs
    raise HashFormatError(f"{system} has no hash type for format {fmt!r}")


def table() -> Dict[str, Dict[str, str]]:
    """Our format name -> {system: their name}, for documentation and reports."""
    out: Dict[str, Dict[str, str]] = {}
    for system, theirs, _, ours in _table():
        out.setdefault(ours, {}).setdefault(system, theirs)
    return out


def _system(system: str) -> str:
    s = system.strip().lower()
    if s not in systems():
        raise HashFormatError(f"unknown system {system!r}; known: {', '.join(systems())}")
    return s
