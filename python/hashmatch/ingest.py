"""What the database is given: media or hashes, turned into records to add or hashes to look up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .errors import InvalidInputError
from .hashes import PDQ
from .image import DIHEDRAL_NAMES, pdq, trim_borders
from .media import load_image, media_kind
from .records import ALGORITHM_VERSIONS, Fingerprint, Record
from .vpdq_frames import VPDQFrame
from .vpdq_frames import dumps as vpdq_dumps

#: vPDQ's sampling when the database hashes a video itself.
SECONDS_PER_HASH = 1.0


def as_pdq(item: Any) -> Optional[PDQ]:
    """The PDQ an item already is (a PDQ, a 64-char hex string or 32 bytes), else None."""
    if isinstance(item, PDQ):
        return item
    if isinstance(item, str) and len(item.strip()) == 64 and not os.path.exists(item):
        return PDQ.from_hex(item)
    if isinstance(item, (bytes, bytearray)) and len(item) == 32:
        return PDQ(bytes(item))
    return None


def as_vpdq(item: Any) -> Optional[List[VPDQFrame]]:
    """The vPDQ hash an item already is (a non-empty sequence of VPDQFrame), else None."""
    if isinstance(item, (list, tuple)) and item and all(isinstance(f, VPDQFrame) for f in item):
        return list(item)
    return None


def is_video(item: Any) -> bool:
    """Whether a media item is a video, judged by its content."""
    return media_kind(item) == "video"


def record_of(item: Any, quality: Optional[int] = None) -> Record:
    """The record (media type and fingerprints) of a hash or a media item, hashing media."""
    h = as_pdq(item)
    if h is not None:
        q = quality if quality is not None else h.quality
        return Record("image", [pdq_fingerprint(h, q)])
    frames = as_vpdq(item)
    if frames is not None:
        return Record("video", [vpdq_fingerprint(frames, None)])
    if _is_tmk(item):
        return Record("video", [tmk_fingerprint(item)])
    if is_video(item):
        return video_record(item)
    h = pdq(item)
    return Record("image", [pdq_fingerprint(h, quality if quality is not None else h.quality)])


def pdq_fingerprint(h: PDQ, quality: Optional[int]) -> Fingerprint:
    """A PDQ hash as a fingerprint."""
    return Fingerprint("pdq", h.hex, quality, ALGORITHM_VERSIONS["pdq"])


def vpdq_fingerprint(frames: Sequence[VPDQFrame], seconds_per_hash: Optional[float]) -> Fingerprint:
    """A vPDQ hash as a fingerprint: the reference's text format, its sampling in the parameters."""
    params = {} if seconds_per_hash is None else {"seconds_per_hash": seconds_per_hash}
    return Fingerprint("vpdq", vpdq_dumps(frames), None, ALGORITHM_VERSIONS["vpdq"], params)


def tmk_fingerprint(tmk: Any) -> Fingerprint:
    """A TMK+PDQF hash as a fingerprint: the .tmk bytes, its periods and coefficient count in the parameters."""
    params = {"periods": [int(p) for p in tmk.periods], "fourier_coefficients": int(len(tmk.coefficients)),
              "frames_per_second": int(tmk.frames_per_second)}
    return Fingerprint("tmk_pdqf", "", None, ALGORITHM_VERSIONS["tmk_pdqf"], params, tmk.to_bytes())


def video_record(video: Any) -> Record:
    """Every video format of a video in one decode pass: vPDQ, TMK+PDQF and the file digests."""
    from .video_hashes import video_hashes

    return Record("video", video_fingerprints(video_hashes(video, seconds_per_hash=SECONDS_PER_HASH)))


def video_fingerprints(h: Any) -> List[Fingerprint]:
    """The fingerprints of computed VideoHashes, one per format it holds (vPDQ at SECONDS_PER_HASH)."""
    out = [] if h.vpdq is None else [vpdq_fingerprint(h.vpdq, SECONDS_PER_HASH)]
    out += [] if h.tmk is None else [tmk_fingerprint(h.tmk)]
    return out + [Fingerprint(name, value) for name, value in (("video_md5", h.md5), ("video_sha256", h.sha256))
                  if value is not None]


def _is_tmk(item: Any) -> bool:
    from .tmk import TMK

    return isinstance(item, TMK)


@dataclass
class Query:
    """What one match call looks up: PDQ hashes (with dihedral variant names), or a video's hashes."""

    pdq: List[Tuple[str, PDQ]] = field(default_factory=list)
    vpdq: Optional[List[VPDQFrame]] = None
    tmk: Optional[Any] = None  # a TMK
    digests: Dict[str, str] = field(default_factory=dict)  # format -> hex, e.g. video_md5
    media_type: str = "image"


def query_of(item: Any, dihedral: bool, trim_borders: bool = False) -> Query:
    """The hashes to look up for a hash, an image or a video."""
    h = as_pdq(item)
    if h is not None:
        if dihedral or trim_borders:
            raise InvalidInputError("dihedral and trim_borders matching need the image, not its hash: "
                                    "pass the media")
        return Query(pdq=[("original", h)])
    frames = as_vpdq(item)
    if frames is not None:
        return Query(vpdq=frames, media_type="video")
    if _is_tmk(item):
        return Query(tmk=item, media_type="video")
    if is_video(item):
        return video_query(item)
    if trim_borders:
        return Query(pdq=_image_variants(load_image(item), dihedral, trimmed=True))
    return Query(pdq=_image_variants(item, dihedral, trimmed=False))


#: The video formats a query computes (in one decode pass) and matches.
QUERY_VIDEO_FORMATS = ("vpdq", "tmk_pdqf", "video_md5")


def video_query(video: Any, **limits: Any) -> Query:
    """The hashes a video is matched on (vPDQ, TMK+PDQF, MD5), from one decode pass; limits go to video_hashes."""
    return query_of_video_hashes(video_hashes_for_query(video, **limits))


def video_hashes_for_query(video: Any, **limits: Any) -> Any:
    """The VideoHashes a video query needs (vPDQ at the database's sampling, TMK+PDQF, MD5)."""
    from .video_hashes import video_hashes

    return video_hashes(video, QUERY_VIDEO_FORMATS, seconds_per_hash=SECONDS_PER_HASH, **limits)


def query_of_video_hashes(h: Any) -> Query:
    """The Query of already computed VideoHashes."""
    return Query(vpdq=h.vpdq, tmk=h.tmk, digests={"video_md5": h.md5} if h.md5 else {}, media_type="video")


def _image_variants(image: Any, dihedral: bool, trimmed: bool) -> List[Tuple[str, PDQ]]:
    # The plain hash always comes first: it decides the quality gate, and a trimmed query can
    # only add matches (as "trimmed", "trimmed+rotate90", ...), never lose one.
    out = _named_hashes(image, dihedral, "")
    if trimmed:
        inner = trim_borders(image)
        if inner.shape != image.shape:
            out += _named_hashes(inner, dihedral, "trimmed")
    return out


def _named_hashes(image: Any, dihedral: bool, prefix: str) -> List[Tuple[str, PDQ]]:
    names, hashes = (DIHEDRAL_NAMES, pdq(image, dihedral=True)) if dihedral else (("original",), [pdq(image)])
    if not prefix:
        return list(zip(names, hashes))
    return [(prefix if name == "original" else f"{prefix}+{name}", h) for name, h in zip(names, hashes)]
