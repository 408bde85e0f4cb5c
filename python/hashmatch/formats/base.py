"""A hash format: one named codec (parse, serialize, validate, distance, default threshold) in a registry."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from ..errors import HashFormatError, InvalidInputError

Serialized = Union[str, bytes]


class Format:
    """One named hash format and its codec; subclasses override what differs."""

    #: The python-threatexchange signal type name (``pdq``, ``vpdq``, ``video_md5`` ...).
    name: str = ""
    #: What it hashes: "image", "video" or "any" (file digests).
    media_type: str = "any"
    #: Serialised as bytes (a file, like ``.tmk``) rather than one line of text.
    binary: bool = False
    #: Whether hashmatch can compare two values (opaque proprietary formats cannot).
    matchable: bool = True
    #: The field's default: a distance at or below it (or a similarity at or above it) matches.
    threshold: Optional[float] = None
    #: True when ``distance`` is a similarity (higher is closer), as TMK's cosine scores are.
    similarity: bool = False

    def loads(self, data: Serialized, *, source: str = "<value>") -> Any:
        """Parse a serialised value; HashFormatError names the source and what is wrong."""
        raise NotImplementedError

    def dumps(self, value: Any) -> Serialized:
        """Serialise a value the way the field exchanges it."""
        raise NotImplementedError

    def validate(self, data: Serialized, *, source: str = "<value>") -> Serialized:
        """The canonical serialisation of a value, or HashFormatError."""
        return self.dumps(self.loads(data, source=source))

    def distance(self, a: Any, b: Any) -> float:
        """Distance (or similarity, see ``similarity``) between two values."""
        raise InvalidInputError(f"format {self.name!r} cannot be compared by hashmatch")

    def is_match(self, a: Any, b: Any, threshold: Optional[float] = None) -> bool:
        """Whether two values match at `threshold` (default: the field's)."""
        t = self.threshold if threshold is None else threshold
        d = self.distance(a, b)
        return bool(d >= t if self.similarity else d <= t)

    def __repr__(self) -> str:
        return f"<hashmatch format {self.name!r} ({self.media_type})>"


class OpaqueFormat(Format):
    """A format hashmatch cannot compute or compare (PhotoDNA, Videntifier, Safer hashes...).

    Its values are kept exactly as given, stored, exported and round-tripped, never matched.
    """

    matchable = False

    def __init__(self, name: str, media_type: str = "any", binary: bool = False) -> None:
        self.name, self.media_type, self.binary = name, media_type, binary

    def loads(self, data: Serialized, *, source: str = "<value>") -> Serialized:
        """The value as given: text stripped of surrounding whitespace, bytes untouched."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            if not self.binary:
                try:
                    return bytes(data).decode("utf-8").strip()
                except UnicodeDecodeError:
                    raise HashFormatError(f"{source}: {self.name} value is not UTF-8 text") from None
            return bytes(data)
        if not isinstance(data, str):
            raise HashFormatError(f"{source}: {self.name} value must be str or bytes, not {type(data).__name__}")
        if not data.strip():
            raise HashFormatError(f"{source}: {self.name} value is empty")
        return data.strip()

    def dumps(self, value: Serialized) -> Serialized:
        """The value as it was given."""
        return value


_REGISTRY: Dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add a format to the registry under its name (names are unique)."""
    if not fmt.name or fmt.name != fmt.name.lower():
        raise InvalidInputError(f"format names are non-empty lower case, got {fmt.name!r}")
    if fmt.name in _REGISTRY:
        raise InvalidInputError(f"format {fmt.name!r} is already registered")
    _REGISTRY[fmt.name] = fmt
    return fmt


def get(name: str) -> Format:
    """The format registered under `name`; HashFormatError listing the known names otherwise."""
    if not isinstance(name, str):
        raise HashFormatError(f"format name must be a str, not {type(name).__name__}")
    found = _REGISTRY.get(name.strip().lower())
    if found is None:
        raise HashFormatError(f"unknown format name {name!r}; known: {', '.join(names())}")
    return found


def names(*, matchable: Optional[bool] = None) -> List[str]:
    """Registered format names, sorted; only the (un)matchable ones when asked."""
    return sorted(n for n, f in _REGISTRY.items() if matchable is None or f.matchable == matchable)
