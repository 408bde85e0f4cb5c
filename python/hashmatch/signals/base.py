"""A signal type: one kind of hash with its whole story, and the registry that names them all.

A ``SignalType`` (python-threatexchange's word) holds everything hashmatch knows about one
hash: its value type and codec, how it is computed from media, its distance and default
threshold, its quality gate, which index finds it, and its names in other systems. The rest
of hashmatch asks the registry instead of naming formats, so a new signal type, built in or
a plugin in the ``hashmatch.signals`` entry-point group, touches one module.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import HashFormatError, InvalidInputError
from ..media.dihedral import DIHEDRAL_NAMES, dihedral_view

Serialized = Union[str, bytes]

#: The entry-point group third-party signal types register in.
ENTRY_POINT_GROUP = "hashmatch.signals"


@dataclass(frozen=True)
class IndexSpec:
    """How a signal's stored values are found.

    ``hamming``: binary codes of ``bits`` bits in the named ``space`` (signals sharing a space
    match each other: an image's PDQ finds a video's vPDQ frames); ``frames`` when one value is
    many codes (a video's frames). ``vector``: float vectors of ``dim`` values, compared by
    cosine (``metric='cosine'``) or Euclidean distance (``'l2'``). ``exact``: the value itself.
    """

    kind: str
    space: str = ""
    bits: int = 256
    frames: bool = False
    dim: int = 0
    metric: str = "cosine"

    def __post_init__(self) -> None:
        if self.kind not in ("hamming", "vector", "exact"):
            raise InvalidInputError(f"index kind must be 'hamming', 'vector' or 'exact', got {self.kind!r}")
        if self.kind == "hamming" and not (0 < self.bits <= 256 and self.bits % 8 == 0):
            raise InvalidInputError(f"hamming codes are 8..256 bits in whole bytes, got {self.bits}")
        if self.kind == "vector" and (self.dim <= 0 or self.metric not in ("cosine", "l2")):
            raise InvalidInputError(f"vector indexes need dim > 0 and metric 'cosine' or 'l2', got {self.dim}, "
                                    f"{self.metric!r}")
        if self.kind != "exact" and not self.space:
            raise InvalidInputError(f"a {self.kind} index needs a space name")


class Code(NamedTuple):
    """One binary code of a value: its bytes, quality, and (for frames) frame number and time."""

    bits: bytes
    quality: Optional[int] = None
    frame_number: Optional[int] = None
    timestamp: Optional[float] = None


class Stored(NamedTuple):
    """A value as the database keeps it: text, binary data, quality and parameters."""

    value: str
    data: Optional[bytes] = None
    quality: Optional[int] = None
    params: Dict[str, Any] = {}


@dataclass(frozen=True)
class Thresholds:
    """The match thresholds in force for one lookup (a database's defaults, narrowed by the call)."""

    max_distance: Optional[int] = None  # None: each Hamming signal's own threshold
    min_quality: int = 50
    frame_query_percent: float = 80.0
    frame_compared_percent: float = 0.0
    vector: Dict[str, float] = None  # type: ignore[assignment]  # signal -> threshold overrides
    rescore: Dict[str, float] = None  # type: ignore[assignment]
    narrow: Dict[str, float] = None  # type: ignore[assignment]  # what the call itself asked: only narrows a bank's

    def vector_threshold(self, signal: "SignalType") -> float:
        """The vector-search threshold for `signal`."""
        return float((self.vector or {}).get(signal.name, signal.threshold))

    def rescore_threshold(self, signal: "SignalType") -> float:
        """The confirmation threshold for `signal` (its confirm_threshold unless overridden)."""
        return float((self.rescore or {}).get(signal.name, signal.confirm_threshold or 0.0))

    def radius(self, signal: "SignalType") -> int:
        """The Hamming radius for `signal`."""
        return int(signal.threshold if self.max_distance is None else self.max_distance)


class SignalType:
    """One signal type; subclasses set the attributes and override what their hash needs."""

    #: The python-threatexchange signal type name (``pdq``, ``vpdq``, ``video_md5`` ...).
    name: str = ""
    #: What it hashes: "image", "video" or "any".
    media_type: str = "any"
    #: Serialised as bytes (a file, like ``.tmk``) rather than one line of text.
    binary: bool = False
    #: Whether hashmatch can compare two values (opaque proprietary formats cannot).
    matchable: bool = True
    #: The field's default: a distance at or below it (or a similarity at or above it) matches.
    threshold: Optional[float] = None
    #: True when ``distance`` is a similarity (higher is closer).
    similarity: bool = False
    #: The version string stored with each computed value.
    version: Optional[str] = None
    #: What hashmatch computes it from: "pixels", "frames" (a video sink), "bytes", or None.
    computed_from: Optional[str] = None
    #: Video frames are hashed as displayed (the container's display-matrix rotation and flips
    #: applied, as the ffmpeg command line does by default) rather than as stored (as libav
    #: hands them over): each signal follows its reference pipeline.
    as_displayed: bool = False
    #: Computed for every new entry of its media type without being asked for.
    default: bool = False
    #: Computed for every query of its media type (when also ``default``).
    query: bool = True
    #: A complete entry of its media type holds it: ``hashmatch db rehash`` computes it where missing.
    complete: bool = False
    #: How stored values are found; None: kept, never looked up.
    index: Optional[IndexSpec] = None
    #: A vector signal whose candidates are confirmed: the Match field rescore() sets, and its threshold.
    confirm_field: Optional[str] = None
    confirm_threshold: Optional[float] = None
    #: The suffix of the per-entry files the reference tool writes (``.tmk``), or None: exported in lists.
    file_suffix: Optional[str] = None
    #: Its names elsewhere: (system, their name, media type or None for any).
    external_names: Tuple[Tuple[str, str, Optional[str]], ...] = ()

    # ----- codec ----------------------------------------------------------------------
    def loads(self, data: Serialized, *, source: str = "<value>") -> Any:
        """Parse a serialised value; HashFormatError names the source and what is wrong."""
        raise NotImplementedError

    def dumps(self, value: Any) -> Serialized:
        """Serialise a value the way the field exchanges it."""
        raise NotImplementedError

    def validate(self, data: Serialized, *, source: str = "<value>") -> Serialized:
        """The canonical serialisation of a value, or HashFormatError."""
        return self.dumps(self.loads(data, source=source))

    def value_of(self, item: Any) -> Any:
        """`item` as a value of this signal if it already is one (a hash object), else None."""
        return None

    def to_stored(self, value: Any) -> Stored:
        """The value as the database keeps it (text or data, quality, parameters)."""
        data = self.dumps(value)
        return Stored("", data) if self.binary else Stored(data)

    def computed_params(self, options: Dict[str, Any]) -> Dict[str, Any]:
        """Parameters to keep with a value hashmatch computed with these options (e.g. a sampling rate)."""
        return {}

    def from_stored(self, value: str, data: Optional[bytes]) -> Any:
        """A value back from the database's text or data."""
        return self.loads(data if self.binary else value)

    def canonical(self, value: str, data: Optional[bytes], *, source: str) -> Tuple[str, Optional[bytes]]:
        """The stored text and data of an imported value, checked (HashFormatError names `source`)."""
        if self.binary:
            if data is None:
                raise HashFormatError(f"{source}: {self.name} needs binary data")
            self.loads(data, source=source)
            return value, data
        stored = self.to_stored(self.loads(value, source=source))
        return stored.value, None

    def as_line(self, value: str, data: Optional[bytes]) -> str:
        """A stored text value as one line of an exchanged list."""
        return value

    # ----- comparing ------------------------------------------------------------------
    def distance(self, a: Any, b: Any) -> float:
        """Distance (or similarity, see ``similarity``) between two values."""
        raise InvalidInputError(f"format {self.name!r} cannot be compared by hashmatch")

    def is_match(self, a: Any, b: Any, threshold: Optional[float] = None) -> bool:
        """Whether two values match at `threshold` (default: the field's)."""
        t = self.threshold if threshold is None else threshold
        d = self.distance(a, b)
        return bool(d >= t if self.similarity else d <= t)

    # ----- computing ------------------------------------------------------------------
    def from_pixels(self, pixels: np.ndarray) -> Any:
        """The value of checked image pixels (computed_from == "pixels")."""
        raise InvalidInputError(f"{self.name} is not computed from pixels")

    def query_variants(self, pixels: np.ndarray, *, dihedral: bool, trimmed: Optional[np.ndarray]
                       ) -> List[Tuple[str, Any]]:
        """(variant name, value) to look up for an image: the plain one first, rotations and trims after."""
        views = [("original", pixels)]
        if dihedral:
            views += _dihedral_views(pixels)
        if trimmed is not None:
            views.append(("trimmed", trimmed))
            if dihedral:
                views += [(f"trimmed+{n}", v) for n, v in _dihedral_views(trimmed)]
        return [(name, self.from_pixels(np.ascontiguousarray(v))) for name, v in views]

    def video_sink(self, video: Any, options: Dict[str, Any]) -> Any:
        """A ``hashmatch.video.FrameSink`` computing this signal from a decoded video (computed_from == "frames")."""
        raise InvalidInputError(f"{self.name} is not computed from video frames")

    def sink_result(self, sink: Any) -> Any:
        """The value a finished sink computed."""
        return sink.result()

    def from_animation(self, animation: Any, options: Dict[str, Any]) -> Optional[List[Tuple[str, Any]]]:
        """(variant, value) of an animated image (``hashmatch.media.Animation``) hashed as a short
        video, the plain value first; None when this signal is not computed from animations."""
        return None

    def sink_variants(self, sink: Any) -> List[Tuple[str, Any]]:
        """(variant name, value) a finished sink computed for a query: the plain value first."""
        return [("original", self.sink_result(sink))]

    def digester(self) -> Any:
        """A hashlib-like object (update, hexdigest) for a value computed from the file bytes."""
        raise InvalidInputError(f"{self.name} is not computed from file bytes")

    # ----- indexing -------------------------------------------------------------------
    def index_codes(self, value: Any) -> List[Code]:
        """The binary codes a stored value contributes to its Hamming space."""
        raise NotImplementedError

    def stored_codes(self, value: str, data: Optional[bytes]) -> List[Code]:
        """The index codes of a value as the database keeps it (a signal may skip building its value type)."""
        return self.index_codes(self.from_stored(value, data))

    def query_codes(self, value: Any, min_quality: int) -> Tuple[List[Code], Optional[str]]:
        """The codes a query value looks up, and why it is not looked up (a quality gate) or None."""
        codes = self.index_codes(value)
        low = [c for c in codes if c.quality is not None and c.quality < min_quality]
        if codes and len(low) == len(codes):
            return [], f"quality {low[0].quality} < min_quality {min_quality}"
        return [c for c in codes if c.quality is None or c.quality >= min_quality], None

    def index_vector(self, value: Any) -> np.ndarray:
        """The float vector a value contributes to its vector space (kind 'vector')."""
        raise NotImplementedError

    def rescore(self, query: Any, stored: Any, score: float) -> Dict[str, float]:
        """Match fields for a vector-search candidate with its score; ``confirm_field`` among them, if any."""
        return {"score": float(score)}

    def __repr__(self) -> str:
        return f"<hashmatch signal {self.name!r} ({self.media_type})>"


class OpaqueSignal(SignalType):
    """A format hashmatch cannot compute or compare (PhotoDNA, Videntifier, Safer hashes...).

    Its values are kept exactly as given, stored, exported and round-tripped, never matched.
    """

    matchable = False

    def __init__(self, name: str, media_type: str = "any", binary: bool = False,
                 external_names: Sequence[Tuple[str, str, Optional[str]]] = ()) -> None:
        self.name, self.media_type, self.binary = name, media_type, binary
        self.external_names = tuple(external_names)

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


def _dihedral_views(pixels: np.ndarray) -> List[Tuple[str, np.ndarray]]:
    """The 7 rotated and flipped views of an image, named as PDQ's dihedral hashes are."""
    return [(name, dihedral_view(pixels, name)) for name in DIHEDRAL_NAMES[1:]]


# ----- the registry -------------------------------------------------------------------------

_REGISTRY: Dict[str, SignalType] = {}
_PLUGINS_LOADED = False
_LOCK = threading.RLock()


def register(signal: SignalType) -> SignalType:
    """Add a signal type to the registry under its name (names are unique, lower case)."""
    if isinstance(signal, type):
        signal = signal()
    if not isinstance(signal, SignalType):
        raise InvalidInputError(f"register() takes a hashmatch SignalType, not {type(signal).__name__}")
    if not signal.name or signal.name != signal.name.lower() or not signal.name.replace("_", "").isalnum():
        raise InvalidInputError(f"signal names are non-empty lower-case words, got {signal.name!r}")
    with _LOCK:
        if signal.name in _REGISTRY:
            raise InvalidInputError(f"signal type {signal.name!r} is already registered")
        _REGISTRY[signal.name] = signal
    return signal


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    with _LOCK:
        if _PLUGINS_LOADED:
            return
        _PLUGINS_LOADED = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in _REGISTRY:
                continue  # registered already (the plugin module was imported first)
            try:
                obj = ep.load()
            except Exception as e:
                raise InvalidInputError(f"signal plugin {ep.name!r} ({ep.value}) failed to load: "
                                        f"{type(e).__name__}: {e}") from e
            register(obj)


def get(name: str) -> SignalType:
    """The signal type registered under `name`; HashFormatError listing the known names otherwise."""
    found = _REGISTRY.get(name)  # the common case, once per row of a bulk import: the exact name
    if found is not None:
        return found
    if not isinstance(name, str):
        raise HashFormatError(f"format name must be a str, not {type(name).__name__}")
    key = name.strip().lower()
    found = _REGISTRY.get(key)
    if found is None:
        _load_plugins()
        found = _REGISTRY.get(key)
    if found is None:
        raise HashFormatError(f"unknown format name {name!r}; known: {', '.join(names())}")
    return found


def all_signals() -> List[SignalType]:
    """Every registered signal type: the built-in ones first (PDQ, vPDQ, TMK+PDQF, digests), then plugins."""
    _load_plugins()
    return list(_REGISTRY.values())


def names(*, matchable: Optional[bool] = None) -> List[str]:
    """Registered signal names, sorted; only the (un)matchable ones when asked."""
    return sorted(s.name for s in all_signals() if matchable is None or s.matchable == matchable)


def computed(media_type: str, *, purpose: str = "record") -> List[SignalType]:
    """The signal types computed unasked for media of this type: for a new entry ('record'), a
    query ('query'), or every one hashmatch can compute ('any')."""
    def wanted(s: SignalType) -> bool:
        if purpose == "any":
            return True
        return s.default and (purpose == "record" or (s.query and s.matchable and s.index is not None))

    return [s for s in all_signals() if s.computed_from is not None and s.media_type in (media_type, "any")
            and wanted(s)]


def value_of(item: Any) -> Optional[Tuple[SignalType, Any]]:
    """(signal, value) when `item` already is a hash value of a registered signal, else None."""
    for signal in all_signals():
        value = signal.value_of(item)
        if value is not None:
            return signal, value
    return None


def in_space(space: str) -> List[SignalType]:
    """The Hamming or vector signals that share an index space."""
    return [s for s in all_signals() if s.index is not None and s.index.space == space]


def spaces(kind: str) -> Dict[str, IndexSpec]:
    """Every index space of a kind ('hamming' or 'vector') and its spec."""
    out: Dict[str, IndexSpec] = {}
    for s in all_signals():
        if s.index is not None and s.index.kind == kind:
            spec = out.setdefault(s.index.space, s.index)
            if (spec.bits, spec.dim, spec.metric) != (s.index.bits, s.index.dim, s.index.metric):
                raise InvalidInputError(f"signals in space {s.index.space!r} disagree on its shape")
    return out


def of_names(formats: Iterable[str]) -> List[SignalType]:
    """The signal types for a list of names, in order, without repeats."""
    return [get(n) for n in dict.fromkeys(formats)]
