"""Seeded generator of small synthetic images with natural-image statistics.

Five families, written as lossless PNGs named ``<family>_<NNN>.png``:

* ``deadleaves``: dead-leaves textures (overlapping discs and rectangles, power-law sizes);
* ``noise``: Fourier-synthesised colour 1/f noise (clouds, ridges, marble, warped);
* ``shapes``: smooth gradients with translucent shapes drawn on top;
* ``text``: Pillow's default font on textured backgrounds;
* ``photo``: crops and recolourings of the photographs bundled with scikit-image.

Inputs are numpy, Pillow and the photographs that ship inside ``skimage.data``; nothing is
downloaded. Every image has its own ``numpy.random.default_rng`` seeded from the base seed, its
family and its index, so a run is reproducible byte for byte (same numpy, Pillow and zlib).

Usage: ``python datasets/synthetic/generate.py [--out DIR] [--seed N]``
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from functools import lru_cache
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DEFAULT_SEED = 20261124
DEFAULT_OUT = Path(__file__).resolve().parent / "images"
MIN_SIDE, MAX_SIDE = 192, 512
SUPERSAMPLE = 2  # vector drawing is done at 2x and downsampled, for anti-aliased edges

Sides = Optional[Tuple[int, int]]  # (min, max) side length; None: each family's own range
Maker = Callable[..., Image.Image]  # (rng, index, sides=None) -> image


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _size(rng: np.random.Generator, max_side: int = MAX_SIDE, sides: Sides = None) -> tuple[int, int]:
    """Random (width, height) with both sides in [MIN_SIDE, max_side], or in `sides` if given."""
    lo, hi = sides if sides is not None else (MIN_SIDE, max_side)
    w, h = rng.integers(lo, hi + 1, size=2)
    return int(w), int(h)


def _to_image(rgb: np.ndarray) -> Image.Image:
    """Float array in 0..255 (H, W, 3) to an RGB image."""
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


def _random_colour(rng: np.random.Generator, lo: int = 0, hi: int = 255) -> tuple[int, int, int]:
    """A uniformly random RGB colour with channels in [lo, hi]."""
    r, g, b = rng.integers(lo, hi + 1, size=3)
    return int(r), int(g), int(b)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an (..., 3) array."""
    return rgb @ np.array([0.299, 0.587, 0.114])


def _fractal_field(
    rng: np.random.Generator,
    h: int,
    w: int,
    beta: float,
    aniso: float = 1.0,
    angle: float = 0.0,
    cutoff: float = 0.15,
) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian field with power spectrum 1/f**beta, low-passed."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    c, s = np.cos(angle), np.sin(angle)
    u = (c * fx + s * fy) * aniso
    v = -s * fx + c * fy
    f = np.sqrt(u * u + v * v)
    f[0, 0] = 1.0
    # The Gaussian roll-off at `cutoff` cycles/pixel stands in for a lens's MTF; it also removes
    # the pixel-level jitter that PNG cannot compress (about halves the file size).
    amp = f ** (-beta / 2) * np.exp(-((f / cutoff) ** 2))
    amp[0, 0] = 0.0
    spec = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) * amp
    field = np.fft.irfft2(spec, s=(h, w))
    field -= field.mean()
    return field / (field.std() + 1e-12)


def _colourise(
    rng: np.random.Generator, lum: np.ndarray, chroma: Sequence[np.ndarray], contrast: float
) -> np.ndarray:
    """Map a luminance field and chroma fields to RGB around a random mean colour."""
    mean = rng.uniform(60, 195, size=3)
    grey = np.ones(3) / np.sqrt(3)
    # Chroma directions orthogonal to grey, so chroma fields tint without brightening.
    a = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
    b = np.array([1.0, 1.0, -2.0]) / np.sqrt(6)
    rgb = mean + contrast * lum[..., None] * grey * np.sqrt(3) * rng.uniform(0.7, 1.0)
    for field in chroma:
        t = rng.uniform(0, 2 * np.pi)
        direction = np.cos(t) * a + np.sin(t) * b
        rgb = rgb + contrast * rng.uniform(0.25, 0.8) * field[..., None] * direction
    return rgb


