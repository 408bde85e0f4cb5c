"""Exact float-vector range search through FAISS: cosine (inner product of unit vectors) or Euclidean.

TMK+PDQF's level 1 is a cosine search of pure averages (one 256-d dot product per stored
video); the few candidates it passes are confirmed by their signal (TMK's level 2).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from ..errors import InvalidInputError


def normalized(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Rows scaled to unit length (float32, zero rows left at zero), so inner products are cosines."""
    v = np.ascontiguousarray(vectors, np.float32).reshape(-1, dim) if np.size(vectors) % dim == 0 else None
    if v is None:
        raise InvalidInputError(f"vectors must have {dim} values each, got {np.size(vectors)} values")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)


class VectorIndex:
    """Exact range search over float vectors by id: similarity >= threshold (cosine) or distance <= it (l2)."""

    def __init__(self, dim: int, metric: str = "cosine") -> None:
        import faiss

        if metric not in ("cosine", "l2"):
            raise InvalidInputError(f"metric must be 'cosine' or 'l2', got {metric!r}")
        self.dim, self.metric = int(dim), metric
        self._faiss = faiss.IndexFlatIP(self.dim) if metric == "cosine" else faiss.IndexFlatL2(self.dim)
        self._ids = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self._ids)

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors as this index stores them: float32 rows, unit length for cosine."""
        if self.metric == "cosine":
            return normalized(vectors, self.dim)
        return np.ascontiguousarray(vectors, np.float32).reshape(-1, self.dim)

    def add(self, vectors: np.ndarray, ids: np.ndarray, *, prepared: bool = False) -> None:
        """Add (n, dim) vectors under their int64 ids."""
        vectors = np.ascontiguousarray(vectors, np.float32).reshape(-1, self.dim) if prepared else self.prepare(vectors)
        ids = np.asarray(ids, np.int64).reshape(-1)
        if len(ids) != len(vectors):
            raise InvalidInputError("one id per vector")
        if len(ids):
            self._faiss.add(vectors)
            self._ids = np.concatenate([self._ids, ids])

    def range_search(self, vector: np.ndarray, threshold: float) -> Tuple[np.ndarray, np.ndarray]:
        """(ids, scores) of stored vectors within `threshold` of `vector`, best first.

        Cosine: similarity >= threshold. L2: Euclidean distance <= threshold.
        """
        if not len(self._ids):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        q = self.prepare(vector).reshape(1, -1)
        if self.metric == "cosine":
            # faiss keeps results strictly above its threshold; step just below ours to keep ">=".
            _, sims, positions = self._faiss.range_search(q, float(np.nextafter(np.float32(threshold), -np.inf)))
            keep = sims >= threshold
            order_key = -sims[keep]
        else:
            # faiss's L2 radius is on squared distances, strictly below.
            radius = float(np.nextafter(np.float32(threshold) ** 2, np.inf))
            _, sq, positions = self._faiss.range_search(q, radius)
            sims = np.sqrt(np.maximum(sq, 0))
            keep = sims <= threshold
            order_key = sims[keep]
        sims, positions = sims[keep], positions[keep]
        order = np.argsort(order_key, kind="stable")
        return self._ids[positions[order]], sims[order]
