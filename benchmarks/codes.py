"""Synthetic 256-bit codes with the clustering of real PDQ hashes, for index benchmarks and tests.

Real hash lists are not uniform: a known image comes as many crops, rescales and re-encodes
(a family of codes a few to ~40 bits from each other), and a video as ~125 frame hashes at one
frame a second whose frames within a scene differ by a few bits. Uniform random codes are the
easy case for multi-index hashing (every bucket holds ~the same number of codes); these pile
codes into few buckets the way real lists do.

    uniform(n, seed)           independent random codes
    images(n, seed)            families of near-duplicates (geometric sizes, mean 5)
    videos(n_videos, seed)     ~125 frames each: 1-4 scenes, frames within ~0-16 bits of a scene centre
    mixed(n, seed)             90% video frames, 10% images (the VHIP mix)
    queries(codes, nq, seed)   re-uploads: held codes with 0..24 bits flipped, and 10% unseen codes
"""

from __future__ import annotations

import numpy as np

_CHUNK = 1 << 17


def flip(codes: np.ndarray, mean_bits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Copies of codes with each bit of row i flipped with probability mean_bits[i] / 256."""
    out = np.empty_like(codes)
    for at in range(0, len(codes), _CHUNK):
        rows = slice(at, at + _CHUNK)
        t = np.clip(np.rint(mean_bits[rows]), 0, 255).astype(np.uint8)
        mask = rng.integers(0, 256, (len(t), 256), dtype=np.uint8) < t[:, None]
        out[rows] = codes[rows] ^ np.packbits(mask, axis=1)
    return out


def uniform(n: int, seed: int = 0) -> np.ndarray:
    """n independent uniform random codes, (n, 32) uint8."""
    return np.random.default_rng(seed).integers(0, 256, (n, 32), dtype=np.uint8)


def images(n: int, seed: int = 1) -> np.ndarray:
    """n codes in families of near-duplicates: half within 0-4 bits of the family's centre, 35% 5-20, 15% 21-40."""
    rng = np.random.default_rng(seed)
    sizes = rng.geometric(1 / 5, size=n // 2 + 1)
    sizes = sizes[:np.searchsorted(np.cumsum(sizes), n) + 1]
    family = np.repeat(np.arange(len(sizes)), sizes)[:n]
    centres = rng.integers(0, 256, (len(sizes), 32), dtype=np.uint8)
    kind = rng.random(n)
    bits = np.where(kind < 0.5, rng.uniform(0, 4, n), np.where(kind < 0.85, rng.uniform(5, 20, n),
                                                                 rng.uniform(21, 40, n)))
    out = flip(centres[family], bits, rng)
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    first = first[first < n]
    out[first] = centres[family[first]]  # every family holds its original
    return out


def videos(n_videos: int, frames: int = 125, seed: int = 2) -> np.ndarray:
    """n_videos * frames codes: each video 1-4 scenes, frames within ~0-16 bits of their scene's centre."""
    rng = np.random.default_rng(seed)
    n = n_videos * frames
    out = np.empty((n, 32), np.uint8)
    for at in range(0, n_videos, _CHUNK // frames + 1):
        nv = min(_CHUNK // frames + 1, n_videos - at)
        scenes = rng.integers(1, 5, nv)
        centres = rng.integers(0, 256, (nv, 4, 32), dtype=np.uint8)
        frame = np.arange(frames)
        scene = (frame[None, :] * scenes[:, None]) // frames  # scenes in order, equal lengths
        rows = centres[np.arange(nv)[:, None], scene].reshape(-1, 32)
        still = rng.random(nv * frames) < 0.3  # static shots: nearly identical frames
        bits = np.where(still, rng.uniform(0, 2, nv * frames), rng.uniform(2, 16, nv * frames))
        out[at * frames:(at + nv) * frames] = flip(rows, bits, rng)
    return out


def mixed(n: int, seed: int = 3, frames: int = 125) -> np.ndarray:
    """n codes: 90% video frames (videos of `frames`), then 10% image families; a video's frames are consecutive."""
    n_videos = int(n * 0.9) // frames
    out = np.empty((n, 32), np.uint8)
    out[:n_videos * frames] = videos(n_videos, frames, seed + 1)
    out[n_videos * frames:] = images(n - n_videos * frames, seed + 2)
    return out


def queries(codes: np.ndarray, nq: int, seed: int = 4, unseen: float = 0.1) -> np.ndarray:
    """nq queries: held codes with 0..24 bits flipped (re-uploads), a fraction `unseen` of fresh random codes."""
    rng = np.random.default_rng(seed)
    picks = codes[rng.integers(0, len(codes), nq)]
    out = flip(picks, rng.uniform(0, 24, nq), rng)
    fresh = rng.random(nq) < unseen
    out[fresh] = rng.integers(0, 256, (int(fresh.sum()), 32), dtype=np.uint8)
    return out
