"""The canonical record of a known item (an entry and its fingerprints) and what a match returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

from .hashes import PDQ

#: The field's defaults: PDQ distance <= 31 of 256 is a match; quality < 50 is not matched.
DEFAULT_MAX_DISTANCE = 31
DEFAULT_MIN_QUALITY = 50
#: The version string stored with each fingerprint, per algorithm.
ALGORITHM_VERSIONS = {"pdq": "pdq-1", "vpdq": "vpdq-1", "tmk_pdqf": "tmk-pdqf-1"}
PDQ_ALGORITHM_VERSION = ALGORITHM_VERSIONS["pdq"]


@dataclass
class Fingerprint:
    """One hash of an entry: format name, value (text), quality, algorithm version, parameters.

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
    record gets a uid and times when it is stored.
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


@dataclass(frozen=True)
class Match:
    """One database entry that matched a query, in one format.

    ``distance`` is the PDQ Hamming distance (for vPDQ the closest frame pair's); video formats
    add their scores: vPDQ's percentages of query and stored frames matched and the stored
    timestamps that matched, TMK's level-1 and level-2 scores.
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

    def to_dict(self) -> Dict[str, Any]:
        """The match as a JSON-ready dict."""
        d = asdict(self)
        d["labels"], d["timestamps"] = list(self.labels), list(self.timestamps)
        return d


class Matches(List[Match]):
    """The matches of one query, best first, with the query hash and why it was not matched."""

    def __init__(self, matches: Iterable[Match] = (), query: Optional[PDQ] = None,
                 skipped: Optional[str] = None, media_type: str = "image") -> None:
        super().__init__(matches)
        self.query = query
        self.skipped = skipped  # e.g. "quality 12 < min_quality 50": not looked up
        self.media_type = media_type