def _muted_colours(rng: np.random.Generator, k: int, saturation: float) -> np.ndarray:
    """k random colours as (k, 3) floats: random brightness, chroma of about `saturation`."""
    grey = rng.uniform(30, 225, size=(k, 1))
    t = rng.uniform(0, 2 * np.pi, size=(k, 1))
    a = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
    b = np.array([1.0, 1.0, -2.0]) / np.sqrt(6)
    chroma = saturation * rng.uniform(0.2, 1.0, size=(k, 1)) * (np.cos(t) * a + np.sin(t) * b)
    return np.clip(grey + chroma, 0, 255)


def _gradient_map(lum: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] through evenly spaced colour stops (k, 3)."""
    pos = np.linspace(0.0, 1.0, len(stops))
    return np.stack([np.interp(lum, pos, stops[:, c]) for c in range(3)], axis=-1)


def _polygon_ellipse(
    cx: float, cy: float, rx: float, ry: float, angle: float, n: int = 72
) -> list[tuple[float, float]]:
    """Vertices of a rotated ellipse, as Pillow draws no rotated ellipses."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return list(zip((cx + c * x - s * y).tolist(), (cy + s * x + c * y).tolist()))


def _polygon_rect(
    cx: float, cy: float, hw: float, hh: float, angle: float
) -> list[tuple[float, float]]:
    """Vertices of a rotated rectangle with half-sizes hw, hh."""
    c, s = np.cos(angle), np.sin(angle)
    corners = ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh))
    return [(cx + c * x - s * y, cy + s * x + c * y) for x, y in corners]


def _polar_polygon(
    cx: float, cy: float, radii: np.ndarray, angles: np.ndarray
) -> list[tuple[float, float]]:
    """Vertices at the given radii and angles around (cx, cy)."""
    return list(zip((cx + radii * np.cos(angles)).tolist(), (cy + radii * np.sin(angles)).tolist()))


