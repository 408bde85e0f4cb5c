"""Synthetic test videos, made at test time with PyAV: pans over scikit-image photographs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image


def photo(name: str) -> np.ndarray:
    """A bundled scikit-image photograph as RGB uint8."""
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    return np.ascontiguousarray(img[:, :, :3])


def pan(source: np.ndarray, width: int, height: int, frames: int, seed: int = 0,
        motion: float = 1.0) -> Callable[[int], np.ndarray]:
    """Frame i of a slow pan and zoom over `source`, scaled to width x height (motion scales the path)."""
    h, w = source.shape[:2]
    rng = np.random.default_rng(seed)
    x0, y0 = rng.uniform(0, 0.2, 2)
    x1, y1 = x0 + motion * (rng.uniform(0.2, 0.4, 2) - x0)
    z0, z1 = 0.6, 0.6 - motion * 0.15

    def frame(i: int) -> np.ndarray:
        a = i / max(1, frames - 1)
        zoom = z0 + (z1 - z0) * a
        cx, cy = (x0 + (x1 - x0) * a) * w, (y0 + (y1 - y0) * a) * h
        box = (cx, cy, cx + zoom * w, cy + zoom * h)
        return np.asarray(Image.fromarray(source).resize((width, height), Image.BILINEAR, box=box))

    return frame


def scenes(*parts: Callable[[int], np.ndarray], frames_each: int) -> Callable[[int], np.ndarray]:
    """Concatenate several frame functions, frames_each frames of each (hard scene cuts)."""
    return lambda i: parts[min(i // frames_each, len(parts) - 1)](i % frames_each)


def write_video(path: Path, frame: Callable[[int], np.ndarray], frames: int, fps: int = 30,
                codec: str = "libx264", crf: Optional[int] = 23, pix_fmt: str = "yuv420p") -> Path:
    """Encode frames 0..frames-1 of `frame` into path (container from the suffix)."""
    import av

    first = frame(0)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = first.shape[1], first.shape[0]
        stream.pix_fmt = pix_fmt
        if crf is not None and codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        for i in range(frames):
            img = first if i == 0 else frame(i)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def source_video(path: Path, seconds: int = 10, fps: int = 30, size=(320, 240)) -> Path:
    """The standard test clip: three scenes panning over three photographs."""
    n = seconds * fps
    each = (n + 2) // 3
    f = scenes(pan(photo("astronaut"), *size, each, 1), pan(photo("coffee"), *size, each, 2),
               pan(photo("chelsea"), *size, each, 3), frames_each=each)
    return write_video(path, f, n, fps)


def textured(seed: int, width: int = 256, height: int = 192, frames: int = 60,
             motion: float = 1.0) -> Callable[[int], np.ndarray]:
    """A distinct synthetic clip per seed: a pan across a smooth random colour field with sharp blocks."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((width * 2, height * 2), Image.BICUBIC)).copy()
    # Many large sharp-edged blocks: PDQ's low DCT frequencies then stay stable under re-encoding
    # (max 18 bits on these clips at 7/8 size and CRF 33), while two seeds differ by >= 98 bits.
    for _ in range(40):
        x, y = rng.integers(0, width * 2 - 60), rng.integers(0, height * 2 - 60)
        w, h = rng.integers(20, 120, size=2)
        field[y:y + h, x:x + w] = rng.integers(0, 256, size=3, dtype=np.uint8)
    return pan(field, width, height, frames, seed, motion)


def encode(path: Path, frame: Callable[[int], np.ndarray], frames: int, fps: int = 30, codec: str = "libx264",
           options: Optional[dict] = None, pix_fmt: str = "yuv420p",
           pts: Optional[Callable[[int], int]] = None, time_base: Optional[Fraction] = None) -> Path:
    """Encode frames 0..frames-1 with any codec and encoder options; pts(i) (in time_base) makes VFR."""
    import av

    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=fps, options=dict(options or {}))
        first = frame(0)
        stream.width, stream.height, stream.pix_fmt = first.shape[1], first.shape[0], pix_fmt
        if time_base is not None:
            stream.codec_context.time_base = time_base
            stream.time_base = time_base
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(frame(i), format="rgb24")
            if pts is not None:
                f.pts, f.time_base = pts(i), time_base
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
