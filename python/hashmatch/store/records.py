"""The store's model: a known item (an entry and its fingerprints), a query (hashes to look up), a match."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..signals.pdq import PDQ


@dataclass
class Fingerprint:
    """One hash of an entry: format (signal) name, value (text), quality, algorithm version, parameters.

    Binary formats (``tmk_pdqf``) keep their bytes in ``data`` and an empty ``value``.
    """

    format: str
    value: str
    quality: Optional[int] = None
    algorithm_version: Optional[str] = None
    params: Dict[str, Any] = field(default_factory=dict)
    data: Optional[bytes] = None


@dataclass
class Record:
    """An entry: what the media is, where it comes from, and its fingerprints.

    ``uid`` is the entry's identity across databases (exports carry it; imports merge on it);
    ``created``/``updated`` are Unix times; ``media_uri`` says where the media itself is;
    ``deleted`` marks a tombstone, kept so that a retraction travels with the list. A new
    record gets a uid and times when it is stored. ``external_id`` is the content id its list
    gives it (HMA's ``content_id``).
    """

    media_type: str
    fingerprints: List[Fingerprint]
    source: Optional[str] = None
    external_id: Optional[str] = None
    labels: List[str] = field(default_factory=list)
    classification: Optional[str] = None
    uid: Optional[str] = None
    created: Optional[float] = None
    updated: Optional[float] = None
    deleted: bool = False
    id: Optional[int] = None  # the entry id in the database it was read from
    media_uri: Optional[str] = None  # where the media is, when known: lets a database rehash it
    bank: Optional[str] = None  # the bank it belongs to (default: its source, else "default")
    content_uri: Optional[str] = None  # where the content was seen (a post, a report), not the media file
    notes: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)  # provenance and anything else, JSON
    disabled_until: Optional[float] = None  # Unix time: not matched before then (kept, not deleted)


@dataclass(frozen=True)
class Match:
    """One database entry that matched a query, in one format.

    ``distance`` is the Hamming distance (PDQ's; for vPDQ the closest frame pair's); video formats
    add their scores: vPDQ's percentages of query and stored frames matched and the stored
    timestamps that matched, TMK's level-1 and level-2 scores; a vector signal its ``score``.
    """

    entry_id: int
    distance: Optional[int]
    format: str
    source: Optional[str]
    external_id: Optional[str]
    labels: Tuple[str, ...]
    classification: Optional[str]
    media_type: str
    variant: str = "original"  # which query variant matched: dihedral ("rotate90"), "trimmed", ...
    query_match_percent: Optional[float] = None
    compared_match_percent: Optional[float] = None
    timestamps: Tuple[float, ...] = ()
    level1: Optional[float] = None
    level2: Optional[float] = None
    uid: Optional[str] = None  # the entry's identity across databases
    score: Optional[float] = None  # a vector signal's similarity (cosine) or distance (l2)
    bank: Optional[str] = None  # the bank of the entry
    bank_id: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        """The match as a JSON-ready dict."""
        d = asdict(self)
        d["labels"], d["timestamps"] = list(self.labels), list(self.timestamps)
        return d


class Matches(List[Match]):
    """The matches of one query, best first, with the query hash and why it was not matched.

    ``allowed`` holds the query's matches in allow banks (known false positives): when there
    are any, every other match was suppressed and the list is empty.
    """

    def __init__(self, matches: Iterable[Match] = (), query: Optional[PDQ] = None,
                 skipped: Optional[str] = None, media_type: str = "image") -> None:
        super().__init__(matches)
        self.query = query
        self.skipped = skipped  # e.g. "quality 12 < min_quality 50": not looked up
        self.media_type = media_type
        self.allowed: List[Match] = []

    def by_bank(self) -> Dict[str, List[Match]]:
        """The matches grouped by bank name, each group best first."""
        out: Dict[str, List[Match]] = {}
        for m in self:
            out.setdefault(m.bank or "", []).append(m)
        return out


#: A bank's kinds: its matches are reported ("match"), or they suppress a query's others ("allow").
BANK_KINDS = ("match", "allow")


@dataclass
class Bank:
    """A named list of entries with its own switches and thresholds.

    ``enabled_ratio`` is the fraction of lookups the bank takes part in (a stable answer per
    upload, from ``seed``); ``thresholds`` overrides the match thresholds per signal
    (``{"pdq": {"max_distance": 20}, "vpdq": {"query_percent": 90}, "tmk_pdqf": {"level2": 0.8}}``).
    An ``allow`` bank holds known false positives (meme templates, stock images): a query that
    matches it gets no matches from other banks.
    """

    name: str
    kind: str = "match"
    enabled: bool = True
    enabled_ratio: float = 1.0
    seed: int = 0
    thresholds: Dict[str, Dict[str, float]] = field(default_factory=dict)
    notes: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)
    created: Optional[float] = None
    updated: Optional[float] = None
    id: Optional[int] = None
    entries: int = 0  # live entries, when read with counts

    def to_dict(self) -> Dict[str, Any]:
        """The bank as a JSON-ready dict."""
        return asdict(self)


@dataclass
class Query:
    """What one lookup looks for: per signal name, the values to look up as (variant, value) pairs.

    The first variant of each signal is the plain hash; the others (``rotate90``, ``trimmed``, ...)
    only add matches. ``media_type`` is what the query was made from.
    """

    values: Dict[str, List[Tuple[str, Any]]] = field(default_factory=dict)
    media_type: str = "image"

    def add(self, signal: str, value: Any, variant: str = "original") -> "Query":
        """Add one value to look up; returns the query."""
        self.values.setdefault(signal, []).append((variant, value))
        return self