def _downsample(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize a supersampled drawing to its final size."""
    return img.resize(size, Image.Resampling.LANCZOS)


# ---------------------------------------------------------------------------------------------
# Families


def _dead_leaves(rng: np.random.Generator, index: int, sides: Sides = None) -> Image.Image:
    """Dead-leaves texture: occluding discs/rectangles with power-law radii."""
    w, h = _size(rng, 384, sides)
    W, H = w * SUPERSAMPLE, h * SUPERSAMPLE
    kind = ("disc", "rect", "mixed")[index % 3]
    colour = index % 4 != 3
    rmin = SUPERSAMPLE * rng.uniform(3.0, 8.0)
    rmax = min(W, H) * rng.uniform(0.25, 0.5)
    alpha = rng.uniform(2.6, 3.4)  # p(r) ~ r**-alpha; 3 is the scale-invariant case
    # Draw leaves until they cover the canvas several times over, so the background never shows.
    u = rng.uniform(0, 1, size=30000)
    lo, hi = rmin ** (1 - alpha), rmax ** (1 - alpha)
    radii = (lo - u * (lo - hi)) ** (1 / (1 - alpha))  # inverse CDF of the power law
    n = int(np.searchsorted(np.cumsum(np.pi * radii**2), 6 * W * H)) + 1
    radii = radii[:n]

    if colour:
        # A few dominant "materials" with per-leaf jitter look more like scenes than uniform RGB.
        k = int(rng.integers(3, 7))
        palette = _muted_colours(rng, k, rng.uniform(30, 110))
        jitter = rng.uniform(8, 25)
    img = Image.new("RGB", (W, H), _random_colour(rng))
    draw = ImageDraw.Draw(img)
    n = len(radii)  # at most the 30000 drawn
    xs = rng.uniform(-rmax / 2, W + rmax / 2, size=n)
    ys = rng.uniform(-rmax / 2, H + rmax / 2, size=n)
    shapes = rng.uniform(0, 1, size=n)
    for r, x, y, sh in zip(radii, xs, ys, shapes):
        if colour:
            c = palette[rng.integers(len(palette))] + rng.normal(0, jitter, size=3)
            fill = tuple(int(v) for v in np.clip(c, 0, 255))
        else:
            g = int(rng.integers(0, 256))
            fill = (g, g, g)
        if kind == "disc" or (kind == "mixed" and sh < 0.5):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        else:
            aspect = rng.uniform(0.4, 1.0)
            draw.polygon(_polygon_rect(x, y, r, r * aspect, rng.uniform(0, np.pi)), fill=fill)
    return _downsample(img, (w, h))


def _noise(rng: np.random.Generator, index: int, sides: Sides = None) -> Image.Image:
    """Colour 1/f noise, plain, anisotropic, ridged, marbled or domain-warped."""
    w, h = _size(rng, 320, sides)
    style = ("clouds", "aniso", "ridged", "marble", "warped")[index % 5]
    beta = rng.uniform(2.6, 3.4)  # steeper than photos' ~2: smoother, and far smaller as PNG
    aniso = rng.uniform(2.0, 4.0) if style == "aniso" else 1.0
    angle = rng.uniform(0, np.pi)
    lum = _fractal_field(rng, h, w, beta, aniso, angle)
    if style == "ridged":
        lum = 1.0 - 2.0 * np.abs(lum)
        lum = (lum - lum.mean()) / lum.std()
    elif style == "marble":
        yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
        period = rng.uniform(0.12, 0.3)
        phase = (np.cos(angle) * xx + np.sin(angle) * yy) / period
        lum = np.sin(2 * np.pi * phase + 2.5 * lum) * 1.2
    elif style == "warped":
        dx = _fractal_field(rng, h, w, beta)
        dy = _fractal_field(rng, h, w, beta)
        strength = rng.uniform(0.08, 0.16) * max(w, h)
        yy, xx = np.mgrid[0:h, 0:w]
        wy = np.clip(np.rint(yy + strength * dy), 0, h - 1).astype(int)
        wx = np.clip(np.rint(xx + strength * dx), 0, w - 1).astype(int)
        lum = lum[wy, wx]
    chroma = [_fractal_field(rng, h, w, beta + 0.3, aniso, angle) for _ in range(2)]
    rgb = _colourise(rng, lum, chroma, contrast=rng.uniform(30, 50))
    return _to_image(rgb)


def _gradient_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Smooth linear, radial, conic or four-corner gradient as a float (h, w, 3) array."""
    yy, xx = np.mgrid[0:h, 0:w]
    x, y = (xx + 0.5) / w, (yy + 0.5) / h
    kind = rng.choice(["linear", "radial", "conic", "corners"])
    if kind == "corners":
        c = rng.uniform(0, 255, size=(4, 3))
        x3, y3 = x[..., None], y[..., None]
        return (c[0] * (1 - x3) * (1 - y3) + c[1] * x3 * (1 - y3)
                + c[2] * (1 - x3) * y3 + c[3] * x3 * y3)
    if kind == "linear":
        a = rng.uniform(0, 2 * np.pi)
        t = np.cos(a) * (x - 0.5) + np.sin(a) * (y - 0.5)
    elif kind == "radial":
        cx, cy = rng.uniform(0.1, 0.9, size=2)
        t = np.hypot(x - cx, y - cy)
    else:
        cx, cy = rng.uniform(0.3, 0.7, size=2)
        # Mirrored angle so the conic gradient has no hard seam.
        t = np.abs(np.arctan2(y - cy, x - cx) + rng.uniform(-np.pi, np.pi))
        t = np.minimum(t, 2 * np.pi - t)
    t = (t - t.min()) / (np.ptp(t) + 1e-12)
    t = t * t * (3 - 2 * t)
    stops = rng.uniform(0, 255, size=(int(rng.integers(2, 5)), 3))
    return _gradient_map(t, stops)


def _shapes(rng: np.random.Generator, index: int, sides: Sides = None) -> Image.Image:
    """Smooth gradient background with translucent ellipses, polygons, stars and strokes."""
    w, h = _size(rng, 448, sides)
    W, H = w * SUPERSAMPLE, h * SUPERSAMPLE
    bg = _gradient_background(rng, W, H)
    img = _to_image(bg)
    draw = ImageDraw.Draw(img, "RGBA")
    scale = min(W, H)
    # Enough shapes that the image is not mostly bare gradient (PDQ rates bare gradients low).
    for _ in range(int(rng.integers(9, 19))):
        fill = (*_random_colour(rng), int(rng.integers(140, 256)))
        cx, cy = rng.uniform(0, W), rng.uniform(0, H)
        r = scale * rng.uniform(0.06, 0.32)
        kind = rng.choice(["ellipse", "rect", "star", "blob", "stroke", "ring"])
        angle = rng.uniform(0, np.pi)
        if kind == "ellipse":
            draw.polygon(_polygon_ellipse(cx, cy, r, r * rng.uniform(0.3, 1.0), angle), fill=fill)
        elif kind == "rect":
            draw.polygon(_polygon_rect(cx, cy, r, r * rng.uniform(0.2, 1.0), angle), fill=fill)
        elif kind == "star":
            k = int(rng.integers(5, 10))
            t = angle + np.arange(2 * k) * np.pi / k
            rad = np.where(np.arange(2 * k) % 2 == 0, r, r * rng.uniform(0.35, 0.6))
            draw.polygon(_polar_polygon(cx, cy, rad, t), fill=fill)
        elif kind == "blob":
            k = int(rng.integers(5, 11))
            t = np.sort(rng.uniform(0, 2 * np.pi, size=k))
            rad = r * rng.uniform(0.5, 1.0, size=k)
            draw.polygon(_polar_polygon(cx, cy, rad, t), fill=fill)
        elif kind == "stroke":
            pts = [(cx, cy)]
            for _ in range(int(rng.integers(2, 5))):
                a = rng.uniform(0, 2 * np.pi)
                pts.append((pts[-1][0] + r * np.cos(a), pts[-1][1] + r * np.sin(a)))
            draw.line(pts, fill=fill, width=int(scale * rng.uniform(0.015, 0.05)), joint="curve")
        else:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=fill,
                         width=int(r * rng.uniform(0.1, 0.35)))
    return _downsample(img, (w, h))


