"""TMK+PDQF level-1 search: cosine similarity of pure averages through faiss.IndexFlatIP.

Level 1 is a cheap filter (one 256-d dot product per stored video); the few candidates it
passes are scored at level 2 from their full features by the caller.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .errors import InvalidInputError

TMK_DIMENSION = 256


def normalized(average: np.ndarray) -> np.ndarray:
    """A pure average scaled to unit length (float32), so inner products are cosines."""
    v = np.asarray(average, np.float32).reshape(-1)
    if v.shape[0] != TMK_DIMENSION:
        raise InvalidInputError(f"TMK pure average must have {TMK_DIMENSION} values, got {v.shape[0]}")
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


class TMKIndex:
    """Exact cosine range search over normalised pure averages, by fingerprint id."""

    def __init__(self) -> None:
        import faiss

        self._faiss = faiss.IndexFlatIP(TMK_DIMENSION)
        self._ids = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, averages: np.ndarray, ids: np.ndarray) -> None:
        """Add unit-length averages (n, 256) float32 under their ids."""
        averages = np.ascontiguousarray(averages, np.float32).reshape(-1, TMK_DIMENSION)
        ids = np.asarray(ids, np.int64).reshape(-1)
        if len(ids) != len(averages):
            raise InvalidInputError("one id per average")
        if len(ids):
            self._faiss.add(averages)
            self._ids = np.concatenate([self._ids, ids])

    def range_search(self, average: np.ndarray, threshold: float) -> Tuple[np.ndarray, np.ndarray]:
        """(ids, cosines) of stored averages with cosine >= threshold to `average`, best first."""
        if not len(self._ids):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        q = normalized(average).reshape(1, -1)
        # faiss keeps results strictly above its threshold; step just below ours to keep ">=".
        _, sims, positions = self._faiss.range_search(q, float(np.nextafter(np.float32(threshold), -np.inf)))
        keep = sims >= threshold
        sims, positions = sims[keep], positions[keep]
        order = np.argsort(-sims, kind="stable")
        return self._ids[positions[order]], sims[order]
