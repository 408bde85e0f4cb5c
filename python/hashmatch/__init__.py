"""hashmatch: perceptual image and video hash matching with a native C++ core."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import (
    DecodeError,
    HashFormatError,
    HashmatchError,
    InputTypeError,
    InvalidInputError,
    MediaNotFoundError,
    ResourceLimitError,
)
from .hashes import PDQ, distance
from .image import DIHEDRAL_NAMES, pdq, pdq_many
from .index import HammingIndex
from .media import DEFAULT_MAX_PIXELS, load_image
from . import formats
from .store import HashDB, Match, Matches, match, open_db
from .scanning import ScanSummary, scan
from .tmk import TMK
from .video import VideoInfo, video_info
from .video_hashes import VideoHashes, tmk, video_hashes, vpdq
from .vpdq_frames import VPDQFrame, VPDQMatch
from .vpdq_frames import match as vpdq_match

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
    "VPDQFrame",
    "VPDQMatch",
    "VideoHashes",
    "VideoInfo",
    "DIHEDRAL_NAMES",
    "DEFAULT_MAX_PIXELS",
    "DecodeError",
    "HashFormatError",
    "HashmatchError",
    "InputTypeError",
    "InvalidInputError",
    "MediaNotFoundError",
    "ResourceLimitError",
    "distance",
    "formats",
    "load_image",
    "match",
    "open_db",
    "pdq",
    "pdq_many",
    "scan",
    "tmk",
    "video_hashes",
    "video_info",
    "vpdq",
    "vpdq_match",
]
