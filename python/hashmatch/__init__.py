"""hashmatch: perceptual image and video hash matching with a native C++ core."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import (
    DatabaseNotFoundError,
    DecodeError,
    HashFormatError,
    IndexCorruptError,
    HashmatchError,
    InputTypeError,
    InvalidInputError,
    MediaNotFoundError,
    ResourceLimitError,
)
from .media import DEFAULT_MAX_PIXELS, content_box, load_image, trim_borders
from . import signals
from . import formats
from . import lists
from .signals.pdq import DIHEDRAL_NAMES, PDQ, distance, pdq, pdq_many
from .signals.tmk import TMK
from .signals.video_hashes import VideoHashes, tmk, video_hashes, vpdq
from .signals.vpdq import VPDQFrame, VPDQMatch
from .signals.vpdq import match as vpdq_match
from .video import VideoInfo, video_info
from .index import HammingIndex, VectorIndex
from .store import Match, Matches
from .pipeline import HashDB, match, open_db
from .scan import ScanSummary, scan

try:
    __version__ = version("hashmatch")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "HashDB",
    "ScanSummary",
    "Match",
    "Matches",
    "PDQ",
    "TMK",
    "HammingIndex",
    "VectorIndex",
    "VPDQFrame",
    "VPDQMatch",
    "VideoHashes",
    "VideoInfo",
    "DIHEDRAL_NAMES",
    "DEFAULT_MAX_PIXELS",
    "DatabaseNotFoundError",
    "DecodeError",
    "HashFormatError",
    "IndexCorruptError",
    "HashmatchError",
    "InputTypeError",
    "InvalidInputError",
    "MediaNotFoundError",
    "ResourceLimitError",
    "content_box",
    "distance",
    "formats",
    "lists",
    "load_image",
    "match",
    "open_db",
    "pdq",
    "pdq_many",
    "scan",
    "signals",
    "tmk",
    "trim_borders",
    "video_hashes",
    "video_info",
    "vpdq",
    "vpdq_match",
]
