"""Image hashing: media in, PDQ hashes out, one image or many in parallel."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, List, Optional, Union

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


def pdq(
    image: ImageInput,
    *,
    dihedral: bool = False,
    exif_transpose: bool = False,
    fast_decode: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Union[PDQ, List[PDQ]]:
    """PDQ hash of an image (path, bytes, file, PIL image or uint8 array); 8 with dihedral=True."""
    pixels = load_image(image, exif_transpose=exif_transpose, fast_decode=fast_decode, max_pixels=max_pixels)
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
            return pdq(item, dihedral=dihedral, exif_transpose=exif_transpose,
                       fast_decode=fast_decode, max_pixels=max_pixels)
        except HashmatchError as e:
            if return_exceptions:
                return e
            raise

    items = list(images)
    if items and all(isinstance(item, np.ndarray) for item in items):
        return _pdq_arrays(items, n_threads, dihedral, max_pixels, return_exceptions)
    if n_threads == 1 or len(items) <= 1:
        return [one(item) for item in items]
    # Decoding (Pillow) and hashing (the core) both release the GIL, so threads scale.
    with ThreadPoolExecutor(max_workers=min(n_threads, len(items))) as pool:
        return list(pool.map(one, items))


def _pdq_arrays(items: list, threads: int, dihedral: bool, max_pixels: int, return_exceptions: bool) -> list:
    # Decoded pixels need no Python per item: one native batch, the GIL released once.
    results: list = [None] * len(items)
    good, positions = [], []
    for k, item in enumerate(items):
        try:
            good.append(check_array(item, max_pixels=max_pixels))
            positions.append(k)
        except HashmatchError as e:
            if not return_exceptions:
                raise
            results[k] = e
    hashes, qualities = _core.pdq_hash_many(good, threads, dihedral)
    for k, h, q in zip(positions, hashes, qualities):
        results[k] = [PDQ(v, q) for v in h] if dihedral else PDQ(h, q)
    return results


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
