"""The edits platforms and re-uploaders make to images and videos, by name and strength.

Image transforms take and return RGB uint8 arrays (``HxWx3``); each is deterministic given its
``numpy.random.Generator``, so a benchmark run is reproducible. Video transforms describe an
edit of a synthetic clip (see ``make_videos.py``): which frames, at what rate and size, and
what per-frame image transform, so the edited clip is rendered from the source frames.

``IMAGE_TRANSFORMS`` and ``VIDEO_TRANSFORMS`` map a name to its strengths; ``apply(name,
strength, pixels, rng)`` makes one edited copy.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

ImageFn = Callable[[np.ndarray, object, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Transform:
    """A named image edit, the strengths benchmarked, and what a strength means."""

    name: str
    fn: ImageFn
    strengths: Tuple[object, ...]
    unit: str


def _pil(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(pixels)).convert("RGB")


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


def identity(pixels: np.ndarray, strength: object, rng: np.random.Generator) -> np.ndarray:
    """An exact copy."""
    return pixels.copy()


def jpeg(pixels: np.ndarray, quality: object, rng: np.random.Generator) -> np.ndarray:
    """Re-encode as JPEG at `quality` (4:2:0 chroma, as most platforms serve)."""
    buf = io.BytesIO()
    _pil(pixels).save(buf, format="JPEG", quality=int(quality))
    return _arr(Image.open(buf))


def resize(pixels: np.ndarray, scale: object, rng: np.random.Generator) -> np.ndarray:
    """Scale both sides by `scale` (bilinear with antialiasing, as thumbnailers do)."""
    h, w = pixels.shape[:2]
    size = (max(1, round(w * float(scale))), max(1, round(h * float(scale))))
    return _arr(_pil(pixels).resize(size, Image.Resampling.BILINEAR))


def crop(pixels: np.ndarray, percent: object, rng: np.random.Generator) -> np.ndarray:
    """Cut `percent` of each dimension away, split at random between the two sides."""
    h, w = pixels.shape[:2]
    ch, cw = round(h * float(percent) / 100), round(w * float(percent) / 100)
    top, left = int(rng.integers(0, ch + 1)), int(rng.integers(0, cw + 1))
    return pixels[top:h - (ch - top), left:w - (cw - left)].copy()


def rotate(pixels: np.ndarray, degrees: object, rng: np.random.Generator) -> np.ndarray:
    """Rotate by `degrees` (random sign) about the centre, then crop to the largest upright
    rectangle with no fill, as photo editors' straighten tool does."""
    angle = float(degrees) * (1 if rng.random() < 0.5 else -1)
    h, w = pixels.shape[:2]
    rotated = _pil(pixels).rotate(angle, resample=Image.Resampling.BICUBIC)
    a = np.radians(abs(angle))
    # Largest axis-aligned rectangle of the original aspect inside the rotated one.
    k = min(w, h) / (min(w, h) * np.cos(a) + max(w, h) * np.sin(a))
    cw, ch = w * k, h * k
    box = (round((w - cw) / 2), round((h - ch) / 2), round((w + cw) / 2), round((h + ch) / 2))
    return _arr(rotated.crop(box))


