"""File digests: ``md5``, ``sha1``, ``sha256`` of images and ``video_md5``, ``video_sha1``, ``video_sha256`` of videos.

Exact matches only: a digest says "the same bytes", never "the same picture".
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Optional, Sequence, Tuple

from ..errors import HashFormatError
from .base import IndexSpec, Serialized, SignalType, register


class DigestSignal(SignalType):
    """A cryptographic digest of the file bytes, as lower-case hex."""

    threshold = 0
    computed_from = "bytes"
    index = IndexSpec("exact")

    def __init__(self, name: str, algorithm: str, media_type: str, *, default: bool = False, query: bool = False,
                 complete: bool = False, external_names: Sequence[Tuple[str, str, Optional[str]]] = ()) -> None:
        self.name, self.algorithm, self.media_type = name, algorithm, media_type
        self.default, self.query, self.complete = default, query, complete
        self.external_names = tuple(external_names)
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

    def digester(self) -> Any:
        """A new hashlib object of this digest's algorithm."""
        return hashlib.new(self.algorithm)

    def of_file(self, path: str) -> str:
        """The digest of a file's bytes, read in 1 MiB chunks (media can be gigabytes)."""
        digest = self.digester()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()



register(DigestSignal("md5", "md5", "image", complete=True, external_names=(("ncmec", "MD5", "image"),
                                                              ("cybertipline", "MD5", "image"))))
register(DigestSignal("sha1", "sha1", "image", external_names=(("ncmec", "SHA1", "image"),
                                                                ("cybertipline", "SHA1", "image"))))
register(DigestSignal("sha256", "sha256", "image", complete=True, external_names=(("cybertipline", "SHA256", "image"),)))
# A video entry holds its file's MD5 and SHA-256; a video query computes the MD5 (what exchanges share).
register(DigestSignal("video_md5", "md5", "video", default=True, query=True, complete=True,
                      external_names=(("ncmec", "MD5", "video"), ("stopncii", "VideoMD5", "video"),
                                      ("cybertipline", "MD5", "video"))))
register(DigestSignal("video_sha1", "sha1", "video", external_names=(("ncmec", "SHA1", "video"),
                                                                      ("cybertipline", "SHA1", "video"))))
register(DigestSignal("video_sha256", "sha256", "video", default=True, complete=True,
                      external_names=(("cybertipline", "SHA256", "video"),)))
