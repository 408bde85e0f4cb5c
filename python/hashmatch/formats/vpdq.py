"""``vpdq``: per-frame PDQ hashes of a video, as python-threatexchange's compact signal string.

The reference tool's text file (``frame_number,quality,hex,timestamp`` lines) is a file kind
of the same format: ``hashmatch.vpdq_frames.dumps``/``loads`` read and write it.
"""

from __future__ import annotations

from typing import List, Sequence

from .. import vpdq_frames
from ..errors import HashFormatError
from ..vpdq_frames import VPDQ_QUERY_MATCH_PERCENT, VPDQFrame
from .base import Format, Serialized, register


class VPDQFormat(Format):
    """vPDQ frames; distance is the percent of the first hash's frames matched (a similarity)."""

    name = "vpdq"
    media_type = "video"
    threshold = VPDQ_QUERY_MATCH_PERCENT
    similarity = True

    def loads(self, data: Serialized, *, source: str = "<value>") -> List[VPDQFrame]:
        """Frames from the compact signal string, or from the reference's text lines."""
        if isinstance(data, (bytes, bytearray)):
            try:
                data = bytes(data).decode("utf-8")
            except UnicodeDecodeError:
                raise HashFormatError(f"{source}: vpdq value is not UTF-8 text") from None
        if not isinstance(data, str):
            raise HashFormatError(f"{source}: vpdq value must be text, not {type(data).__name__}")
        text = data.strip()
        frames = vpdq_frames.from_signal(text, source=source) if text.startswith("[") else \
            vpdq_frames.loads(text, source=source)
        if not frames:
            raise HashFormatError(f"{source}: vpdq value has no frames")
        return frames

    def dumps(self, value: Sequence[VPDQFrame]) -> str:
        """python-threatexchange's compact signal string."""
        return vpdq_frames.to_signal(value)

    def distance(self, a: Sequence[VPDQFrame], b: Sequence[VPDQFrame]) -> float:
        """Percent of a's unique good frames that match one of b's (the reference's query percent)."""
        return float(vpdq_frames.match(a, b).query_match_percent)


register(VPDQFormat())