_CONSONANTS = "bcdfghjklmnprstvwz"
_VOWELS = "aeiou"


def _word(rng: np.random.Generator) -> str:
    """A pronounceable pseudo-word of one to four syllables."""
    syllables = int(rng.integers(1, 5))
    return "".join(
        _CONSONANTS[rng.integers(len(_CONSONANTS))] + _VOWELS[rng.integers(len(_VOWELS))]
        + (_CONSONANTS[rng.integers(len(_CONSONANTS))] if rng.random() < 0.3 else "")
        for _ in range(syllables)
    )


def _texture(rng: np.random.Generator, w: int, h: int, kind: str) -> np.ndarray:
    """Paper, weave, wood or slate texture as a float (h, w, 3) array."""
    if kind == "paper":
        f = _fractal_field(rng, h, w, rng.uniform(2.2, 2.8))
        base = np.array(_random_colour(rng, 190, 250), float)
        return base + 12 * f[..., None]
    if kind == "weave":
        yy, xx = np.mgrid[0:h, 0:w].astype(float)
        p = rng.uniform(12, 24)
        a = rng.uniform(-0.3, 0.3)
        u, v = np.cos(a) * xx + np.sin(a) * yy, -np.sin(a) * xx + np.cos(a) * yy
        pattern = np.sin(2 * np.pi * u / p) * np.sin(2 * np.pi * v / p)
        f = _fractal_field(rng, h, w, 2.6)
        stops = np.array([_random_colour(rng, 40, 200), _random_colour(rng, 60, 230)], float)
        t = np.clip(0.5 + 0.12 * pattern + 0.2 * f, 0, 1)
        return _gradient_map(t, stops)
    if kind == "wood":
        f = _fractal_field(rng, h, w, 3.0, aniso=3.0, angle=np.pi / 2)
        yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
        rings = np.sin(2 * np.pi * (yy * rng.uniform(6, 14) + 0.6 * f)) * 0.5 + 0.5
        dark = np.array(_random_colour(rng, 60, 120), float) * np.array([1.0, 0.7, 0.45])
        light = np.array(_random_colour(rng, 150, 230), float) * np.array([1.0, 0.82, 0.6])
        return _gradient_map(rings**1.5, np.stack([dark, light]))
    # slate: dark, mottled, chalkboard-like
    f = _fractal_field(rng, h, w, rng.uniform(2.4, 3.0))
    base = np.array(_random_colour(rng, 20, 80), float)
    return base + 14 * f[..., None]


