"""Animated images (GIF, APNG, animated WebP): their frames as pixels, timed by the file's own delays.

``hashmatch.pdq`` of an animation is its first frame, as the field hashes it; the pipeline
also treats it as a short video (see ``hashmatch.pipeline.records``). Frames come out one at a
time, composited on the canvas as a browser shows them (Pillow handles disposal and
blending), so memory holds one canvas whatever the frame count. Bombs are refused from the
header before a frame is decoded: the canvas against max_pixels, the frame count against
max_frames, and canvas x frames against max_decoded_pixels.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import numpy as np

from ..config import (ANIMATION_DEFAULT_DELAY_MS, ANIMATION_MIN_DELAY_MS, MAX_ANIMATION_FRAMES, MAX_ANIMATION_PIXELS,
                      MAX_PIXELS)
from ..errors import ResourceLimitError
from .image import decode_error, open_image
from .paths import checked_path
from .sniff import maybe_animated


@dataclass(frozen=True)
class AnimationFrame:
    """One frame of an animation: its index, when it is shown and for how long (seconds), its RGB pixels."""

    index: int
    timestamp: float
    duration: float
    pixels: np.ndarray


@dataclass(frozen=True)
class Animation:
    """An animated image checked against the bounds: how many frames, the canvas, where its bytes are."""

    source: Any  # a path or bytes
    name: str
    frame_count: int
    width: int
    height: int
    max_pixels: int

    def frames(self) -> Iterator[AnimationFrame]:
        """Every frame in order, composited, as RGB (one canvas in memory at a time)."""
        with _open(self.source) as fp, open_image(fp, self.name, self.max_pixels) as im:
            t = 0.0
            for i in range(self.frame_count):
                try:
                    im.seek(i)
                    pixels = np.asarray(im.convert("RGB"))
                except Exception as e:
                    raise decode_error(self.name, f"corrupt frame {i}", e, self.max_pixels) from e
                delay = im.info.get("duration") or 0
                delay = ANIMATION_DEFAULT_DELAY_MS if delay <= ANIMATION_MIN_DELAY_MS else delay
                yield AnimationFrame(i, t, delay / 1000.0, pixels)
                t += delay / 1000.0


def animation_of(item: Any, *, max_pixels: int = MAX_PIXELS, max_frames: int = MAX_ANIMATION_FRAMES,
                 max_decoded_pixels: int = MAX_ANIMATION_PIXELS) -> Optional[Animation]:
    """The animation an image input holds (a path, bytes or a file object), or None for a still image.

    ResourceLimitError for a bomb (too many frames, or too many pixels over all of them), from
    the header; DecodeError when the frames cannot be counted.
    """
    source, name = _bytes_or_path(item)
    if source is None or not maybe_animated(source):
        return None
    with _open(source) as fp, open_image(fp, name, max_pixels) as im:
        try:  # GIF: a scan of the blocks, no decoding; APNG and WebP: the header
            if not getattr(im, "is_animated", False):
                return None
            count = int(im.n_frames)
        except Exception as e:  # Pillow raises IndexError, struct.error, ... on damaged frame headers
            raise decode_error(name, "cannot count its frames", e, max_pixels) from e
        width, height = im.size
    if count > max_frames:
        raise ResourceLimitError(f"{name}: an animation of {count:,} frames, over max_frames={max_frames:,}")
    if count * width * height > max_decoded_pixels:
        raise ResourceLimitError(f"{name}: {count:,} frames of {width}x{height} = {count * width * height:,} pixels "
                                 f"to decode, over max_decoded_pixels={max_decoded_pixels:,}")
    return Animation(source, name, count, width, height, max_pixels)


def _bytes_or_path(item: Any):
    if isinstance(item, (str, os.PathLike)):
        path = checked_path(item, "image")
        return path, path
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item), "<bytes>"
    if hasattr(item, "read") and hasattr(item, "seek"):
        pos = item.tell()
        data = item.read()
        item.seek(pos)
        return data, getattr(item, "name", "<file>")
    return None, ""  # arrays, PIL images, unseekable streams: hashed as the still they are


def _open(source: Any):
    return open(source, "rb") if isinstance(source, str) else io.BytesIO(source)
