"""Uniform borders (letterbox, pillarbox, frames): where an image's content is, and the pixels inside."""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .. import _core
from ..config import BORDER_MAX_OUTLIERS, BORDER_MIN_KEEP, BORDER_TOLERANCE
from ..errors import InvalidInputError
from .image import ImageInput, load_image


def content_box(image: ImageInput, *, tolerance: int = BORDER_TOLERANCE,
                max_outliers: float = BORDER_MAX_OUTLIERS) -> Tuple[int, int, int, int]:
    """(top, bottom, left, right), half-open, of the image inside its uniform borders (all of it if none)."""
    pixels = load_image(image)
    if not 0 <= tolerance <= 255 or not 0.0 <= max_outliers < 1.0:
        raise InvalidInputError(f"tolerance must be in 0..255 and max_outliers in [0, 1), "
                                f"got {tolerance} and {max_outliers}")
    return tuple(_core.content_box(pixels, int(tolerance), float(max_outliers), BORDER_MIN_KEEP))


def trim_borders(image: ImageInput, *, tolerance: int = BORDER_TOLERANCE,
                 max_outliers: float = BORDER_MAX_OUTLIERS) -> np.ndarray:
    """The image's pixels without uniform borders (letterbox, pillarbox, frame): a view, no copy."""
    pixels = load_image(image)
    top, bottom, left, right = content_box(pixels, tolerance=tolerance, max_outliers=max_outliers)
    return pixels[top:bottom, left:right]


def trim_pixels(pixels: np.ndarray) -> np.ndarray:
    """Already checked pixels without their uniform borders, at the default tolerances: a view."""
    top, bottom, left, right = _core.content_box(pixels, BORDER_TOLERANCE, BORDER_MAX_OUTLIERS, BORDER_MIN_KEEP)
    return pixels[top:bottom, left:right]
