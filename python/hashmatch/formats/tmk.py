"""``tmk_pdqf``: TMK+PDQF video hashes, exchanged as the reference's binary ``.tmk`` files."""

from __future__ import annotations

import numpy as np

from ..errors import HashFormatError
from ..tmk import TMK, TMK_LEVEL1_THRESHOLD, TMK_LEVEL2_THRESHOLD
from .base import Format, Serialized, register


class TMKFormat(Format):
    """TMK+PDQF; its distance is the level-2 score (a similarity), matched at 0.7 after level 1."""

    name = "tmk_pdqf"
    media_type = "video"
    binary = True
    threshold = TMK_LEVEL2_THRESHOLD
    similarity = True

    def loads(self, data: Serialized, *, source: str = "<value>") -> TMK:
        """A TMK from the bytes of a ``.tmk`` file; non-finite features are refused."""
        if isinstance(data, TMK):
            return data
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise HashFormatError(f"{source}: tmk_pdqf values are .tmk bytes, not {type(data).__name__}")
        tmk = TMK.from_bytes(bytes(data), source=source)
        for name in ("pure_average", "cos_features", "sin_features"):
            if not np.isfinite(getattr(tmk, name)).all():
                raise HashFormatError(f"{source}: {name} holds NaN or infinite values")
        return tmk

    def dumps(self, value: TMK) -> bytes:
        """The ``.tmk`` file bytes."""
        return value.to_bytes()

    def distance(self, a: TMK, b: TMK) -> float:
        """The level-2 score, or 0.0 when level 1 already says no (as the reference's matcher does)."""
        return a.level2(b) if a.level1(b) >= TMK_LEVEL1_THRESHOLD else 0.0


register(TMKFormat())
