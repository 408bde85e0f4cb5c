"""The reference PDQ (`pdqhash` package) as a test oracle, and its input conventions."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np


def reference_pdq(rgb: np.ndarray) -> Tuple[str, int]:
    """Hex and quality from the `pdqhash` package (the reference C++ PDQ) on RGB pixels."""
    import pdqhash

    vector, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(vector.astype(np.uint8)).tobytes().hex(), int(quality)


def reference_dihedral(rgb: np.ndarray) -> Tuple[List[str], int]:
    """The reference's 8 dihedral hashes as hex, and the quality."""
    import pdqhash

    vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return [np.packbits(v.astype(np.uint8)).tobytes().hex() for v in vectors], int(quality)


def as_rgb(pixels: np.ndarray) -> np.ndarray:
    """What Pillow's convert("RGB") gives for gray or RGBA pixels: the reference's input."""
    if pixels.ndim == 2:
        return np.stack([pixels] * 3, axis=-1)
    return pixels[:, :, :3]
