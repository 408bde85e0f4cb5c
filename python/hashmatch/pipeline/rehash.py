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

from .. import signals
from ..config import VPDQ_SECONDS_PER_HASH
from ..errors import HashmatchError, InvalidInputError
from ..media import open_media
from ..signals.video_hashes import video_hashes
from ..store import Fingerprint, Record
from .records import image_fingerprints, video_fingerprints


def expected_formats(media_type: str) -> Tuple[str, ...]:
    """What a complete entry of this media type holds: every signal hashmatch computes for it."""
    return tuple(s.name for s in signals.computed(media_type, purpose="any") if s.complete)


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
    expected = expected_formats(record.media_type)
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
    if media_type == "image":
        return image_fingerprints(open_media(path), signals.of_names(wanted))
    return video_fingerprints(video_hashes(path, formats=list(wanted), seconds_per_hash=VPDQ_SECONDS_PER_HASH))


def _check_same_media(r: Record) -> None:
    """Refuse media whose bytes no longer match a digest the entry holds: it is not the same file."""
    for f in r.fingerprints:
        signal = signals.get(f.format)
        if signal.computed_from == "bytes":  # one digest settles it
            if signal.of_file(r.media_uri) != f.value:
                raise MediaChangedError(f"{r.media_uri} no longer matches the entry's {f.format}: not the same media")
            return


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
        known = {f for media in ("image", "video") for f in expected_formats(media)}
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