def _text(rng: np.random.Generator, index: int, sides: Sides = None) -> Image.Image:
    """Pseudo-text in Pillow's default font on a paper, weave, wood or slate texture."""
    w, h = _size(rng, 384, sides)
    kind = ("paper", "weave", "wood", "slate")[index % 4]
    bg = _texture(rng, w, h, kind)
    img = _to_image(bg)
    dark_bg = _luma(bg).mean() < 128
    ink = _random_colour(rng, 200, 255) if dark_bg else _random_colour(rng, 0, 70)

    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    margin = int(rng.integers(8, 24))
    y = float(rng.integers(6, 30))
    # A title line, then body text; sizes vary so glyphs survive PDQ's 64x64 downsampling.
    title = ImageFont.load_default(size=float(rng.integers(28, 56)))
    words = " ".join(_word(rng) for _ in range(int(rng.integers(1, 3)))).title()
    x = margin + rng.uniform(0, max(1.0, w - 2 * margin - title.getlength(words)))
    draw.text((x, y), words, font=title, fill=(*ink, 255),
              stroke_width=int(rng.integers(0, 3)), stroke_fill=(*_random_colour(rng), 255))
    y += title.size * 1.4
    body = ImageFont.load_default(size=float(rng.integers(13, 24)))
    while y + body.size < h - margin:
        start = margin + (rng.uniform(0.05, 0.3) * w if rng.random() < 0.2 else 0.0)
        line, x_end = [], start
        while True:
            word = _word(rng)
            width = body.getlength(word + " ")
            if x_end + width > w - margin:
                break
            line.append(word)
            x_end += width
        if line and rng.random() < 0.9:
            draw.text((start, y), " ".join(line), font=body, fill=(*ink, 255))
        y += body.size * rng.uniform(1.25, 1.6)
    angle = rng.uniform(-12, 12)
    layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC, center=(w / 2, h / 2))
    img.paste(layer, (0, 0), layer)
    return img


# Photographs that ship inside the scikit-image wheel (no network); cat() is chelsea().
_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "motorcycle",
           "hubble_deep_field", "immunohistochemistry", "coins")
_GREY_PHOTOS = ("camera", "coins")


