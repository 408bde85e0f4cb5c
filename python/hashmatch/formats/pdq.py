"""``pdq``: Meta's PDQ image hash, 64 hex characters, matched at Hamming distance <= 31."""

from __future__ import annotations

from ..errors import HashFormatError
from ..hashes import PDQ, distance
from ..records import DEFAULT_MAX_DISTANCE
from .base import Format, Serialized, register


class PDQFormat(Format):
    """PDQ as python-threatexchange's PdqSignal writes it: 64 lower-case hex characters."""

    name = "pdq"
    media_type = "image"
    threshold = DEFAULT_MAX_DISTANCE

    def loads(self, data: Serialized, *, source: str = "<value>") -> PDQ:
        """A PDQ from its hex string (any case, surrounding whitespace allowed)."""
        if isinstance(data, (bytes, bytearray)):
            data = bytes(data).decode("ascii", "replace")
        try:
            return PDQ.from_hex(data)
        except HashFormatError as e:
            raise HashFormatError(f"{source}: {e}") from None

    def dumps(self, value: PDQ) -> str:
        """64 lower-case hex characters."""
        return self.loads(value).hex if isinstance(value, str) else value.hex

    def distance(self, a, b) -> int:
        """Hamming distance, 0-256."""
        return distance(a, b)


register(PDQFormat())
