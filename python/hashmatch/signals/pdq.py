"""``pdq``: Meta's PDQ image hash. The value type, hashing images (one, eight dihedral, many), the codec.

64 hex characters in the reference bit order, matched at Hamming distance <= 31 when both
hashes have quality >= 50.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Tuple, Union

import numpy as np

from .. import _core
from ..config import PDQ_MAX_DISTANCE, default_threads
from ..errors import HashFormatError, HashmatchError, InputTypeError, InvalidInputError
from ..media import DEFAULT_MAX_PIXELS, ImageInput, check_array, load_image, trim_pixels
from ..media.dihedral import DIHEDRAL_NAMES  # the order of the 8 hashes dihedral=True returns
from .base import Code, IndexSpec, Serialized, SignalType, Stored, register

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


def pdq(
    image: ImageInput,
    *,
    dihedral: bool = False,
    trim_borders: bool = False,
    exif_transpose: bool = False,
    fast_decode: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Union[PDQ, List[PDQ]]:
    """PDQ hash of an image (path, bytes, file, PIL image or uint8 array); 8 with dihedral=True.

    trim_borders=True hashes the content inside uniform borders (see trim_borders()): for queries
    only, as stored hashes made that way would not match the reference's.
    """
    pixels = load_image(image, exif_transpose=exif_transpose, fast_decode=fast_decode, max_pixels=max_pixels)
    if trim_borders:
        pixels = trim_pixels(pixels)
    if dihedral:
        hashes, quality = _core.pdq_hash_dihedral(pixels)
        return [PDQ(h, quality) for h in hashes]
    bits, quality = _core.pdq_hash(pixels)
    return PDQ(bits, quality)


def pdq_many(
    images: Iterable[ImageInput],
    *,
    threads: Optional[int] = None,
    dihedral: bool = False,
    trim_borders: bool = False,
    exif_transpose: bool = False,
    fast_decode: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    return_exceptions: bool = False,
) -> list:
    """PDQ hashes of many images in input order, decoded and hashed on `threads` threads.

    With return_exceptions=True a bad item's HashmatchError takes its place in the list
    instead of stopping the batch.
    """
    n_threads = default_threads() if threads is None else int(threads)
    if n_threads < 1:
        raise InvalidInputError(f"threads must be >= 1 (or None for every CPU), got {threads}")

    def one(item: ImageInput):
        try:
            return pdq(item, dihedral=dihedral, trim_borders=trim_borders, exif_transpose=exif_transpose,
                       fast_decode=fast_decode, max_pixels=max_pixels)
        except HashmatchError as e:
            if return_exceptions:
                return e
            raise

    items = list(images)
    if items and all(isinstance(item, np.ndarray) for item in items):
        return _pdq_arrays(items, n_threads, dihedral, trim_borders, max_pixels, return_exceptions)
    if n_threads == 1 or len(items) <= 1:
        return [one(item) for item in items]
    # Decoding (Pillow) and hashing (the core) both release the GIL, so threads scale.
    with ThreadPoolExecutor(max_workers=min(n_threads, len(items))) as pool:
        return list(pool.map(one, items))


def _pdq_arrays(items: list, threads: int, dihedral: bool, trim_borders: bool, max_pixels: int,
                return_exceptions: bool) -> list:
    # Decoded pixels need no Python per item: one native batch, the GIL released once.
    results: list = [None] * len(items)
    good, positions = [], []
    for k, item in enumerate(items):
        try:
            pixels = check_array(item, max_pixels=max_pixels)
            good.append(trim_pixels(pixels) if trim_borders else pixels)
            positions.append(k)
        except HashmatchError as e:
            if not return_exceptions:
                raise
            results[k] = e
    hashes, qualities = _core.pdq_hash_many(good, threads, dihedral)
    for k, h, q in zip(positions, hashes, qualities):
        results[k] = [PDQ(v, q) for v in h] if dihedral else PDQ(h, q)
    return results


class PDQSignal(SignalType):
    """PDQ as python-threatexchange's PdqSignal writes it: 64 lower-case hex characters."""

    name = "pdq"
    media_type = "image"
    threshold = PDQ_MAX_DISTANCE
    version = "pdq-1"
    computed_from = "pixels"
    default = True
    complete = True
    index = IndexSpec("hamming", space="pdq", bits=256)
    external_names = (("ncmec", "PDQ", "image"), ("stopncii", "ImagePDQ", "image"), ("cybertipline", "PDQ", "image"))

    def loads(self, data: Serialized, *, source: str = "<value>") -> PDQ:
        """A PDQ from its hex string (any case, surrounding whitespace allowed)."""
        if isinstance(data, PDQ):
            return data
        if isinstance(data, (bytes, bytearray)):
            data = bytes(data).decode("ascii", "replace")
        try:
            return PDQ.from_hex(data)
        except HashFormatError as e:
            raise HashFormatError(f"{source}: {e}") from None

    def dumps(self, value: Any) -> str:
        """64 lower-case hex characters."""
        return self.loads(value).hex

    def value_of(self, item: Any) -> Optional[PDQ]:
        """A PDQ, a 64-character hex str, or 32 bytes is a PDQ value; anything else is not."""
        if isinstance(item, PDQ):
            return item
        if isinstance(item, str) and len(item.strip()) == PDQ_HEX_CHARS:
            return PDQ.from_hex(item)  # a str of 64 characters is a hash; pass a Path for such a file name
        if isinstance(item, (bytes, bytearray)) and len(item) == PDQ_BYTES:
            return PDQ(bytes(item))
        return None

    def canonical(self, value: str, data: Optional[bytes], *, source: str) -> Tuple[str, Optional[bytes]]:
        """64 lower-case hex characters, checked (HashFormatError names `source`)."""
        # Once per row of an imported list: check the hex directly, without a PDQ object on the way.
        if isinstance(value, str):
            s = value.strip()
            if len(s) == PDQ_HEX_CHARS:
                try:
                    if len(bytes.fromhex(s)) == PDQ_BYTES:  # fromhex skips inner spaces: count the bytes
                        return s.lower(), None
                except ValueError:
                    pass
        return super().canonical(value, data, source=source)  # its error message

    def stored_codes(self, value: str, data: Optional[bytes]) -> List[Code]:
        """One code from the stored hex (canonical, so no PDQ value is built)."""
        return [Code(bytes.fromhex(value))]

    def to_stored(self, value: PDQ) -> Stored:
        """The hex, and its quality."""
        return Stored(value.hex, None, value.quality)

    def distance(self, a: Any, b: Any) -> int:
        """Hamming distance, 0-256."""
        return distance(a, b)

    def from_pixels(self, pixels: np.ndarray) -> PDQ:
        """The PDQ of checked pixels."""
        bits, quality = _core.pdq_hash(pixels)
        return PDQ(bits, quality)

    def query_variants(self, pixels: np.ndarray, *, dihedral: bool, trimmed: Optional[np.ndarray]
                       ) -> List[Tuple[str, PDQ]]:
        """The plain hash first (it decides the quality gate); the 8 dihedral ones come from one DCT."""
        out = _named(pixels, dihedral, "")
        if trimmed is not None and trimmed.shape != pixels.shape:
            out += _named(trimmed, dihedral, "trimmed")
        return out

    def index_codes(self, value: PDQ) -> List[Code]:
        """One code: the 32 bytes, with the hash's quality."""
        return [Code(value.bits, value.quality)]


def _named(pixels: np.ndarray, dihedral: bool, prefix: str) -> List[Tuple[str, PDQ]]:
    if dihedral:
        hashes, quality = _core.pdq_hash_dihedral(pixels)
        pairs = [(name, PDQ(h, quality)) for name, h in zip(DIHEDRAL_NAMES, hashes)]
    else:
        bits, quality = _core.pdq_hash(pixels)
        pairs = [("original", PDQ(bits, quality))]
    if not prefix:
        return pairs
    return [(prefix if name == "original" else f"{prefix}+{name}", h) for name, h in pairs]


PDQ_SIGNAL = register(PDQSignal())
