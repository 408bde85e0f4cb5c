"""Indexes: exact Hamming search over binary codes (multi-index hashing) and exact float-vector search."""

from .hamming import CODE_BITS, CODE_BYTES, HammingIndex
from .vectors import VectorIndex, normalized

__all__ = ["CODE_BITS", "CODE_BYTES", "HammingIndex", "VectorIndex", "normalized"]
