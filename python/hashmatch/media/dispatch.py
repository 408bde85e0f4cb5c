"""The one answer to "what is this input?": an image, a video, or neither, for every input form.

Paths (``str`` or ``os.PathLike``), bytes, binary file objects, PIL images and numpy arrays
are media; the kind comes from the content, never the name. Hash values are not media:
the pipeline asks the signal registry about them first (see ``hashmatch.pipeline``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from PIL import Image

from ..errors import DecodeError, InputTypeError
from .paths import checked_path
from .sniff import media_kind


@dataclass(frozen=True)
class Media:
    """An input recognised as media: its kind ('image' or 'video'), the input itself, its name and path."""

    kind: str
    source: Any
    name: str
    path: Optional[str] = None  # the absolute path when the input is a local file


def is_media_input(item: Any) -> bool:
    """Whether `item` has a form media comes in (path, bytes, file object, PIL image, array)."""
    return isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, Image.Image)) or \
        hasattr(item, "read")


def open_media(item: Any) -> Media:
    """Classify one input as an image or a video by its content; typed errors for anything else."""
    if isinstance(item, (np.ndarray, Image.Image)):
        return Media("image", item, f"<{type(item).__name__}>")
    if isinstance(item, (str, os.PathLike)):
        path = checked_path(item)
        return _known(Media(media_kind(path), item, path, os.path.abspath(path)))
    if isinstance(item, (bytes, bytearray, memoryview)):
        if len(item) == 0:
            raise DecodeError("media bytes are empty")
        return _known(Media(media_kind(item), item, "<bytes>"))
    if hasattr(item, "read"):
        kind = media_kind(item) if hasattr(item, "seek") else "unknown"
        # A stream that cannot seek cannot be sniffed: images are what most such uploads are.
        return Media(kind if kind != "unknown" else "image", item, getattr(item, "name", "<file>"))
    raise InputTypeError(f"expected media (a path, bytes, a file object, a PIL image or a uint8 array) or a "
                         f"hash value, not {type(item).__name__}")


def _known(media: Media) -> Media:
    # Unknown content goes to the image decoder, whose error says what the bytes are not.
    return media if media.kind != "unknown" else Media("image", media.source, media.name, media.path)
