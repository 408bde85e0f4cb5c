"""Hash value types: PDQ and Hamming distance between hashes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from .errors import HashFormatError, InputTypeError

PDQ_BYTES = 32
PDQ_HEX_CHARS = 2 * PDQ_BYTES


@dataclass(frozen=True)
class PDQ:
    """A 256-bit PDQ hash and its quality (0-100; None when unknown, e.g. from a hash list)."""

    bits: bytes
    quality: Optional[int] = None

    def __post_init__(self) -> None:
        if not isinstance(self.bits, (bytes, bytearray)) or len(self.bits) != PDQ_BYTES:
            raise HashFormatError(f"PDQ bits must be {PDQ_BYTES} bytes, got {self.bits!r:.80}")
        if isinstance(self.bits, bytearray):
            object.__setattr__(self, "bits", bytes(self.bits))
        if self.quality is not None and not (0 <= self.quality <= 100):
            raise HashFormatError(f"PDQ quality must be in 0..100, got {self.quality}")

    @property
    def hex(self) -> str:
        """The 64 lower-case hex characters the reference tools print."""
        return self.bits.hex()

    @classmethod
    def from_hex(cls, text: str, quality: Optional[int] = None) -> "PDQ":
        """Parse 64 hex characters (surrounding whitespace allowed, any case)."""
        if not isinstance(text, str):
            raise InputTypeError(f"PDQ hex must be a str, not {type(text).__name__}")
        s = text.strip()
        if len(s) != PDQ_HEX_CHARS:
            raise HashFormatError(f"PDQ hex must be {PDQ_HEX_CHARS} characters, got {len(s)}: {s[:80]!r}")
        try:
            bits = bytes.fromhex(s)
        except ValueError:
            raise HashFormatError(f"PDQ hex has non-hex characters: {s!r}") from None
        return cls(bits, quality)

    def distance(self, other: "HashLike") -> int:
        """Hamming distance (0-256) to another PDQ hash."""
        return distance(self, other)

    def __str__(self) -> str:
        return self.hex

    def __repr__(self) -> str:
        return f"PDQ('{self.hex}', quality={self.quality})"


HashLike = Union[PDQ, str, bytes]


def _as_bits(h: HashLike) -> bytes:
    if isinstance(h, PDQ):
        return h.bits
    if isinstance(h, str):
        return PDQ.from_hex(h).bits
    if isinstance(h, (bytes, bytearray)):
        if len(h) != PDQ_BYTES:
            raise HashFormatError(f"hash bytes must be {PDQ_BYTES} long, got {len(h)}")
        return bytes(h)
    raise InputTypeError(f"expected a PDQ, a hex string or 32 bytes, not {type(h).__name__}")


def distance(a: HashLike, b: HashLike) -> int:
    """Hamming distance between two 256-bit hashes given as PDQ, hex or bytes."""
    x = int.from_bytes(_as_bits(a), "big") ^ int.from_bytes(_as_bits(b), "big")
    return bin(x).count("1")
