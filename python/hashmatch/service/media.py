"""Uploaded or fetched media to hashes and queries, off the event loop.

The service never hands a client's string to the pipeline as a path: media arrives as bytes
(an upload, or a body fetched by ``service.fetch``), is written to a private temporary file
(byte-based signals such as a video's MD5 need a file), and is hashed there. Hash values a
client sends are parsed by their signal type, by name, never sniffed.
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional

from .. import signals
from ..errors import HashFormatError
from ..pipeline import query_of, record_of
from ..store import Query, Record
from .http import ApiError

#: HMA's content types and the media types hashmatch gives them.
CONTENT_TYPES = {"photo": "image", "video": "video"}


def _with_file(data: bytes, fn: Any) -> Any:
    if not data:
        raise ApiError(400, "the uploaded file is empty")
    fd, name = tempfile.mkstemp(prefix="hashmatch-upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return fn(Path(name))
    finally:
        os.unlink(name)


async def record_of_bytes(data: bytes) -> Record:
    """The record (every default signal) of uploaded media, hashed in a thread."""
    return await asyncio.get_running_loop().run_in_executor(None, _with_file, data, record_of)


async def query_of_bytes(data: bytes, dihedral: bool = False, trim_borders: bool = False) -> Query:
    """The query of uploaded media (with its dihedral / trimmed variants), hashed in a thread."""
    return await asyncio.get_running_loop().run_in_executor(
        None, _with_file, data, lambda p: query_of(p, dihedral, trim_borders))


def signal_named(name: Any) -> signals.SignalType:
    """A signal type by name, 400 when it is unknown."""
    if not isinstance(name, str) or not name:
        raise ApiError(400, "signal_type is required")
    try:
        return signals.get(name)
    except HashFormatError:
        raise ApiError(400, f"No such SignalType '{name[:100]}'; known: {', '.join(signals.names())}") from None


def parse_value(signal: signals.SignalType, value: Any) -> Any:
    """A client's hash value (text; base64 for a binary format such as tmk_pdqf) parsed by its signal."""
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"a {signal.name} signal must be a non-empty string")
    data: Any = value
    if signal.binary:
        try:
            data = base64.b64decode(value, validate=True)
        except ValueError:
            raise ApiError(400, f"a {signal.name} value is binary: send it base64-encoded") from None
    try:
        return signal.loads(data)
    except HashFormatError as e:
        raise ApiError(400, f"invalid signal: {e}") from None


def text_of(fmt: str, value: str, data: Optional[bytes]) -> str:
    """A stored fingerprint as text for a JSON answer (base64 for binary formats)."""
    if data is not None and not value:
        return base64.b64encode(bytes(data)).decode("ascii")
    return value


def signals_of(record: Record) -> Dict[str, str]:
    """{format: value as text} of a record's fingerprints (HMA's ``signals`` object)."""
    return {fp.format: text_of(fp.format, fp.value, fp.data) for fp in record.fingerprints}
