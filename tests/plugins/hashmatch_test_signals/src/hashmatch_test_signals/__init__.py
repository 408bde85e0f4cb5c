"""Two signal types from outside hashmatch: a 64-bit average hash and a 12-value colour histogram.

They use only hashmatch's public plug-in surface: ``hashmatch.signals.SignalType``,
``IndexSpec``, ``Code`` and ``Stored``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np
from PIL import Image

from hashmatch import HashFormatError
from hashmatch.signals import Code, IndexSpec, SignalType


@dataclass(frozen=True)
class AHash:
    """A 64-bit average hash."""

    bits: bytes

    @property
    def hex(self) -> str:
        return self.bits.hex()


def _gray(pixels: np.ndarray, size: int) -> np.ndarray:
    im = Image.fromarray(pixels if pixels.ndim == 2 else pixels[:, :, :3])
    return np.asarray(im.convert("L").resize((size, size), Image.BILINEAR), np.float32)


class AHash64Signal(SignalType):
    """8x8 grey thumbnail, one bit per pixel above the mean; matched at Hamming distance <= 6 of 64."""

    name = "ahash64"
    media_type = "image"
    threshold = 6
    version = "ahash64-1"
    computed_from = "pixels"
    default = True
    index = IndexSpec("hamming", space="ahash64", bits=64)
    external_names = (("examplenet", "AHASH", "image"),)

    def loads(self, data: Any, *, source: str = "<value>") -> AHash:
        if isinstance(data, AHash):
            return data
        text = data.decode() if isinstance(data, (bytes, bytearray)) else data
        try:
            bits = bytes.fromhex(text.strip())
        except (ValueError, AttributeError):
            raise HashFormatError(f"{source}: ahash64 must be 16 hex characters, got {text!r:.40}") from None
        if len(bits) != 8:
            raise HashFormatError(f"{source}: ahash64 must be 16 hex characters, got {len(bits) * 2}")
        return AHash(bits)

    def dumps(self, value: AHash) -> str:
        return self.loads(value).hex

    def value_of(self, item: Any) -> Optional[AHash]:
        return item if isinstance(item, AHash) else None

    def distance(self, a: Any, b: Any) -> int:
        x = int.from_bytes(self.loads(a).bits, "big") ^ int.from_bytes(self.loads(b).bits, "big")
        return bin(x).count("1")

    def from_pixels(self, pixels: np.ndarray) -> AHash:
        g = _gray(pixels, 8)
        return AHash(np.packbits((g > g.mean()).reshape(-1)).tobytes())

    def index_codes(self, value: AHash) -> List[Code]:
        return [Code(value.bits)]


class ColorHistogramSignal(SignalType):
    """A 4-bin histogram per RGB channel (12 floats), matched at cosine >= 0.995."""

    name = "colorhist"
    media_type = "image"
    threshold = 0.995
    similarity = True
    version = "colorhist-1"
    computed_from = "pixels"
    default = True
    index = IndexSpec("vector", space="colorhist", dim=12, metric="cosine")

    def loads(self, data: Any, *, source: str = "<value>") -> np.ndarray:
        if isinstance(data, np.ndarray):
            return data.astype(np.float32)
        try:
            values = json.loads(data)
        except (TypeError, ValueError):
            raise HashFormatError(f"{source}: colorhist must be a JSON list of 12 numbers") from None
        if not isinstance(values, list) or len(values) != 12 or not all(isinstance(v, (int, float)) for v in values):
            raise HashFormatError(f"{source}: colorhist must be a JSON list of 12 numbers")
        return np.array(values, np.float32)

    def dumps(self, value: np.ndarray) -> str:
        return json.dumps([round(float(v), 6) for v in self.loads(value)])

    def distance(self, a: Any, b: Any) -> float:
        x, y = self.loads(a), self.loads(b)
        return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))

    def from_pixels(self, pixels: np.ndarray) -> np.ndarray:
        rgb = pixels if pixels.ndim == 3 else np.stack([pixels] * 3, axis=2)
        hist = [np.histogram(rgb[:, :, c], bins=4, range=(0, 256))[0] for c in range(3)]
        return np.concatenate(hist).astype(np.float32) / float(rgb.shape[0] * rgb.shape[1])

    def index_vector(self, value: np.ndarray) -> np.ndarray:
        return self.loads(value)
