"""Which formats a database holds for each entry, and filling the gaps from the source media.

Hashes of different algorithms cannot be converted into each other (TMK and vPDQ least of
all), so a missing format is recomputed from the media, as the industry's video hash
interoperability work does; the database must know where the media is (``media_uri``).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from . import formats
from .errors import HashmatchError, InvalidInputError
from .formats.digests import DigestFormat
from .records import Fingerprint, Record

#: What a complete entry holds, per media type.
EXPECTED_FORMATS: Dict[str, Tuple[str, ...]] = {
    "image": ("pdq", "md5", "sha256"),
    "video": ("vpdq", "tmk_pdqf", "video_md5", "video_sha256"),
}


@dataclass
class Coverage:
    """Per media type, how many live entries hold each format and how many lack it."""

    entries: Dict[str, int] = field(default_factory=dict)
    present: Dict[str, Counter] = field(default_factory=dict)
    missing: Dict[str, Counter] = field(default_factory=dict)
    rehashable: int = 0  # entries that lack something and whose media the database can reach

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready."""
        return {"entries": self.entries, "present": {k: dict(v) for k, v in self.present.items()},
                "missing": {k: dict(v) for k, v in self.missing.items()}, "rehashable": self.rehashable}


def entry_gaps(record: Record, wanted: Optional[Sequence[str]] = None) -> List[str]:
    """The formats `record` lacks among `wanted` (default: all expected for its media type)."""
    expected = EXPECTED_FORMATS.get(record.media_type, ())
    wanted = expected if wanted is None else [f for f in wanted if f in expected]
    have = {f.format for f in record.fingerprints}
    return [f for f in wanted if f not in have]


def coverage(records: Iterable[Record]) -> Tuple[Coverage, List[Dict[str, Any]]]:
    """The summary and, per live entry, the formats it holds and lacks."""
    summary, rows = Coverage(), []
    for r in records:
        if r.deleted:
            continue
        have = sorted({f.format for f in r.fingerprints})
        gaps = entry_gaps(r)
        summary.entries[r.media_type] = summary.entries.get(r.media_type, 0) + 1
        summary.present.setdefault(r.media_type, Counter()).update(have)
        summary.missing.setdefault(r.media_type, Counter()).update(gaps)
        reachable = bool(r.media_uri and os.path.isfile(r.media_uri))
        summary.rehashable += bool(gaps and reachable)
        rows.append({"id": r.id, "uid": r.uid, "media_type": r.media_type, "external_id": r.external_id,
                     "formats": have, "missing": gaps, "media_uri": r.media_uri, "media_reachable": reachable})
    return summary, rows


def compute_formats(media_type: str, path: str, wanted: Sequence[str]) -> List[Fingerprint]:
    """Fingerprints of the media file at `path` in the wanted formats (videos in one decode pass)."""
    from .ingest import SECONDS_PER_HASH, pdq_fingerprint, video_fingerprints

    out: List[Fingerprint] = []
    if media_type == "image":
        if "pdq" in wanted:
            from .image import pdq

            h = pdq(path)
            out.append(pdq_fingerprint(h, h.quality))
        digests = [d for d in map(_digest_format, wanted) if d is not None and d.media_type == "image"]
        out += [Fingerprint(d.name, d.of_file(path)) for d in digests]
        return out
    from .video_hashes import video_hashes

    return video_fingerprints(video_hashes(path, formats=[f for f in wanted], seconds_per_hash=SECONDS_PER_HASH))


def _check_same_media(r: Record) -> None:
    """Refuse media whose bytes no longer match a digest the entry holds: it is not the same file."""
    for f in r.fingerprints:
        codec = _digest_format(f.format)
        if codec is not None:  # one digest settles it
            if codec.of_file(r.media_uri) != f.value:
                raise MediaChangedError(f"{r.media_uri} no longer matches the entry's {f.format}: not the same media")
            return


def _digest_format(name: str) -> Optional[DigestFormat]:
    """The registered digest format of that name, None for any other format."""
    codec = formats.get(name)
    return codec if isinstance(codec, DigestFormat) else None


class MediaChangedError(HashmatchError):
    """The file at an entry's media_uri is not the media the entry was made from."""


@dataclass
class RehashReport:
    """What a rehash did: entries filled, entries it could not reach, and failures with reasons."""

    filled: int = 0
    fingerprints_added: int = 0
    unreachable: List[int] = field(default_factory=list)
    failed: List[Tuple[int, str]] = field(default_factory=list)


def rehash(db: Any, formats: Optional[Sequence[str]] = None, *, batch: int = 50) -> RehashReport:
    """Compute the formats entries lack from their media (where the database knows it); a bad file is skipped."""
    if formats is not None:
        known = {f for fs in EXPECTED_FORMATS.values() for f in fs}
        unknown = sorted(set(formats) - known)
        if unknown:
            raise InvalidInputError(f"cannot compute {unknown} from media; computable: {sorted(known)}")
    report, pending = RehashReport(), []
    for r in db.iter_records(include_deleted=False):
        gaps = entry_gaps(r, formats)
        if not gaps:
            continue
        if not (r.media_uri and os.path.isfile(r.media_uri)):
            report.unreachable.append(r.id)
            continue
        try:
            _check_same_media(r)
            fps = compute_formats(r.media_type, r.media_uri, gaps)
        except HashmatchError as e:
            report.failed.append((r.id, f"{type(e).__name__}: {e}"))
            continue
        # Same uid, same update time: the merge adds the missing fingerprints and nothing else.
        pending.append(Record(r.media_type, fps, r.source, r.external_id, r.labels, r.classification, r.uid,
                              r.created, r.updated, r.deleted))
        report.filled += 1
        report.fingerprints_added += len(fps)
        if len(pending) >= batch:
            db.merge_records(pending)
            pending = []
    if pending:
        db.merge_records(pending)
    return report
