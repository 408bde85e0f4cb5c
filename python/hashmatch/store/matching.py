"""HashDB's matching: images and PDQ through the Hamming index, vPDQ frame by frame, TMK+PDQF, digests.

A mixin of HashDB: it reads the connection, the indexes and the thresholds HashDB holds, and
writes nothing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import InvalidInputError
from ..ingest import Query, query_of
from ..records import Match, Matches
from ..vpdq_frames import unique_good_frames
from .schema import DIGESTS_SQL, chunks

Item = Any  # a path, bytes, file object, PIL image, array, PDQ / hex / 32 bytes, or vPDQ frames


def check_radius(value: Any) -> int:
    """max_distance as an int in 0..256; InvalidInputError otherwise."""
    r = int(value)
    if not 0 <= r <= 256:
        raise InvalidInputError(f"max_distance must be in 0..256, got {value}")
    return r


class Matching:
    """match(), match_query() and match_hash() for HashDB."""

    def match(self, item: Item, *, max_distance: Optional[int] = None, min_quality: Optional[int] = None,
              dihedral: bool = False, trim_borders: bool = False) -> Matches:
        """Entries that match an image, a video or a hash, best first.

        Images and PDQ hashes match image entries within max_distance, and video entries one of
        whose frames is that close (with the timestamps that matched). Videos match in every
        format the database holds: vPDQ as the reference does (percent of unique good-quality
        frames matched), TMK+PDQF at level 1 then level 2, and the file MD5 exactly; one Match
        per entry and format. trim_borders=True also looks up the image with its uniform borders
        (letterbox, pillarbox, frame) cut off, and keeps the closer of the two.
        """
        if max_distance is not None:
            check_radius(max_distance)  # a bad threshold fails before the media is hashed
        return self.match_query(query_of(item, dihedral, trim_borders), max_distance=max_distance,
                                min_quality=min_quality)

    def match_query(self, query: Query, *, max_distance: Optional[int] = None,
                    min_quality: Optional[int] = None) -> Matches:
        """Entries that match hashes already computed (an ``ingest.Query``), best first."""
        radius = self.max_distance if max_distance is None else check_radius(max_distance)
        floor = self.min_quality if min_quality is None else int(min_quality)
        return self._match_query(query, radius, floor)

    def match_hash(self, fmt: str, value: Any, *, max_distance: Optional[int] = None,
                   min_quality: Optional[int] = None) -> Matches:
        """Match a hash given in any format by name (``pdq``, ``vpdq``, ``tmk_pdqf``, ``video_md5`` ...)."""
        from .. import formats

        codec = formats.get(fmt)
        if not codec.matchable:
            raise InvalidInputError(f"format {codec.name!r} is kept but never matched by hashmatch")
        parsed = codec.loads(value) if isinstance(value, (str, bytes, bytearray)) else value
        radius = self.max_distance if max_distance is None else check_radius(max_distance)
        floor = self.min_quality if min_quality is None else int(min_quality)
        if codec.name == "pdq":
            query = Query(pdq=[("original", parsed)])
        elif codec.name == "vpdq":
            query = Query(vpdq=parsed, media_type="video")
        elif codec.name == "tmk_pdqf":
            query = Query(tmk=parsed, media_type="video")
        else:
            query = Query(digests={codec.name: parsed}, media_type=codec.media_type)
        return self._match_query(query, radius, floor)

    def _match_query(self, query: Query, radius: int, floor: int) -> Matches:
        if query.pdq:
            return self._match_pdq(query, radius, floor)
        out = Matches(media_type=query.media_type)
        for fmt, value in query.digests.items():
            out.extend(self._match_digest(fmt, value))
        if query.vpdq is not None:
            found = self._match_vpdq(query, radius, floor)
            out.extend(found)
            out.skipped = found.skipped
        if query.tmk is not None:
            out.extend(self._match_tmk(query.tmk))
        return out

    def _match_pdq(self, query: Query, radius: int, floor: int) -> Matches:
        first = query.pdq[0][1]
        if first.quality is not None and first.quality < floor:
            return Matches(query=first, skipped=f"quality {first.quality} < min_quality {floor}")
        codes = np.frombuffer(b"".join(h.bits for _, h in query.pdq), np.uint8).reshape(-1, 32)
        hits = self._search(codes, radius)
        if not hits:
            return Matches(query=first)
        rows = self._rows(list({row for q in hits for row, _ in q}))
        best: Dict[int, Tuple[int, str]] = {}  # entry -> (distance, variant)
        stamps: Dict[int, set] = defaultdict(set)
        for (variant, _), found in zip(query.pdq, hits):
            for row_id, d in found:
                fp_id, entry_id, quality, frame, timestamp = rows[row_id]
                if frame is not None and quality is not None and quality < floor:
                    continue  # a poor frame of a stored video is not matched, as vPDQ does
                if frame is not None:
                    stamps[entry_id].add(timestamp)
                if entry_id not in best or d < best[entry_id][0]:
                    best[entry_id] = (d, variant)
        entries = self._entries(list(best))
        out = [self._make_match(entries[e], d, v, timestamps=tuple(sorted(stamps[e])))
               for e, (d, v) in best.items() if e in entries]
        return Matches(sorted(out, key=lambda m: (m.distance, m.entry_id)), query=first)

    def _match_vpdq(self, query: Query, radius: int, floor: int) -> Matches:
        frames = unique_good_frames(query.vpdq, floor)
        if not frames:
            return Matches(skipped=f"no frame of quality >= {floor}", media_type="video")
        codes = np.frombuffer(bytes.fromhex("".join(f.hex for f in frames)), np.uint8).reshape(-1, 32)
        hits = self._search(codes, radius)
        rows = self._rows(list({row for q in hits for row, _ in q}))
        query_hits: Dict[int, set] = defaultdict(set)  # fingerprint -> query frames matched
        stored_hits: Dict[int, set] = defaultdict(set)  # fingerprint -> stored rows matched
        nearest: Dict[int, int] = {}
        stamps: Dict[int, set] = defaultdict(set)
        owner: Dict[int, int] = {}
        for i, found in enumerate(hits):
            for row_id, d in found:
                fp_id, entry_id, quality, frame, timestamp = rows[row_id]
                if quality is not None and quality < floor:
                    continue
                owner[fp_id] = entry_id
                query_hits[fp_id].add(i)
                stored_hits[fp_id].add(row_id)
                nearest[fp_id] = min(d, nearest.get(fp_id, 257))
                # Video entries: when in the stored video; image entries: when in the query.
                stamps[fp_id].add(timestamp if frame is not None else frames[i].timestamp)
        denominators = self._good_row_counts(list(owner), floor)
        entries = self._entries(list(set(owner.values())))
        best: Dict[int, Match] = {}
        for fp_id, entry_id in owner.items():
            if entry_id not in entries:
                continue
            entry = entries[entry_id]
            q_pct = 100.0 * len(query_hits[fp_id]) / len(frames)
            c_pct = 100.0 * len(stored_hits[fp_id]) / max(1, denominators.get(fp_id, 0))
            if entry["media_type"] == "video" and not (q_pct >= self.vpdq_query_percent
                                                       and c_pct >= self.vpdq_compared_percent):
                continue
            m = self._make_match(entry, nearest[fp_id], "original", q_pct, c_pct, tuple(sorted(stamps[fp_id])))
            if entry_id not in best or (m.query_match_percent or 0) > (best[entry_id].query_match_percent or 0):
                best[entry_id] = m
        ranked = sorted(best.values(), key=lambda m: (-(m.query_match_percent or 0), m.distance, m.entry_id))
        return Matches(ranked, media_type="video")

    def _match_digest(self, fmt: str, value: str) -> List[Match]:
        # The repeated IN term lets SQLite use the partial index on digests.
        rows = self._conn.execute("SELECT DISTINCT entry_id FROM fingerprints WHERE format = ? AND value = ?"
                                  f" AND format IN {DIGESTS_SQL}", (fmt, value)).fetchall()
        entries = self._entries([r[0] for r in rows])
        return [replace(self._make_match(entries[e], 0, "original"), format=fmt) for e in sorted(entries)]

    def _match_tmk(self, tmk: Any) -> List[Match]:
        from ..formats import loads

        index = self._tmk_index()
        fp_ids, cosines = index.range_search(tmk.pure_average, self.tmk_level1)
        if not len(fp_ids):
            return []
        marks = ",".join("?" * len(fp_ids))
        blobs = dict(((fid, (eid, data)) for fid, eid, data in self._conn.execute(
            f"SELECT id, entry_id, data FROM fingerprints WHERE id IN ({marks})", fp_ids.tolist())))
        entries = self._entries(list({eid for eid, _ in blobs.values()}))
        best: Dict[int, Match] = {}
        for fid, level1 in zip(fp_ids.tolist(), cosines.tolist()):
            eid, data = blobs.get(fid, (None, None))
            if eid not in entries:
                continue
            stored = loads("tmk_pdqf", data)
            level2 = tmk.level2(stored)
            if level2 < self.tmk_level2:
                continue
            m = replace(self._make_match(entries[eid], None, "original"), format="tmk_pdqf", level1=float(level1),
                        level2=float(level2))
            if eid not in best or level2 > (best[eid].level2 or 0):
                best[eid] = m
        return sorted(best.values(), key=lambda m: (-(m.level2 or 0), m.entry_id))

    def _tmk_index(self) -> Any:
        from ..tmk_index import TMKIndex

        self._refresh_if_changed()
        with self._lock.write():
            if self._tmk is None or self._tmk_generation != self._generation:
                index = TMKIndex()
                rows = self._conn.execute(
                    "SELECT t.fingerprint_id, t.average FROM tmk_rows t JOIN entries e ON e.id = t.entry_id"
                    " WHERE e.deleted = 0 ORDER BY t.fingerprint_id").fetchall()
                if rows:
                    index.add(np.frombuffer(b"".join(a for _, a in rows), np.float32).reshape(len(rows), -1),
                              np.array([i for i, _ in rows], np.int64))
                self._tmk, self._tmk_generation = index, self._generation
            return self._tmk

    def _make_match(self, entry: Dict[str, Any], distance: int, variant: str, q_pct: Optional[float] = None,
                    c_pct: Optional[float] = None, timestamps: Tuple[float, ...] = ()) -> Match:
        fmt = "pdq" if entry["media_type"] == "image" else "vpdq"
        return Match(entry["id"], distance, fmt, entry["source"], entry["external_id"], tuple(entry["labels"]),
                     entry["classification"], entry["media_type"], variant, q_pct, c_pct, timestamps,
                     uid=entry["uid"])

    def _search(self, codes: np.ndarray, radius: int) -> List[List[Tuple[int, int]]]:
        """(row id, distance) hits per query code, against the current rows."""
        self._refresh_if_changed()
        with self._lock.read():
            if self._index is None or len(self._index) == 0:
                return [[] for _ in range(len(codes))]
            lims, distances, row_ids = self._index.range_search(codes, radius=radius)
        return [list(zip(row_ids[lims[q]:lims[q + 1]].tolist(), distances[lims[q]:lims[q + 1]].tolist()))
                for q in range(len(codes))]

    def _rows(self, row_ids: List[int]) -> Dict[int, Tuple]:
        out: Dict[int, Tuple] = {}
        for chunk in chunks(row_ids):
            marks = ",".join("?" * len(chunk))
            for r in self._conn.execute(
                    "SELECT id, fingerprint_id, entry_id, quality, frame_number, timestamp"
                    f" FROM pdq_rows WHERE id IN ({marks})",
                    chunk):
                out[r[0]] = r[1:]
        return out

    def _entries(self, entry_ids: List[int]) -> Dict[int, Dict[str, Any]]:
        """Live entries by id (tombstones left out)."""
        out = {}
        for chunk in chunks(entry_ids):
            marks = ",".join("?" * len(chunk))
            for row in self._conn.execute(
                    "SELECT id, media_type, source, external_id, labels, classification, uid FROM entries"
                    f" WHERE deleted = 0 AND id IN ({marks})", chunk):
                out[row[0]] = {"id": row[0], "media_type": row[1], "source": row[2], "external_id": row[3],
                               "labels": json.loads(row[4]), "classification": row[5], "uid": row[6]}
        return out

    def _good_row_counts(self, fp_ids: List[int], floor: int) -> Dict[int, int]:
        out: Dict[int, int] = {}
        for chunk in chunks(fp_ids):
            marks = ",".join("?" * len(chunk))
            out.update(self._conn.execute(
                f"SELECT fingerprint_id, COUNT(*) FROM pdq_rows WHERE fingerprint_id IN ({marks})"
                " AND (quality IS NULL OR quality >= ?) GROUP BY fingerprint_id", [*chunk, floor]).fetchall())
        return out
