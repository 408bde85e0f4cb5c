"""File digests: ``md5``, ``sha1``, ``sha256`` of images and ``video_md5``, ``video_sha256`` of videos.

Exact matches only: a digest says "the same bytes", never "the same picture".
"""

from __future__ import annotations

import hashlib
import re

from ..errors import HashFormatError
from .base import Format, Serialized, register


class DigestFormat(Format):
    """A cryptographic digest of the file bytes, as lower-case hex."""

    threshold = 0

    def __init__(self, name: str, algorithm: str, media_type: str) -> None:
        self.name, self.algorithm, self.media_type = name, algorithm, media_type
        self.hex_chars = 2 * hashlib.new(algorithm).digest_size
        self._pattern = re.compile(f"[0-9a-f]{{{self.hex_chars}}}")

    def loads(self, data: Serialized, *, source: str = "<value>") -> str:
        """The digest as lower-case hex (input in any case, whitespace around it allowed)."""
        if isinstance(data, (bytes, bytearray)):
            data = bytes(data).decode("ascii", "replace")
        if not isinstance(data, str):
            raise HashFormatError(f"{source}: {self.name} must be a hex string, not {type(data).__name__}")
        s = data.strip().lower()
        if not self._pattern.fullmatch(s):
            what = f"{len(s)} characters" if len(s) != self.hex_chars else "non-hex characters"
            raise HashFormatError(f"{source}: {self.name} must be {self.hex_chars} hex characters, got {what}:"
                                  f" {data[:80]!r}")
        return s

    def dumps(self, value: str) -> str:
        """Lower-case hex."""
        return self.loads(value)

    def distance(self, a: str, b: str) -> int:
        """0 for the same digest, 1 otherwise."""
        return 0 if self.loads(a) == self.loads(b) else 1

    def of_file(self, path: str) -> str:
        """The digest of a file's bytes, read in 1 MiB chunks (media can be gigabytes)."""
        digest = hashlib.new(self.algorithm)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()


for _name, _algorithm, _media in [("md5", "md5", "image"), ("sha1", "sha1", "image"), ("sha256", "sha256", "image"),
                                  ("video_md5", "md5", "video"), ("video_sha1", "sha1", "video"),
                                  ("video_sha256", "sha256", "video")]:
    register(DigestFormat(_name, _algorithm, _media))
