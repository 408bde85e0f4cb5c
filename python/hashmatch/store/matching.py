"""Matching a query's hashes against the store, by each signal's index kind, and nothing else.

Hamming signals look up their codes in their space: a single code (a PDQ, with its dihedral or
trimmed variants) matches every entry with a code that close, and a video entry's frames say
when; frames (a vPDQ) match as the reference does: the percentages of the query's and the
stored video's unique good frames that found a match. Vector signals are range-searched and
confirmed by their signal (TMK's level 2); exact signals are looked up by value.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import signals
from ..errors import InvalidInputError
from ..signals import SignalType, Thresholds
from .indexes import DerivedIndexes
from .banks import BANK_COLUMNS, bank_of, takes_part
from .records import Bank, Match, Matches, Query
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


class BankView:
    """The banks one lookup uses: those the call names (or all), enabled, drawn in by their ratio."""

    def __init__(self, banks: Dict[int, Bank], names: Optional[Sequence[str]], key: bytes,
                 th: Thresholds) -> None:
        if names is not None:
            wanted = set(names)
            unknown = wanted - {b.name for b in banks.values()}
            if unknown:
                raise InvalidInputError(f"no bank named {', '.join(sorted(map(repr, unknown)))}; known: "
                                        f"{', '.join(sorted(b.name for b in banks.values())) or 'none'}")
        self.banks = {i: b for i, b in banks.items()
                      if (names is None or b.name in names) and takes_part(b, key)}
        self.th = th
        self._limits: Dict[Tuple[str, int], Dict[str, float]] = {}

    def limits(self, signal: SignalType, bank_id: int) -> Dict[str, float]:
        """The thresholds for one signal in one bank: the store's, the bank's overrides, narrowed by the call."""
        key = (signal.name, bank_id)
        if key not in self._limits:
            th = self.th
            out = {"max_distance": float(th.radius(signal)), "min_quality": float(th.min_quality),
                   "query_percent": th.frame_query_percent, "compared_percent": th.frame_compared_percent}
            if signal.index is not None and signal.index.kind == "vector":
                out.update(level1=th.vector_threshold(signal), level2=th.rescore_threshold(signal))
            out.update(self.banks[bank_id].thresholds.get(signal.name, {}))
            narrow = th.narrow or {}
            if "max_distance" in narrow:
                out["max_distance"] = min(out["max_distance"], float(narrow["max_distance"]))
            if "min_quality" in narrow:
                out["min_quality"] = max(out["min_quality"], float(narrow["min_quality"]))
            self._limits[key] = out
        return self._limits[key]

    def widest(self, signal: SignalType, key: str, lowest: bool = False) -> float:
        """The most permissive value of one threshold over the banks in use (what the search must reach)."""
        values = [self.limits(signal, b)[key] for b in self.banks]
        return (min(values) if lowest else max(values)) if values else 0.0


class Matcher:
    """Looks up queries in one store's rows and derived indexes; writes nothing."""

    def __init__(self, conn_of: Callable[[], Any], indexes: DerivedIndexes) -> None:
        self._conn_of = conn_of
        self.indexes = indexes
        self._banks: Tuple[int, Dict[int, Bank]] = (-1, {})

    def _all_banks(self) -> Dict[int, Bank]:
        self.indexes.refresh_if_changed()
        generation = self.indexes.generation
        if self._banks[0] != generation:  # every bank change is a change of the log
            rows = self._conn_of().execute(f"SELECT {BANK_COLUMNS} FROM banks").fetchall()
            self._banks = (generation, {r[0]: bank_of(r) for r in rows})
        return self._banks[1]

    def match(self, query: Query, th: Thresholds, banks: Optional[Sequence[str]] = None) -> Matches:
        """Every entry that matches one of the query's values, best first within each signal."""
        out = Matches(media_type=query.media_type)
        view = BankView(self._all_banks(), banks, _key(query), th)
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
            if spec.kind == "hamming" and not spec.frames and out.query is None:
                out.query = variants[0][1]
            if not view.banks:
                continue
            if spec.kind == "hamming" and not spec.frames:
                found = self._match_codes(signal, variants, view)
            elif spec.kind == "hamming":
                found = self._match_frame_variants(signal, variants, view)
            elif spec.kind == "vector":
                found = Matches(self._match_vector(signal, variants, view))
            else:
                found = Matches(self._match_exact(signal, variants, view))
            if found.skipped and out.skipped is None:
                out.skipped = found.skipped
            out.extend(found)
        allowed = [m for m in out if view.banks[m.bank_id].kind == "allow"]
        if allowed:  # a known false positive: nothing else is reported
            out[:] = []
            out.allowed = allowed
        return out

    # ----- Hamming: one code (and its variants) ------------------------------------------
    def _match_codes(self, signal: SignalType, variants: List[Tuple[str, Any]], view: BankView) -> Matches:
        floor = int(view.widest(signal, "min_quality", lowest=True))
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
        hits = self.indexes.search(space, bits, int(view.widest(signal, "max_distance")))
        rows = self._rows(list({row for q in hits for row, _ in q}))
        entries = self._entries(list({rows[r][1] for q in hits for r, _ in q}), view)
        plain_quality = codes[0][1].quality
        best: Dict[int, Tuple[int, str, str]] = {}  # entry -> (distance, variant, stored format)
        stamps: Dict[int, set] = defaultdict(set)
        for (variant, _), found in zip(codes, hits):
            for row_id, d in found:
                fp_id, entry_id, quality, frame, timestamp = rows[row_id]
                entry = entries.get(entry_id)
                if entry is None:
                    continue
                limits = view.limits(signal, entry["bank_id"])
                if d > limits["max_distance"] or (plain_quality is not None and plain_quality < limits["min_quality"]):
                    continue
                if frame is not None and quality is not None and quality < limits["min_quality"]:
                    continue  # a poor frame of a stored video is not matched, as vPDQ does
                if frame is not None:
                    stamps[entry_id].add(timestamp)
                if entry_id not in best or d < best[entry_id][0]:
                    best[entry_id] = (d, variant, frames if frame is not None else single)
        out = [_match(entries[e], fmt, d, v, timestamps=tuple(sorted(stamps[e]))) for e, (d, v, fmt) in best.items()]
        return Matches(sorted(out, key=lambda m: (m.distance, m.entry_id)))

    # ----- Hamming: a video's frames ----------------------------------------------------
    def _match_frame_variants(self, signal: SignalType, variants: List[Tuple[str, Any]], view: BankView) -> Matches:
        """Each variant's frames (rotated copies): per entry the variant that matched most; the plain one gates."""
        found = self._match_frames(signal, variants[0][1], view)
        if found.skipped or len(variants) == 1:
            return found
        best = {m.entry_id: m for m in found}
        for variant, value in variants[1:]:
            for m in self._match_frames(signal, value, view):
                if m.entry_id not in best or (m.query_match_percent or 0) > (best[m.entry_id].query_match_percent or 0):
                    best[m.entry_id] = replace(m, variant=variant)
        ranked = sorted(best.values(), key=lambda m: (-(m.query_match_percent or 0), m.distance, m.entry_id))
        return Matches(ranked, media_type="video")

    def _match_frames(self, signal: SignalType, value: Any, view: BankView) -> Matches:
        floor = int(view.widest(signal, "min_quality", lowest=True))
        codes, skipped = signal.query_codes(value, floor)
        if skipped:
            return Matches(skipped=skipped, media_type="video")
        space = signal.index.space
        single, frames = space_signals(space)
        bits = np.frombuffer(b"".join(_pad(c.bits) for c in codes), np.uint8).reshape(-1, 32)
        hits = self.indexes.search(space, bits, int(view.widest(signal, "max_distance")))
        rows = self._rows(list({row for q in hits for row, _ in q}))
        entries = self._entries(list({rows[r][1] for q in hits for r, _ in q}), view)
        query_hits: Dict[int, set] = defaultdict(set)  # fingerprint -> query frames matched
        stored_hits: Dict[int, set] = defaultdict(set)  # fingerprint -> stored rows matched
        nearest: Dict[int, int] = {}
        stamps: Dict[int, set] = defaultdict(set)
        owner: Dict[int, Tuple[int, bool]] = {}  # fingerprint -> (entry, stored as frames)
        for i, found in enumerate(hits):
            for row_id, d in found:
                fp_id, entry_id, quality, frame, timestamp = rows[row_id]
                entry = entries.get(entry_id)
                if entry is None:
                    continue
                limits = view.limits(signal, entry["bank_id"])
                low = limits["min_quality"]
                if d > limits["max_distance"] or (quality is not None and quality < low) or \
                        (codes[i].quality is not None and codes[i].quality < low):
                    continue
                owner[fp_id] = (entry_id, frame is not None)
                query_hits[fp_id].add(i)
                stored_hits[fp_id].add(row_id)
                nearest[fp_id] = min(d, nearest.get(fp_id, 257))
                # Stored frames: when in the stored video; a stored single code: when in the query.
                stamps[fp_id].add(timestamp if frame is not None else codes[i].timestamp)
        floors = {fp: view.limits(signal, entries[e]["bank_id"])["min_quality"] for fp, (e, _) in owner.items()}
        denominators = self._good_row_counts(floors)
        best: Dict[int, Match] = {}
        for fp_id, (entry_id, as_frames) in owner.items():
            limits = view.limits(signal, entries[entry_id]["bank_id"])
            good_queries = sum(1 for c in codes if c.quality is None or c.quality >= limits["min_quality"])
            q_pct = 100.0 * len(query_hits[fp_id]) / max(1, good_queries)
            c_pct = 100.0 * len(stored_hits[fp_id]) / max(1, denominators.get(fp_id, 0))
            if as_frames and not (q_pct >= limits["query_percent"] and c_pct >= limits["compared_percent"]):
                continue
            m = _match(entries[entry_id], frames if as_frames else single, nearest[fp_id], "original", q_pct, c_pct,
                       tuple(sorted(stamps[fp_id])))
            if entry_id not in best or (m.query_match_percent or 0) > (best[entry_id].query_match_percent or 0):
                best[entry_id] = m
        ranked = sorted(best.values(), key=lambda m: (-(m.query_match_percent or 0), m.distance, m.entry_id))
        return Matches(ranked, media_type="video")

    # ----- vectors and exact values -------------------------------------------------------
    def _match_vector(self, signal: SignalType, variants: List[Tuple[str, Any]], view: BankView) -> List[Match]:
        space = signal.index.space
        index = self.indexes.vectors(space)
        best: Dict[int, Tuple[float, Match]] = {}
        cosine = signal.index.metric == "cosine"
        reach = view.widest(signal, "level1", lowest=cosine)
        for variant, value in variants:
            fp_ids, scores = index.range_search(signal.index_vector(value), reach)
            if not len(fp_ids):
                continue
            marks = ",".join("?" * len(fp_ids))
            stored = {fid: (eid, v, data) for fid, eid, v, data in self._conn_of().execute(
                f"SELECT id, entry_id, value, data FROM fingerprints WHERE id IN ({marks})", fp_ids.tolist())}
            entries = self._entries(list({eid for eid, _, _ in stored.values()}), view)
            for fid, score in zip(fp_ids.tolist(), scores.tolist()):
                eid, v, data = stored.get(fid, (None, None, None))
                if eid not in entries:
                    continue
                limits = view.limits(signal, entries[eid]["bank_id"])
                if (score < limits["level1"]) if cosine else (score > limits["level1"]):
                    continue
                extra = signal.rescore(value, signal.from_stored(v, data if data is None else bytes(data)), float(score))
                if signal.confirm_field and extra.get(signal.confirm_field, 0.0) < limits["level2"]:
                    continue
                m = replace(_match(entries[eid], signal.name, None, variant), **extra)
                rank = float(extra.get(signal.confirm_field or "score", score)) * (1 if cosine else -1)
                if eid not in best or rank > best[eid][0]:
                    best[eid] = (rank, m)
        return [m for _, m in sorted(best.values(), key=lambda t: (-t[0], t[1].entry_id))]

    def _match_exact(self, signal: SignalType, variants: List[Tuple[str, Any]], view: BankView) -> List[Match]:
        out: List[Match] = []
        # The repeated IN term lets the database use the partial index on the built-in digests.
        use_index = f" AND format IN {DIGESTS_SQL}" if signal.name in DIGEST_FORMATS else ""
        for variant, value in variants:
            rows = self._conn_of().execute("SELECT DISTINCT entry_id FROM fingerprints WHERE format = ? AND value = ?"
                                           + use_index, (signal.name, signal.dumps(value))).fetchall()
            entries = self._entries([r[0] for r in rows], view)
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

    def _entries(self, entry_ids: List[int], view: BankView) -> Dict[int, Dict[str, Any]]:
        """Live, enabled entries by id, in the banks the lookup uses (tombstones left out)."""
        out = {}
        now = time.time()
        for chunk in chunks(entry_ids):
            marks = ",".join("?" * len(chunk))
            for row in self._conn_of().execute(
                    "SELECT id, media_type, source, external_id, labels, classification, uid, bank_id, disabled_until"
                    f" FROM entries WHERE deleted = 0 AND id IN ({marks})", chunk):
                bank = view.banks.get(row[7])
                if bank is None or (row[8] is not None and row[8] > now):
                    continue
                out[row[0]] = {"id": row[0], "media_type": row[1], "source": row[2], "external_id": row[3],
                               "labels": json.loads(row[4]), "classification": row[5], "uid": row[6],
                               "bank_id": row[7], "bank": bank.name}
        return out

    def _good_row_counts(self, floors: Dict[int, float]) -> Dict[int, int]:
        """Per fingerprint, its code rows of quality at or above that fingerprint's floor."""
        out: Dict[int, int] = {}
        by_floor: Dict[float, List[int]] = defaultdict(list)
        for fp, floor in floors.items():
            by_floor[floor].append(fp)
        for floor, fp_ids in by_floor.items():
            for chunk in chunks(fp_ids):
                marks = ",".join("?" * len(chunk))
                out.update(self._conn_of().execute(
                    f"SELECT fingerprint_id, COUNT(*) FROM code_rows WHERE fingerprint_id IN ({marks})"
                    " AND (quality IS NULL OR quality >= ?) GROUP BY fingerprint_id", [*chunk, floor]).fetchall())
        return out


def _key(query: Query) -> bytes:
    """What the enabled-ratio draw is keyed on: the query's first value, so an upload gets a stable answer."""
    for name, variants in query.values.items():
        if variants:
            value = signals.get(name).dumps(variants[0][1])
            return value if isinstance(value, bytes) else value.encode("utf-8")
    return b""


def _pad(bits: bytes) -> bytes:
    return bits if len(bits) == 32 else bits + bytes(32 - len(bits))


def _match(entry: Dict[str, Any], fmt: Optional[str], distance: Optional[int], variant: str,
           q_pct: Optional[float] = None, c_pct: Optional[float] = None, timestamps: Tuple[float, ...] = ()) -> Match:
    return Match(entry["id"], distance, fmt or "", entry["source"], entry["external_id"], tuple(entry["labels"]),
                 entry["classification"], entry["media_type"], variant, q_pct, c_pct, timestamps, uid=entry["uid"],
                 bank=entry["bank"], bank_id=entry["bank_id"])