@lru_cache(maxsize=None)
def _load_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photograph as uint8 RGB."""
    from skimage import data

    img = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    out = np.ascontiguousarray(img[..., :3])
    out.setflags(write=False)  # cached and shared between calls
    return out


def _recolour(rng: np.random.Generator, rgb: np.ndarray, grey_source: bool) -> np.ndarray:
    """Recolour a float RGB array: hue rotation, channel swap, duotone or grade."""
    mode = "duotone" if grey_source else rng.choice(["hue", "swap", "duotone", "grade"])
    if mode == "duotone":
        lum = _luma(rgb) / 255.0
        stops = np.stack([_random_colour(rng, 0, 90), _random_colour(rng, 60, 200),
                          _random_colour(rng, 170, 255)]).astype(float)
        return _gradient_map(lum, stops)
    if mode == "swap":
        perms = ((1, 2, 0), (2, 0, 1), (2, 1, 0), (0, 2, 1), (1, 0, 2))
        return rgb[..., list(perms[rng.integers(len(perms))])]
    if mode == "hue":
        # Rotate chroma around the grey axis (in YIQ), which keeps luma unchanged.
        to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
        t = rng.uniform(np.pi / 3, 5 * np.pi / 3)
        rot = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
        m = np.linalg.inv(to_yiq) @ rot @ to_yiq
        return rgb @ m.T
    # grade: gamma, saturation and a colour cast
    lum = _luma(rgb)[..., None]
    sat = rng.uniform(0.3, 1.6)
    out = lum + sat * (rgb - lum)
    out = 255.0 * (np.clip(out, 0, 255) / 255.0) ** rng.uniform(0.6, 1.6)
    return out * rng.uniform(0.8, 1.15, size=3)


def _photo(rng: np.random.Generator, index: int, sides: Sides = None) -> Image.Image:
    """A random crop of a bundled photograph, sometimes mirrored, recoloured."""
    name = _PHOTOS[index % len(_PHOTOS)]
    src = _load_photo(name)
    sh, sw = src.shape[:2]
    w, h = _size(rng, 320, sides)
    scale = rng.uniform(0.55, 0.95) * min(sw / w, sh / h)
    cw, ch = int(round(w * scale)), int(round(h * scale))
    x0, y0 = int(rng.integers(0, sw - cw + 1)), int(rng.integers(0, sh - ch + 1))
    crop = Image.fromarray(src[y0:y0 + ch, x0:x0 + cw]).resize((w, h), Image.Resampling.LANCZOS)
    rgb = np.asarray(crop, dtype=float)
    if rng.random() < 0.5:
        rgb = rgb[:, ::-1]
    return _to_image(_recolour(rng, rgb, grey_source=name in _GREY_PHOTOS))


FAMILIES: tuple[tuple[str, int, Maker], ...] = (
    ("deadleaves", 10, _dead_leaves),
    ("noise", 10, _noise),
    ("shapes", 10, _shapes),
    ("text", 9, _text),
    ("photo", 9, _photo),
)
_NAME = re.compile(r"^(%s)_\d{3}\.png$" % "|".join(f for f, _, _ in FAMILIES))


# ---------------------------------------------------------------------------------------------
# Entry points


def _save_png(img: Image.Image, path: Path) -> None:
    """Write a PNG with fixed options and no metadata chunks, so bytes are reproducible."""
    img = Image.frombytes("RGB", img.size, img.convert("RGB").tobytes())  # drops any img.info
    img.save(path, format="PNG", compress_level=9, optimize=False)


def image(family: str, index: int, seed: int = DEFAULT_SEED, sides: Sides = None) -> Image.Image:
    """Image `index` of a family; indices below the committed count reproduce the committed files."""
    for family_no, (name, _, maker) in enumerate(FAMILIES):
        if name == family:
            return maker(np.random.default_rng([seed, family_no, index]), index, sides)
    raise ValueError(f"unknown family {family!r}; known: {', '.join(f for f, _, _ in FAMILIES)}")


def images(count: int, start: int = 0, seed: int = DEFAULT_SEED, sides: Sides = None) -> list[np.ndarray]:
    """`count` RGB arrays taking the families in turn, indices from `start` on (each index once per family)."""
    out = []
    for k in range(count):
        family = FAMILIES[k % len(FAMILIES)][0]
        out.append(np.asarray(image(family, start + k // len(FAMILIES), seed, sides).convert("RGB")))
    return out


def generate(out_dir: str | Path, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write every synthetic image into out_dir and return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Remove earlier output (only files this script names) so a changed count leaves no strays.
    for stale in out.iterdir():
        if _NAME.match(stale.name):
            stale.unlink()
    paths = []
    for family, count, _ in FAMILIES:
        for index in range(count):
            path = out / f"{family}_{index:03d}.png"
            _save_png(image(family, index, seed), path)
            paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="base seed (default: %(default)s)")
    args = parser.parse_args(argv)
    paths = generate(args.out, args.seed)
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} images ({total / 1e6:.2f} MB) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
