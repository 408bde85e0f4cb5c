"""Seeded synthetic video clips and their edited copies, encoded with PyAV (x264).

Three kinds of clip, 320x240 at 15 fps unless asked otherwise, each from its own seed:

* ``pan``: a pan with a slow zoom across one generated image (``generate.image``, any family);
* ``shapes``: flat shapes moving over a still 1/f-noise backdrop, each on its own straight path;
* ``cuts``: three pans over three different images, with hard cuts between them.

``clip(kind, index)`` gives a ``Clip`` (its frame function, fps and length);
``render(clip, path, edit)`` encodes it as it is (``VideoEdit()``) or edited (see
``transforms.VIDEO_TRANSFORMS``: re-encoding, frame rate, trims, clips, speed, per-frame edits).
Nothing is downloaded; a clip is reproducible from its kind, index and seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List

import numpy as np
from PIL import Image, ImageDraw

import generate
from transforms import VideoEdit, apply

KINDS = ("pan", "shapes", "cuts")
WIDTH, HEIGHT, FPS, SECONDS = 320, 240, 15, 8.0
_KIND_NO = {kind: 100 + k for k, kind in enumerate(KINDS)}  # seed streams apart from the images'


@dataclass(frozen=True)
class Clip:
    """A synthetic clip: frame(i) for i in range(frames), shown at fps."""

    name: str
    frame: Callable[[int], np.ndarray]
    frames: int
    fps: float


def _pan(source: Image.Image, rng: np.random.Generator, frames: int) -> Callable[[int], np.ndarray]:
    # A window of the output's aspect drifts from one random place to another while zooming.
    sw, sh = source.size
    aspect = WIDTH / HEIGHT
    z0, z1 = rng.uniform(0.55, 0.8), rng.uniform(0.55, 0.8)

    def window(zoom: float):
        ww = min(sw, sh * aspect) * zoom
        return ww, ww / aspect

    p0, p1 = rng.uniform(0, 1, 2), rng.uniform(0, 1, 2)

    def frame(i: int) -> np.ndarray:
        a = i / max(1, frames - 1)
        ww, wh = window(z0 + (z1 - z0) * a)
        px, py = p0 + (p1 - p0) * a
        x, y = px * (sw - ww), py * (sh - wh)
        box = (x, y, x + ww, y + wh)
        return np.asarray(source.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR, box=box))

    return frame


def _source_image(rng: np.random.Generator, index: int) -> Image.Image:
    families = [f for f, _, _ in generate.FAMILIES]
    family = families[int(rng.integers(len(families)))]
    # Indices from 5000 on: never one of the committed images or the benchmark's stills.
    return generate.image(family, 5000 + index, sides=(480, 640)).convert("RGB")


def _shapes(rng: np.random.Generator, index: int, frames: int) -> Callable[[int], np.ndarray]:
    # A still 1/f-noise backdrop: flat gradients alone give frames PDQ rates below quality 50.
    background = generate.image("noise", 5000 + index, sides=(WIDTH, WIDTH)).resize((WIDTH, HEIGHT))
    count = int(rng.integers(6, 12))
    start = rng.uniform(0, 1, (count, 2)) * (WIDTH, HEIGHT)
    velocity = rng.uniform(-1, 1, (count, 2)) * (WIDTH, HEIGHT) * 0.6 / frames
    radius = rng.uniform(15, 45, count)
    colours = [generate._random_colour(rng) for _ in range(count)]
    square = rng.random(count) < 0.5

    def frame(i: int) -> np.ndarray:
        img = background.copy()
        draw = ImageDraw.Draw(img)
        for k in range(count):
            x, y = start[k] + velocity[k] * i
            r = radius[k]
            (draw.rectangle if square[k] else draw.ellipse)((x - r, y - r, x + r, y + r), fill=colours[k])
        return np.asarray(img)

    return frame


def clip(kind: str, index: int, seed: int = generate.DEFAULT_SEED, seconds: float = SECONDS) -> Clip:
    """Synthetic clip `index` of a kind (pan, shapes, cuts)."""
    rng = np.random.default_rng([seed, _KIND_NO[kind], index])
    frames = int(round(seconds * FPS))
    if kind == "pan":
        frame = _pan(_source_image(rng, 3 * index), rng, frames)
    elif kind == "shapes":
        frame = _shapes(rng, index, frames)
    else:
        each = -(-frames // 3)
        parts = [_pan(_source_image(rng, 3 * index + k), rng, each) for k in range(3)]

        def frame(i: int, parts=parts, each=each) -> np.ndarray:
            return parts[min(i // each, 2)](i % each)

    return Clip(f"{kind}_{index:03d}", frame, frames, float(FPS))


def nth_clip(k: int, seed: int = generate.DEFAULT_SEED) -> Clip:
    """Clip k of the sequence that takes the kinds in turn (pan, shapes, cuts, pan, ...)."""
    return clip(KINDS[k % len(KINDS)], k // len(KINDS), seed)


def clips(count: int, seed: int = generate.DEFAULT_SEED) -> List[Clip]:
    """The first `count` clips of that sequence."""
    return [nth_clip(k, seed) for k in range(count)]


def edited_frames(source: Clip, edit: VideoEdit, seed: int = 0) -> tuple[List[np.ndarray], float]:
    """The frames of an edited copy of a clip and its frame rate."""
    fps = edit.fps or source.fps
    first = edit.start * source.frames / source.fps
    last = (edit.stop if edit.stop is not None else 1.0) * source.frames / source.fps
    out = []
    for j in range(int(np.ceil((last - first) / edit.speed * fps))):
        t = first + j * edit.speed / fps  # source seconds shown at output frame j
        i = int(round(t * source.fps))
        if i >= source.frames or t >= last:
            break
        pixels = source.frame(i)
        if edit.frame is not None:
            # One generator per clip, re-seeded per frame, so overlays and borders hold still.
            pixels = apply(*edit.frame, pixels, np.random.default_rng(seed))
        out.append(pixels)
    return out, fps


def decoded(path: Path, name: str) -> Clip:
    """The clip an encoded file plays: its decoded frames, so that edits of it are real transcodes
    (a re-encode of it has the generation loss of decoding and encoding again)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return Clip(name, frames.__getitem__, len(frames), fps)


def render(source: Clip, path: Path, edit: VideoEdit = VideoEdit(), seed: int = 0) -> Path:
    """Encode a clip, edited by `edit`, as H.264 in an MP4 at path."""
    import av

    frames, fps = edited_frames(source, edit, seed)
    h, w = frames[0].shape[:2]
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=int(round(fps)))
        # x264 and 4:2:0 need even sizes: drop a last row or column rather than resample.
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(edit.crf), "preset": "veryfast", "threads": "1"}
        for pixels in frames:
            pixels = np.ascontiguousarray(pixels[:stream.height, :stream.width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
