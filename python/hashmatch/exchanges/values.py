"""Hash values from an exchange to store fingerprints: every type kept, through signals' external names.

A type hashmatch knows becomes that signal's fingerprint in canonical form. A value that does not
parse (a new encoding, a damaged value) and a type no signal names are kept exactly as sent,
under the entry's ``metadata["exchange"]["unparsed"]`` ({their type: value}), so nothing an
exchange sent is dropped and an export carries it.
"""

from __future__ import annotations

import base64
import functools
import binascii
from typing import Dict, List, Optional, Tuple

from .. import signals
from ..errors import HashFormatError
from ..store import Fingerprint


def fingerprints(system: Optional[str], values: Dict[str, str], media_type: str, *,
                 names: Optional[Dict[str, str]] = None) -> Tuple[List[Fingerprint], Dict[str, str]]:
    """(fingerprints, unparsed) for {their type name: value}: `system`'s names through signals.from_external,
    or `names` (their name -> our format) for systems the registry does not name."""
    out: List[Fingerprint] = []
    unparsed: Dict[str, str] = {}
    for theirs, value in values.items():
        fmt = _format(system, theirs, media_type, names)
        fp = None if fmt is None else fingerprint(fmt, value)
        if fp is None:
            unparsed[theirs] = value
        else:
            out.append(fp)
    return out, unparsed


def _format(system: Optional[str], theirs: str, media_type: str, names: Optional[Dict[str, str]]) -> Optional[str]:
    if names is not None:
        return names.get(theirs)
    return _external(system or "", theirs, media_type)


@functools.lru_cache(maxsize=4096)  # a bulk fetch asks for the same few names a million times
def _external(system: str, theirs: str, media_type: str) -> Optional[str]:
    try:
        return signals.from_external(system, theirs, media_type)
    except HashFormatError:
        return None


def fingerprint(fmt: str, value: str) -> Optional[Fingerprint]:
    """The fingerprint of one text value in format `fmt`, or None when it does not parse.

    Binary formats arrive as text: a matchable one (TMK+PDQF) as base64 of its file, which must
    parse; an opaque one (Videntifier, SSVH) is kept as the exact bytes of the text it came as
    (params ``{"wire": "text"}``) so that it goes back out unchanged.
    """
    signal = signals.get(fmt)
    try:
        if signal.binary:
            if not signal.matchable:
                return Fingerprint(fmt, "", None, signal.version, {"wire": "text"}, value.encode("utf-8"))
            data = base64.b64decode(value, validate=True)
            v, d = signal.canonical("", data, source=fmt)
            return Fingerprint(fmt, v, None, signal.version, {"wire": "base64"}, d)
        v, d = signal.canonical(value, None, source=fmt)
        return Fingerprint(fmt, v, None, signal.version, {}, d)
    except (HashFormatError, binascii.Error, ValueError):
        return None
