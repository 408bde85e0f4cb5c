"""Image hashing: media in, PDQ hashes out, one image or many in parallel."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, List, Optional, Tuple, Union

import numpy as np

from . import _core
from .errors import HashmatchError, InvalidInputError
from .hashes import PDQ
from .media import DEFAULT_MAX_PIXELS, ImageInput, check_array, load_image

#: The order of the 8 hashes ``pdq(..., dihedral=True)`` returns, as the reference names them.
DIHEDRAL_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flipplus1",
    "flipminus1",
)

#: Border detection defaults: a pixel is border within 16 grey levels per channel of the
#: side's colour (JPEG q50 ringing stays inside that), a line is border with <= 2% other pixels.
BORDER_TOLERANCE = 16
BORDER_MAX_OUTLIERS = 0.02
BORDER_MIN_KEEP = 0.1


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


def pdq(
    image: ImageInput,
    *,
    dihedral: bool = False,
    trim_borders: bool = False,
    exif_transpose: bool = False,
    fast_decode: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Union[PDQ, List[PDQ]]:
    """PDQ hash of an image (path, bytes, file, PIL image or uint8 array); 8 with dihedral=True.

    trim_borders=True hashes the content inside uniform borders (see trim_borders()): for queries
    only, as stored hashes made that way would not match the reference's.
    """
    pixels = load_image(image, exif_transpose=exif_transpose, fast_decode=fast_decode, max_pixels=max_pixels)
    if trim_borders:
        pixels = _trim(pixels)
    if dihedral:
        hashes, quality = _core.pdq_hash_dihedral(pixels)
        return [PDQ(h, quality) for h in hashes]
    bits, quality = _core.pdq_hash(pixels)
    return PDQ(bits, quality)


def pdq_many(
    images: Iterable[ImageInput],
    *,
    threads: Optional[int] = None,
    dihedral: bool = False,
    trim_borders: bool = False,
    exif_transpose: bool = False,
    fast_decode: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    return_exceptions: bool = False,
) -> list:
    """PDQ hashes of many images in input order, decoded and hashed on `threads` threads.

    With return_exceptions=True a bad item's HashmatchError takes its place in the list
    instead of stopping the batch.
    """
    n_threads = _default_threads() if threads is None else int(threads)
    if n_threads < 1:
        raise InvalidInputError(f"threads must be >= 1 (or None for every CPU), got {threads}")

    def one(item: ImageInput):
        try:
            return pdq(item, dihedral=dihedral, trim_borders=trim_borders, exif_transpose=exif_transpose,
                       fast_decode=fast_decode, max_pixels=max_pixels)
        except HashmatchError as e:
            if return_exceptions:
                return e
            raise

    items = list(images)
    if items and all(isinstance(item, np.ndarray) for item in items):
        return _pdq_arrays(items, n_threads, dihedral, trim_borders, max_pixels, return_exceptions)
    if n_threads == 1 or len(items) <= 1:
        return [one(item) for item in items]
    # Decoding (Pillow) and hashing (the core) both release the GIL, so threads scale.
    with ThreadPoolExecutor(max_workers=min(n_threads, len(items))) as pool:
        return list(pool.map(one, items))


def _pdq_arrays(items: list, threads: int, dihedral: bool, trim_borders: bool, max_pixels: int,
                return_exceptions: bool) -> list:
    # Decoded pixels need no Python per item: one native batch, the GIL released once.
    results: list = [None] * len(items)
    good, positions = [], []
    for k, item in enumerate(items):
        try:
            pixels = check_array(item, max_pixels=max_pixels)
            good.append(_trim(pixels) if trim_borders else pixels)
            positions.append(k)
        except HashmatchError as e:
            if not return_exceptions:
                raise
            results[k] = e
    hashes, qualities = _core.pdq_hash_many(good, threads, dihedral)
    for k, h, q in zip(positions, hashes, qualities):
        results[k] = [PDQ(v, q) for v in h] if dihedral else PDQ(h, q)
    return results


def _trim(pixels: np.ndarray) -> np.ndarray:
    top, bottom, left, right = _core.content_box(pixels, BORDER_TOLERANCE, BORDER_MAX_OUTLIERS, BORDER_MIN_KEEP)
    return pixels[top:bottom, left:right]


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
