"""Image decoding: every natural input form to a uint8 pixel array the core can hash.

Decoding follows what the field's hash lists were made with (python-threatexchange and
the reference tools): Pillow, no EXIF rotation unless asked, alpha dropped, other modes
converted with Pillow's ``convert("RGB")``.
"""

from __future__ import annotations

import io
import math
import os
from typing import IO, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps

from .errors import DecodeError, HashmatchError, InputTypeError, InvalidInputError, MediaNotFoundError, ResourceLimitError

#: Largest image, in pixels, decoded by default: above every camera and most panoramas,
#: below Pillow's own decompression-bomb refusal (about 179 million).
DEFAULT_MAX_PIXELS = 150_000_000

#: ``fast_decode`` asks the JPEG decoder for a reduced DCT scale only when the shorter side
#: is at least twice this: PDQ blurs to 64x64, so 512 pixels keep far more detail than it uses.
FAST_DECODE_MIN_SIDE = 512

ImageInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], Image.Image, np.ndarray]

# Modes the core hashes without conversion: gray is hashed as R = G = B, alpha is ignored,
# exactly as convert("RGB") followed by the reference would.
_MODES_AS_IS = frozenset({"L", "RGB", "RGBA"})


def load_image(
    image: ImageInput,
    *,
    exif_transpose: bool = False,
    fast_decode: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Return `image` as a uint8 array (HxW gray, HxWx3 RGB or HxWx4 RGBA), validated."""
    if isinstance(image, np.ndarray):
        return check_array(image, max_pixels=max_pixels)
    if isinstance(image, Image.Image):
        _check_pixels(image.size, max_pixels, "image")
        return _pil_to_array(image, exif_transpose=exif_transpose)
    if isinstance(image, (bytes, bytearray, memoryview)):
        if len(image) == 0:
            raise DecodeError("image bytes are empty")
        return _decode(io.BytesIO(bytes(image)), "<bytes>", exif_transpose, fast_decode, max_pixels)
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        if not os.path.exists(path):
            raise MediaNotFoundError(f"no such file: {path!r}")
        if os.path.isdir(path):
            raise InvalidInputError(f"{path!r} is a directory, not an image file")
        with open(path, "rb") as f:
            return _decode(f, path, exif_transpose, fast_decode, max_pixels)
    if hasattr(image, "read"):
        return _decode(image, getattr(image, "name", "<file>"), exif_transpose, fast_decode, max_pixels)
    raise InputTypeError(
        f"image must be a path, bytes, a file object, a PIL image or a numpy array, "
        f"not {type(image).__name__}"
    )


def check_array(array: np.ndarray, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Validate a pixel array and return it as HxW, HxWx3 or HxWx4 uint8 (no copy)."""
    if array.dtype != np.uint8:
        hint = (
            " (scale floats in [0, 1] with (a * 255).round().astype(np.uint8))"
            if array.dtype.kind == "f"
            else " (convert with a.astype(np.uint8) after scaling to 0..255)"
        )
        raise InvalidInputError(f"image array must have dtype uint8, got {array.dtype}{hint}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InvalidInputError(
            f"image array must be HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA), got shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidInputError(f"image array is empty: shape {array.shape}")
    _check_pixels((array.shape[1], array.shape[0]), max_pixels, "image array")
    return array


def _check_pixels(size: tuple[int, int], max_pixels: int, what: str) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise DecodeError(f"{what} has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ResourceLimitError(
            f"{what} is {width}x{height} = {width * height:,} pixels, over max_pixels={max_pixels:,}; "
            f"pass a larger max_pixels if this input is trusted"
        )


def _decode(fp: IO[bytes], name: str, exif_transpose: bool, fast_decode: bool, max_pixels: int) -> np.ndarray:
    # Pillow's format plugins raise more than their documented errors on hostile bytes
    # (struct.error, IndexError, KeyError, ...): any of them means "not a decodable image".
    try:
        im = Image.open(fp)
    except Image.DecompressionBombError as e:
        raise _bomb(name, e, max_pixels) from e
    except Exception as e:
        raise DecodeError(f"{name}: not a decodable image ({type(e).__name__}: {e})") from e
    with im:
        _check_pixels(im.size, max_pixels, name)
        if fast_decode and im.format == "JPEG":
            _reduce_jpeg_scale(im)
        try:
            im.load()
        except Image.DecompressionBombError as e:
            raise _bomb(name, e, max_pixels) from e
        except HashmatchError:
            raise
        except Exception as e:
            raise DecodeError(f"{name}: corrupt or truncated image ({type(e).__name__}: {e})") from e
        try:
            return _pil_to_array(im, exif_transpose=exif_transpose)
        except HashmatchError:
            raise
        except Exception as e:
            raise DecodeError(f"{name}: cannot convert the decoded image ({type(e).__name__}: {e})") from e


def _bomb(name: str, error: Exception, max_pixels: int) -> ResourceLimitError:
    # Pillow refuses before our own max_pixels check can run; say which limit applied.
    return ResourceLimitError(
        f"{name}: refused by Pillow's decompression-bomb check ({error}); hashmatch's "
        f"max_pixels={max_pixels:,} cannot exceed 2 * PIL.Image.MAX_IMAGE_PIXELS"
    )


def _reduce_jpeg_scale(im: ImageFile.ImageFile) -> None:
    width, height = im.size
    shorter = min(width, height)
    if shorter < 2 * FAST_DECODE_MIN_SIDE:
        return
    scale = FAST_DECODE_MIN_SIDE / shorter
    # draft() picks the smallest DCT scale (1/2, 1/4, 1/8) that is still at least this size.
    im.draft(im.mode if im.mode in ("L", "RGB") else "RGB", (math.ceil(width * scale), math.ceil(height * scale)))


def _pil_to_array(im: Image.Image, *, exif_transpose: bool) -> np.ndarray:
    if exif_transpose:
        im = ImageOps.exif_transpose(im)
    if im.mode not in _MODES_AS_IS:
        try:
            im = im.convert("RGB")
        except (OSError, ValueError) as e:
            raise DecodeError(f"cannot convert {im.mode} image to RGB ({e})") from e
    # L, RGB and RGBA arrive as uint8 HxW, HxWx3 and HxWx4: what the core reads directly.
    return np.asarray(im)


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


def _head(item: object, size: int = 512) -> "bytes | None":
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
