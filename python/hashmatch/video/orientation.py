"""Display-matrix orientation: which of the 8 rotations and flips a frame is shown with.

Phones record portrait video as landscape frames plus a display matrix (an MP4 ``tkhd``
matrix, FFmpeg's DISPLAYMATRIX side data). Whether a hash applies it is the signal's
business (``SignalType.as_displayed``); this module only says what the matrix means, the way
the ffmpeg command line reads it by default (``-autorotate``), and turns pixels that way.

The table below was measured with Debian's ffmpeg 5.1 binary on clips whose ``tkhd`` held
each of the 8 signed permutation matrices: the first frame the command line wrote against
the stored frame under each transform. A matrix that is not one of the 8 (a rotation by
another angle, a scale) is one the command line sends through its ``rotate`` filter: it
is left as stored here, and ``transform_of`` says so by returning None.
"""

from __future__ import annotations

import struct
from typing import Dict, Optional, Tuple

import numpy as np

from ..media.dihedral import dihedral_view

#: The display matrix's (a, b, c, d) signs (FFmpeg's side-data order) -> the transform shown.
#: Names as in hashmatch.media.dihedral (PDQ's dihedral hash names).
DISPLAY_TRANSFORMS: Dict[Tuple[int, int, int, int], str] = {
    (1, 0, 0, 1): "original",
    (0, 1, -1, 0): "rotate270",  # turned clockwise
    (-1, 0, 0, -1): "rotate180",
    (0, -1, 1, 0): "rotate90",  # turned counter-clockwise
    (1, 0, 0, -1): "flipx",
    (-1, 0, 0, 1): "flipy",
    (0, 1, 1, 0): "flipplus1",  # the transpose
    (0, -1, -1, 0): "flipminus1",  # the anti-transpose
}

_MATRIX = struct.Struct("<9i")


def matrix_transform(matrix: Tuple[int, ...]) -> Optional[str]:
    """The transform a 3x3 display matrix (9 int32, FFmpeg's layout) shows frames with; None if not one of the 8."""
    a, b, _, c, d = matrix[:5]
    scale = max(abs(a), abs(b), abs(c), abs(d))
    if scale == 0:
        return None
    # Exact signed permutations only: 16.16 fixed point, any uniform scale.
    signs = tuple(0 if v == 0 else (1 if v > 0 else -1) for v in (a, b, c, d))
    if any(abs(v) not in (0, scale) for v in (a, b, c, d)):
        return None
    return DISPLAY_TRANSFORMS.get(signs)


def transform_of(frame: "object") -> Optional[str]:
    """The transform a decoded av.VideoFrame's display matrix asks for: 'original' without one, None if unusual."""
    for side in frame.side_data:
        if getattr(side.type, "name", str(side.type)).endswith("DISPLAYMATRIX"):
            raw = bytes(side)
            if len(raw) < _MATRIX.size:
                return None
            return matrix_transform(_MATRIX.unpack_from(raw))
    return "original"


def displayed(frame: "object", pixels: np.ndarray) -> np.ndarray:
    """Pixels of a decoded frame as the ffmpeg command line shows them (its display matrix applied)."""
    return dihedral_view(pixels, transform_of(frame))
