"""The pipeline: media or hashes in, the store's records and queries out, for every entry point.

``HashDB`` is the store with media in: ``add`` hashes what it is given, ``match`` looks it up.
``hashmatch.match`` opens ``$HASHMATCH_DB`` (else ``./hashmatch.db``) once per process and
never creates it: a missing database is an error, never an empty answer.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from ..config import DB_ENV, DEFAULT_DB
from ..errors import DatabaseNotFoundError, InvalidInputError
from ..media import open_media
from ..store import Matches, Store, check_radius
from ..store.backends import is_url
from ..store.rows import check_labels
from .records import as_hash, query_of, record_of

Item = Any  # a path, bytes, file object, PIL image, array, or a hash value (PDQ, hex, 32 bytes, vPDQ frames, TMK)


class HashDB(Store):
    """A hash database (a SQLite file, or ``postgresql://...``): add, remove and match images, videos or hashes.

    ``HashDB(path)`` creates the database when it is missing; ``HashDB(path, create=False)``
    (what every reading entry point uses) raises DatabaseNotFoundError instead. Entries go to
    ``bank`` (default: their ``source``, else "default"); a bank that does not exist is created.
    """

    def add(self, item: Item, *, bank: Optional[str] = None, source: Optional[str] = None,
            labels: Sequence[str] = (), external_id: Optional[str] = None, classification: Optional[str] = None,
            quality: Optional[int] = None, content_uri: Optional[str] = None, notes: Optional[str] = None,
            metadata: Optional[Dict[str, Any]] = None) -> int:
        """Add one image, video or hash as a new entry; returns the entry id."""
        return self.add_many([item], bank=bank, source=source, labels=labels, external_ids=[external_id],
                             classification=classification, qualities=[quality], content_uri=content_uri,
                             notes=notes, metadata=metadata)[0]

    def add_many(self, items: Iterable[Item], *, bank: Optional[str] = None, source: Optional[str] = None,
                 labels: Sequence[str] = (), external_ids: Optional[Sequence[Optional[str]]] = None,
                 classification: Optional[str] = None, qualities: Optional[Sequence[Optional[int]]] = None,
                 content_uri: Optional[str] = None, notes: Optional[str] = None,
                 metadata: Optional[Dict[str, Any]] = None) -> List[int]:
        """Add many images, videos or hashes in one transaction (all or nothing); returns their entry ids."""
        items = list(items)
        external_ids = list(external_ids) if external_ids is not None else [None] * len(items)
        qualities = list(qualities) if qualities is not None else [None] * len(items)
        if len(external_ids) != len(items) or len(qualities) != len(items):
            raise InvalidInputError("external_ids and qualities must have one value per item")
        labels = check_labels(labels)
        records = []
        for item, ext, q in zip(items, external_ids, qualities):
            record = record_of(item, q)
            record.source, record.external_id, record.media_uri = source, ext, _media_uri(item)
            record.labels, record.classification = list(labels), classification
            record.bank, record.content_uri, record.notes = bank, content_uri, notes
            record.metadata = dict(metadata or {})
            records.append(record)
        return self.add_records(records)

    def match(self, item: Item, *, max_distance: Optional[int] = None, min_quality: Optional[int] = None,
              dihedral: bool = False, trim_borders: bool = False, banks: Optional[Sequence[str]] = None) -> Matches:
        """Entries that match an image, a video or a hash, best first.

        Images and PDQ hashes match image entries within max_distance, and video entries one of
        whose frames is that close (with the timestamps that matched). Videos match in every
        format the database holds: vPDQ as the reference does (percent of unique good-quality
        frames matched), TMK+PDQF at level 1 then level 2, and the file MD5 exactly; one Match
        per entry and format. trim_borders=True also looks up the image with its uniform borders
        (letterbox, pillarbox, frame) cut off, and keeps the closer of the two. banks limits the
        lookup to those banks (each with its own thresholds; the call's only narrow them). A match
        in an allow bank suppresses the others: the list is empty and ``.allowed`` holds it.
        """
        if max_distance is not None:
            check_radius(max_distance)  # a bad threshold fails before the media is hashed
        return self.match_query(query_of(item, dihedral, trim_borders), max_distance=max_distance,
                                min_quality=min_quality, banks=banks)

    def __enter__(self) -> "HashDB":
        return self


def _media_uri(item: Item) -> Optional[str]:
    """The absolute path of an item that is a local media file, kept so that the entry can be rehashed."""
    if as_hash(item) is None and isinstance(item, (str, os.PathLike)):
        return open_media(item).path
    return None


_OPEN: Dict[str, HashDB] = {}
_OPEN_LOCK = threading.Lock()


def open_db(db: Union[None, str, os.PathLike, HashDB] = None) -> HashDB:
    """The HashDB for `db` (a path or HashDB; None: $HASHMATCH_DB, else ./hashmatch.db), opened once, never created."""
    if isinstance(db, HashDB):
        return db
    from_env = db is None and os.environ.get(DB_ENV)
    path = os.fspath(db) if db is not None else (from_env or DEFAULT_DB)
    key = path if is_url(path) else os.path.realpath(path)
    with _OPEN_LOCK:
        found = _OPEN.get(key)
        if found is None or found.closed:
            try:
                found = HashDB(path, create=False)
            except DatabaseNotFoundError as e:
                if db is not None:
                    raise
                how = f"${DB_ENV}={from_env!r}" if from_env else f"${DB_ENV} is not set, so ./{DEFAULT_DB} was tried"
                raise DatabaseNotFoundError(f"{e} ({how}); set {DB_ENV} to your database or pass db=") from None
            _OPEN[key] = found
        return found


def match(media: Item, *, db: Union[None, str, os.PathLike, HashDB] = None, dihedral: bool = False,
          trim_borders: bool = False, banks: Optional[Sequence[str]] = None) -> Matches:
    """Match one image, video or hash against the database (opened once per process, never created)."""
    query = query_of(media, dihedral, trim_borders)  # bad arguments fail first, whatever the database
    return open_db(db).match_query(query, banks=banks)


__all__ = ["HashDB", "Item", "match", "open_db", "query_of", "record_of"]
