"""Matching a query's hashes against the store, by each signal's index kind, and nothing else.

Hamming signals look up their codes in their space: a single code (a PDQ, with its dihedral or
trimmed variants) matches every entry with a code that close, and a video entry's frames say
when; frames (a vPDQ) match as the reference does: the percentages of the query's and the
stored video's unique good frames that found a match. Vector signals are range-searched and
confirmed by their signal (TMK's level 2); exact signals are looked up by value.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import signals
from ..errors import InvalidInputError
from ..signals import SignalType, Thresholds
from .indexes import DerivedIndexes
from .records import Match, Matches, Query
from .schema import DIGEST_FORMATS, DIGESTS_SQL, chunks


def check_radius(value: Any) -> int:
    """max_distance as an int in 0..256; InvalidInputError otherwise."""
    r = int(value)
    if not 0 <= r <= 256:
        raise InvalidInputError(f"max_distance must be in 0..256, got {value}")
    return r


def space_signals(space: str) -> Tuple[Optional[str], Optional[str]]:
    """The (single-code, frames) signal names of a Hamming space: what a hit row of each kind belongs to."""
    single = [s.name for s in signals.in_space(space) if not s.index.frames]
    frames = [s.name for s in signals.in_space(space) if s.index.frames]
    if len(single) > 1 or len(frames) > 1:
        raise InvalidInputError(f"Hamming space {space!r} has more than one signal of a kind: {single + frames}")
    return (single or [None])[0], (frames or [None])[0]


class Matcher:
    """Looks up queries in one store's rows and derived indexes; writes nothing."""

    def __init__(self, conn_of: Callable[[], Any], indexes: DerivedIndexes) -> None:
        self._conn_of = conn_of
        self.indexes = indexes

    def match(self, query: Query, th: Thresholds) -> Matches:
        """Every entry that matches one of the query's values, best first within each signal."""
        out = Matches(media_type=query.media_type)
        # Exact values first, then codes, then vectors: cheapest and surest first.
        order = {"exact": 0, "hamming": 1, "vector": 2}
        for name, variants in sorted(query.values.items(), key=lambda kv: order.get(
                getattr(signals.get(kv[0]).index, "kind", ""), 3)):
            if not variants:
                continue
            signal = signals.get(name)
            spec = signal.index
            if spec is None or not signal.matchable:
                raise InvalidInputError(f"format {name!r} is kept but never matched by hashmatch")
            if spec.kind == "hamming" and not spec.frames:
                found = self._match_codes(signal, variants, th)
                if out.query is None:
                    out.query = variants[0][1]
            elif spec.kind == "hamming":
                found = self._match_frame_variants(signal, variants, th)
            elif spec.kind == "vector":
                found = Matches(self._match_vector(signal, variants, th))
            else:
                found = Matches(self._match_exact(signal, variants))
            if found.skipped and out.skipped is None:
                out.skipped = found.skipped
            out.extend(found)
        return out

    # ----- Hamming: one code (and its variants) ------------------------------------------
    def _match_codes(self, signal: SignalType, variants: List[Tuple[str, Any]], th: Thresholds) -> Matches:
        floor = th.min_quality
        codes = []
        for i, (variant, value) in enumerate(variants):
            found, why = signal.query_codes(value, floor)
            if i == 0 and why:
                return Matches(skipped=why)  # the plain hash decides the quality gate
            codes += [(variant, c) for c in found]
        if not codes:
            return Matches()
        space = signal.index.space
        single, frames = space_signals(space)
        bits = np.frombuffer(b"".join(_pad(c.bits) for _, c in codes), np.uint8).reshape(-1, 32)
        hits = self.indexes.search(space, bits, th.radius(signal))
        rows = self._rows(list({row for q in hits for row, _ in q}))
        best: Dict[int, Tuple[int, str, str]] = {}  # entry -> (distance, variant, stored format)
        stamps: Dict[int, set] = defaultdict(set)
        for (variant, _), found in zip(codes, hits):
            for row_id, d in found:
                fp_id, entry_id, quality, frame, timestamp = rows[row_id]
                if frame is not None and quality is not None and quality < floor:
                    continue  # a poor frame of a stored video is not matched, as vPDQ does
                if frame is not None:
                    stamps[entry_id].add(timestamp)
                if entry_id not in best or d < best[entry_id][0]:
                    best[entry_id] = (d, variant, frames if frame is not None else single)
        entries = self._entries(list(best))
        out = [_match(entries[e], fmt, d, v, timestamps=tuple(sorted(stamps[e])))
               for e, (d, v, fmt) in best.items() if e in entries]
        return Matches(sorted(out, key=lambda m: (m.distance, m.entry_id)))

    # ----- Hamming: a video's frames ----------------------------------------------------
    def _match_frame_variants(self, signal: SignalType, variants: List[Tuple[str, Any]], th: Thresholds) -> Matches:
        """Each variant's frames (rotated copies): per entry the variant that matched most; the plain one gates."""
        found = self._match_frames(signal, variants[0][1], th)
        if found.skipped or len(variants) == 1:
            return found
        best = {m.entry_id: m for m in found}
        for variant, value in variants[1:]:
            for m in self._match_frames(signal, value, th):
                if m.entry_id not in best or (m.query_match_percent or 0) > (best[m.entry_id].query_match_percent or 0):
                    best[m.entry_id] = replace(m, variant=variant)
        ranked = sorted(best.values(), key=lambda m: (-(m.query_match_percent or 0), m.distance, m.entry_id))
        return Matches(ranked, media_type="video")

    def _match_frames(self, signal: SignalType, value: Any, th: Thresholds) -> Matches:
        floor = th.min_quality
        codes, skipped = signal.query_codes(value, floor)
        if skipped:
            return Matches(skipped=skipped, media_type="video")
        space = signal.index.space
        single, frames = space_signals(space)
        bits = np.frombuffer(b"".join(_pad(c.bits) for c in codes), np.uint8).reshape(-1, 32)
        hits = self.indexes.search(space, bits, th.radius(signal))
        rows = self._rows(list({row for q in hits for row, _ in q}))
        query_hits: Dict[int, set] = defaultdict(set)  # fingerprint -> query frames matched
        stored_hits: Dict[int, set] = defaultdict(set)  # fingerprint -> stored rows matched
        nearest: Dict[int, int] = {}
        stamps: Dict[int, set] = defaultdict(set)
        owner: Dict[int, Tuple[int, bool]] = {}  # fingerprint -> (entry, stored as frames)
        for i, found in enumerate(hits):
            for row_id, d in found:
                fp_id, entry_id, quality, frame, timestamp = rows[row_id]
                if quality is not None and quality < floor:
                    continue
                owner[fp_id] = (entry_id, frame is not None)
                query_hits[fp_id].add(i)
                stored_hits[fp_id].add(row_id)
                nearest[fp_id] = min(d, nearest.get(fp_id, 257))
                # Stored frames: when in the stored video; a stored single code: when in the query.
                stamps[fp_id].add(timestamp if frame is not None else codes[i].timestamp)
        denominators = self._good_row_counts(list(owner), floor)
        entries = self._entries(list({e for e, _ in owner.values()}))
        best: Dict[int, Match] = {}
        for fp_id, (entry_id, as_frames) in owner.items():
            if entry_id not in entries:
                continue
            q_pct = 100.0 * len(query_hits[fp_id]) / len(codes)
            c_pct = 100.0 * len(stored_hits[fp_id]) / max(1, denominators.get(fp_id, 0))
            if as_frames and not (q_pct >= th.frame_query_percent and c_pct >= th.frame_compared_percent):
                continue
            m = _match(entries[entry_id], frames if as_frames else single, nearest[fp_id], "original", q_pct, c_pct,
                       tuple(sorted(stamps[fp_id])))
            if entry_id not in best or (m.query_match_percent or 0) > (best[entry_id].query_match_percent or 0):
                best[entry_id] = m
        ranked = sorted(best.values(), key=lambda m: (-(m.query_match_percent or 0), m.distance, m.entry_id))
        return Matches(ranked, media_type="video")

    # ----- vectors and exact values -------------------------------------------------------
    def _match_vector(self, signal: SignalType, variants: List[Tuple[str, Any]], th: Thresholds) -> List[Match]:
        space = signal.index.space
        index = self.indexes.vectors(space)
        best: Dict[int, Tuple[float, Match]] = {}
        higher_is_better = signal.index.metric == "cosine"
        for variant, value in variants:
            fp_ids, scores = index.range_search(signal.index_vector(value), th.vector_threshold(signal))
            if not len(fp_ids):
                continue
            marks = ",".join("?" * len(fp_ids))
            stored = {fid: (eid, v, data) for fid, eid, v, data in self._conn_of().execute(
                f"SELECT id, entry_id, value, data FROM fingerprints WHERE id IN ({marks})", fp_ids.tolist())}
            entries = self._entries(list({eid for eid, _, _ in stored.values()}))
            for fid, score in zip(fp_ids.tolist(), scores.tolist()):
                eid, v, data = stored.get(fid, (None, None, None))
                if eid not in entries:
                    continue
                extra = signal.rescore(value, signal.from_stored(v, data), float(score), th)
                if extra is None:
                    continue
                m = replace(_match(entries[eid], signal.name, None, variant), **extra)
                rank = float(extra.get("level2", score)) * (1 if higher_is_better else -1)
                if eid not in best or rank > best[eid][0]:
                    best[eid] = (rank, m)
        return [m for _, m in sorted(best.values(), key=lambda t: (-t[0], t[1].entry_id))]

    def _match_exact(self, signal: SignalType, variants: List[Tuple[str, Any]]) -> List[Match]:
        out: List[Match] = []
        # The repeated IN term lets SQLite use the partial index on the built-in digests.
        use_index = f" AND format IN {DIGESTS_SQL}" if signal.name in DIGEST_FORMATS else ""
        for variant, value in variants:
            rows = self._conn_of().execute("SELECT DISTINCT entry_id FROM fingerprints WHERE format = ? AND value = ?"
                                           + use_index, (signal.name, signal.dumps(value))).fetchall()
            entries = self._entries([r[0] for r in rows])
            out += [_match(entries[e], signal.name, 0, variant) for e in sorted(entries)]
        return out

    # ----- reading rows -------------------------------------------------------------------
    def _rows(self, row_ids: List[int]) -> Dict[int, Tuple]:
        out: Dict[int, Tuple] = {}
        for chunk in chunks(row_ids):
            marks = ",".join("?" * len(chunk))
            for r in self._conn_of().execute(
                    "SELECT id, fingerprint_id, entry_id, quality, frame_number, timestamp"
                    f" FROM code_rows WHERE id IN ({marks})", chunk):
                out[r[0]] = r[1:]
        return out

    def _entries(self, entry_ids: List[int]) -> Dict[int, Dict[str, Any]]:
        """Live entries by id (tombstones left out)."""
        out = {}
        for chunk in chunks(entry_ids):
            marks = ",".join("?" * len(chunk))
            for row in self._conn_of().execute(
                    "SELECT id, media_type, source, external_id, labels, classification, uid FROM entries"
                    f" WHERE deleted = 0 AND id IN ({marks})", chunk):
                out[row[0]] = {"id": row[0], "media_type": row[1], "source": row[2], "external_id": row[3],
                               "labels": json.loads(row[4]), "classification": row[5], "uid": row[6]}
        return out

    def _good_row_counts(self, fp_ids: List[int], floor: int) -> Dict[int, int]:
        out: Dict[int, int] = {}
        for chunk in chunks(fp_ids):
            marks = ",".join("?" * len(chunk))
            out.update(self._conn_of().execute(
                f"SELECT fingerprint_id, COUNT(*) FROM code_rows WHERE fingerprint_id IN ({marks})"
                " AND (quality IS NULL OR quality >= ?) GROUP BY fingerprint_id", [*chunk, floor]).fetchall())
        return out


def _pad(bits: bytes) -> bytes:
    return bits if len(bits) == 32 else bits + bytes(32 - len(bits))


def _match(entry: Dict[str, Any], fmt: Optional[str], distance: Optional[int], variant: str,
           q_pct: Optional[float] = None, c_pct: Optional[float] = None, timestamps: Tuple[float, ...] = ()) -> Match:
    return Match(entry["id"], distance, fmt or "", entry["source"], entry["external_id"], tuple(entry["labels"]),
                 entry["classification"], entry["media_type"], variant, q_pct, c_pct, timestamps, uid=entry["uid"])