def rotate90(pixels: np.ndarray, degrees: object, rng: np.random.Generator) -> np.ndarray:
    """Rotate counter-clockwise by a multiple of 90 degrees."""
    return np.ascontiguousarray(np.rot90(pixels, int(degrees) // 90))


def flip(pixels: np.ndarray, axis: object, rng: np.random.Generator) -> np.ndarray:
    """Mirror left-right (``h``) or top-bottom (``v``)."""
    return np.ascontiguousarray(pixels[:, ::-1] if axis == "h" else pixels[::-1])


def _border_colour(rng: np.random.Generator) -> Tuple[int, int, int]:
    # Black and white frames are the common ones; a random flat colour now and then.
    choice = rng.random()
    if choice < 0.4:
        return (0, 0, 0)
    if choice < 0.8:
        return (255, 255, 255)
    return tuple(int(v) for v in rng.integers(0, 256, size=3))


def border(pixels: np.ndarray, percent: object, rng: np.random.Generator) -> np.ndarray:
    """A uniform frame `percent` of the width (and height) thick on every side."""
    h, w = pixels.shape[:2]
    by, bx = max(1, round(h * float(percent) / 100)), max(1, round(w * float(percent) / 100))
    out = np.empty((h + 2 * by, w + 2 * bx, 3), np.uint8)
    out[:] = _border_colour(rng)
    out[by:by + h, bx:bx + w] = pixels
    return out


def letterbox(pixels: np.ndarray, aspect: object, rng: np.random.Generator) -> np.ndarray:
    """Fit into a black canvas of aspect ``W:H`` (``16:9`` letterbox/pillarbox, ``9:16`` for a
    vertical video, ``1:1`` square feed), centred, then a JPEG re-encode at quality 85."""
    aw, ah = (int(v) for v in str(aspect).split(":"))
    h, w = pixels.shape[:2]
    if w * ah >= h * aw:  # wider than the canvas: bars top and bottom
        cw, ch = w, max(h, round(w * ah / aw))
    else:
        cw, ch = max(w, round(h * aw / ah)), h
    out = np.zeros((ch, cw, 3), np.uint8)
    y, x = (ch - h) // 2, (cw - w) // 2
    out[y:y + h, x:x + w] = pixels
    return jpeg(out, 85, rng)


def caption(pixels: np.ndarray, percent: object, rng: np.random.Generator) -> np.ndarray:
    """A line of white text with a black outline, `percent` of the height tall, near the bottom."""
    img = _pil(pixels)
    w, h = img.size
    size = max(6, round(h * float(percent) / 100))
    font = ImageFont.load_default(size=size)
    words = "".join(chr(int(c)) for c in rng.integers(97, 123, size=14))
    text = f"{words[:5]} {words[5:9]} {words[9:]}"
    draw = ImageDraw.Draw(img)
    length = draw.textlength(text, font=font)
    x = max(0.0, (w - length) / 2)
    draw.text((x, h - 1.4 * size), text, font=font, fill=(255, 255, 255),
              stroke_width=max(1, size // 12), stroke_fill=(0, 0, 0))
    return _arr(img)


def logo(pixels: np.ndarray, percent: object, rng: np.random.Generator) -> np.ndarray:
    """An opaque badge covering `percent` of the area, in a random corner."""
    img = _pil(pixels)
    w, h = img.size
    side = max(2, round(np.sqrt(w * h * float(percent) / 100)))
    badge = Image.new("RGB", (side, side), tuple(int(v) for v in rng.integers(0, 256, size=3)))
    draw = ImageDraw.Draw(badge)
    draw.ellipse((side * 0.15, side * 0.15, side * 0.85, side * 0.85),
                 fill=tuple(int(v) for v in rng.integers(0, 256, size=3)))
    corner = int(rng.integers(0, 4))
    margin = round(0.02 * min(w, h))
    x = margin if corner % 2 == 0 else w - side - margin
    y = margin if corner < 2 else h - side - margin
    img.paste(badge, (max(0, x), max(0, y)))
    return _arr(img)


def saturation(pixels: np.ndarray, factor: object, rng: np.random.Generator) -> np.ndarray:
    """Scale colour saturation by `factor` (0: grey)."""
    return _arr(ImageEnhance.Color(_pil(pixels)).enhance(float(factor)))


def hue(pixels: np.ndarray, degrees: object, rng: np.random.Generator) -> np.ndarray:
    """Rotate hue by `degrees` in HSV."""
    hsv = np.asarray(_pil(pixels).convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(int) + round(float(degrees) * 256 / 360)) % 256
    return _arr(Image.fromarray(hsv, "HSV"))


def gamma(pixels: np.ndarray, g: object, rng: np.random.Generator) -> np.ndarray:
    """Apply out = 255 * (in / 255) ** g."""
    table = np.clip(np.rint(255 * (np.arange(256) / 255) ** float(g)), 0, 255).astype(np.uint8)
    return table[pixels]


def contrast(pixels: np.ndarray, factor: object, rng: np.random.Generator) -> np.ndarray:
    """Scale contrast about the mean grey by `factor`."""
    return _arr(ImageEnhance.Contrast(_pil(pixels)).enhance(float(factor)))


def blur(pixels: np.ndarray, radius: object, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur of `radius` pixels."""
    return _arr(_pil(pixels).filter(ImageFilter.GaussianBlur(float(radius))))


def noise(pixels: np.ndarray, sigma: object, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise of standard deviation `sigma` grey levels, per channel."""
    return np.clip(pixels + rng.normal(0, float(sigma), pixels.shape), 0, 255).astype(np.uint8)


IMAGE_TRANSFORMS: Dict[str, Transform] = {t.name: t for t in (
    Transform("identity", identity, (None,), ""),
    Transform("jpeg", jpeg, (90, 70, 50, 30), "quality"),
    Transform("resize", resize, (0.75, 0.5, 0.25), "scale"),
    Transform("crop", crop, (2, 5, 10, 20), "% cut"),
    Transform("rotate", rotate, (1, 3, 5, 10), "degrees"),
    Transform("rotate90", rotate90, (90, 180, 270), "degrees"),
    Transform("flip", flip, ("h", "v"), "axis"),
    Transform("border", border, (2, 5, 10, 20), "% per side"),
    Transform("letterbox", letterbox, ("16:9", "9:16", "1:1"), "canvas"),
    Transform("caption", caption, (5, 10, 15), "% height"),
    Transform("logo", logo, (2, 5, 10), "% area"),
    Transform("saturation", saturation, (0.0, 0.5, 1.5), "factor"),
    Transform("hue", hue, (30, 90, 180), "degrees"),
    Transform("gamma", gamma, (0.5, 0.75, 1.5, 2.0), "gamma"),
    Transform("contrast", contrast, (0.5, 0.75, 1.5), "factor"),
    Transform("blur", blur, (1, 2, 4), "radius px"),
    Transform("noise", noise, (5, 10, 20), "sigma"),
)}


def apply(name: str, strength: object, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One edited copy of an RGB uint8 image."""
    return IMAGE_TRANSFORMS[name].fn(pixels, strength, rng)


def cases(names: Optional[Sequence[str]] = None) -> list:
    """Every (name, strength) pair of the named image transforms (all of them by default)."""
    chosen = IMAGE_TRANSFORMS if names is None else {n: IMAGE_TRANSFORMS[n] for n in names}
    return [(t.name, s) for t in chosen.values() for s in t.strengths]


@dataclass(frozen=True)
class VideoEdit:
    """How an edited clip is made from its source: the part from `start` to `stop` (fractions
    of its length), played `speed` times as fast, at `fps` (None: the source's), each frame
    passed through the image transform `frame`, encoded with x264 at `crf`."""

    start: float = 0.0
    stop: Optional[float] = None
    speed: float = 1.0
    fps: Optional[float] = None
    frame: Optional[Tuple[str, object]] = None  # an image transform (name, strength)
    crf: int = 23


#: Video edits by name, each with its strengths (the edit for each strength).
VIDEO_TRANSFORMS: Dict[str, Dict[object, VideoEdit]] = {
    "identity": {None: VideoEdit()},
    "reencode": {33: VideoEdit(crf=33), 43: VideoEdit(crf=43)},
    "resize": {0.5: VideoEdit(frame=("resize", 0.5))},
    "fps": {30: VideoEdit(fps=30), 10: VideoEdit(fps=10)},
    "trim": {"first 25%": VideoEdit(start=0.25), "last 25%": VideoEdit(stop=0.75)},
    "clip": {"middle 50%": VideoEdit(start=0.25, stop=0.75), "middle 25%": VideoEdit(start=0.375, stop=0.625)},
    "speed": {1.25: VideoEdit(speed=1.25), 0.8: VideoEdit(speed=0.8)},
    "crop": {10: VideoEdit(frame=("crop", 10))},
    "flip": {"h": VideoEdit(frame=("flip", "h"))},
    # Turned and re-encoded with the turn in the pixels (no display matrix left to undo it).
    "rotate90": {90: VideoEdit(frame=("rotate90", 90)), 180: VideoEdit(frame=("rotate90", 180)),
                 270: VideoEdit(frame=("rotate90", 270))},
    "letterbox": {"16:9": VideoEdit(frame=("letterbox", "16:9")), "9:16": VideoEdit(frame=("letterbox", "9:16"))},
    "border": {10: VideoEdit(frame=("border", 10))},
    "caption": {10: VideoEdit(frame=("caption", 10))},
    "gamma": {0.75: VideoEdit(frame=("gamma", 0.75))},
}
