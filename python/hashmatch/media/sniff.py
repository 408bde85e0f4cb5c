"""What a piece of media is, judged by its content (magic bytes), never by its file name."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

#: Bytes read to sniff a file's kind.
HEAD_BYTES = 512

# Content signatures, checked in order: (offset, magic bytes, kind). Extensions are never trusted.
_SIGNATURES = (
    (0, b"\xff\xd8\xff", "image"),  # JPEG
    (0, b"\x89PNG\r\n\x1a\n", "image"),
    (0, b"GIF87a", "image"),
    (0, b"GIF89a", "image"),
    (0, b"BM", "image"),
    (0, b"II*\x00", "image"),  # TIFF, little-endian
    (0, b"MM\x00*", "image"),  # TIFF, big-endian
    (8, b"WEBP", "image"),  # RIFF....WEBP
    (8, b"AVI ", "video"),  # RIFF....AVI
    (0, b"\x1a\x45\xdf\xa3", "video"),  # Matroska / WebM (EBML)
    (0, b"FLV", "video"),
    (0, b"OggS", "video"),
    (0, b"\x00\x00\x01\xba", "video"),  # MPEG program stream
    (0, b"\x30\x26\xb2\x75", "video"),  # ASF / WMV
    (4, b"moov", "video"),  # QuickTime without an ftyp box
    (4, b"mdat", "video"),
    (4, b"wide", "video"),
)
# ISO base media files (MP4, MOV, 3GP, HEIF, AVIF) share the ftyp box: the brand tells stills.
_IMAGE_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"})


def media_kind(item: object) -> str:
    """'image', 'video' or 'unknown', from the content (magic bytes), never the file name."""
    if isinstance(item, (np.ndarray, Image.Image)):
        return "image"
    head = _head(item)
    if head is None:
        return "unknown"
    if head[4:8] == b"ftyp":
        return "image" if head[8:12] in _IMAGE_BRANDS else "video"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "video"  # MPEG transport stream: a sync byte every 188 bytes
    for offset, magic, kind in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return kind
    return "unknown"


def maybe_animated(item: object) -> bool:
    """Whether image content may hold several frames (GIF; PNG with an acTL chunk; WebP with ANIM)."""
    head = _head(item)
    if not head:
        return False
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return True  # only parsing it finds a second frame
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return b"acTL" in head  # APNG: acTL comes before the first IDAT
    return head[8:16] == b"WEBPVP8X" and len(head) > 20 and bool(head[20] & 0x02)


def _head(item: object, size: int = HEAD_BYTES) -> "bytes | None":
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item[:size])
    if isinstance(item, (str, os.PathLike)):
        try:
            with open(os.fspath(item), "rb") as f:
                return f.read(size)
        except OSError:
            return None
    if hasattr(item, "read") and hasattr(item, "seek") and hasattr(item, "tell"):
        pos = item.tell()
        try:
            return item.read(size)
        finally:
            item.seek(pos)
    return None
