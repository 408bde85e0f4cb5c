"""The 8 rotations and flips of an image (the dihedral group), named as PDQ's dihedral hashes are."""

from __future__ import annotations

from typing import Optional

import numpy as np

#: Every transform, identity first, in the order and with the names of the reference PDQ's dihedral
#: hashes: rotations counter-clockwise (np.rot90), ``flipx`` upside down, ``flipy`` mirrored,
#: ``flipplus1`` the transpose, ``flipminus1`` the anti-transpose.
DIHEDRAL_NAMES = ("original", "rotate90", "rotate180", "rotate270", "flipx", "flipy", "flipplus1", "flipminus1")


def dihedral_view(pixels: np.ndarray, name: Optional[str]) -> np.ndarray:
    """`pixels` (H x W [x C]) under the named transform: a view, no copy (None or 'original': as they are)."""
    if name is None or name == "original":
        return pixels
    if name == "rotate90":
        return np.rot90(pixels, 1)
    if name == "rotate180":
        return np.rot90(pixels, 2)
    if name == "rotate270":
        return np.rot90(pixels, -1)
    if name == "flipx":
        return pixels[::-1]
    if name == "flipy":
        return pixels[:, ::-1]
    if name == "flipplus1":
        return np.swapaxes(pixels, 0, 1)
    if name == "flipminus1":
        return np.swapaxes(pixels, 0, 1)[::-1, ::-1]
    raise ValueError(f"unknown dihedral transform {name!r}; known: {', '.join(DIHEDRAL_NAMES)}")
