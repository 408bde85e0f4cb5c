"""Image decoding: every natural input form to a uint8 pixel array the core can hash.

Decoding follows what the field's hash lists were made with (python-threatexchange and
the reference tools): Pillow, no EXIF rotation unless asked, alpha dropped, other modes
converted with Pillow's ``convert("RGB")``. HEIC/HEIF decode through pillow-heif (libheif,
which always applies HEIF's own rotation and mirror properties, as the format requires, and
leaves no EXIF orientation behind); AVIF through Pillow's own plugin (EXIF orientation kept,
applied only with exif_transpose=True, as for JPEG).
"""

from __future__ import annotations

import io
import math
import os
from typing import IO, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, features

from ..config import FAST_DECODE_MIN_SIDE, MAX_PIXELS
from ..errors import DecodeError, HashmatchError, InputTypeError, InvalidInputError, ResourceLimitError
from .paths import checked_path

#: Largest image, in pixels, decoded by default (hashmatch.config.MAX_PIXELS).
DEFAULT_MAX_PIXELS = MAX_PIXELS

ImageInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], Image.Image, np.ndarray]

def _register_decoders() -> None:
    """HEIC/HEIF (and AVIF where this Pillow lacks it) through pillow-heif, a dependency."""
    try:
        import pillow_heif
    except ImportError:  # without it, HEIC files raise DecodeError like any unknown format
        return
    pillow_heif.register_heif_opener()
    if not features.check("avif") and hasattr(pillow_heif, "register_avif_opener"):
        pillow_heif.register_avif_opener()  # pillow-heif < 1.0 on a Pillow < 11.3


_register_decoders()

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
        path = checked_path(image, "image")
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


def open_image(fp: IO[bytes], name: str, max_pixels: int) -> Image.Image:
    """A Pillow image opened from `fp`, its header checked against max_pixels; typed errors otherwise."""
    # Pillow's format plugins raise more than their documented errors on hostile bytes
    # (struct.error, IndexError, KeyError, ...): any of them means "not a decodable image".
    try:
        im = Image.open(fp)
    except Image.DecompressionBombError as e:
        raise _bomb(name, e, max_pixels) from e
    except Exception as e:
        raise DecodeError(f"{name}: not a decodable image ({type(e).__name__}: {e})") from e
    try:
        _check_pixels(im.size, max_pixels, name)
    except HashmatchError:
        im.close()
        raise
    return im


def decode_error(name: str, what: str, error: Exception, max_pixels: int) -> HashmatchError:
    """The typed error for a Pillow failure while decoding: a bomb refusal or a corrupt image."""
    if isinstance(error, HashmatchError):
        return error
    if isinstance(error, Image.DecompressionBombError):
        return _bomb(name, error, max_pixels)
    return DecodeError(f"{name}: {what} ({type(error).__name__}: {error})")


def _decode(fp: IO[bytes], name: str, exif_transpose: bool, fast_decode: bool, max_pixels: int) -> np.ndarray:
    im = open_image(fp, name, max_pixels)
    with im:
        if fast_decode and im.format == "JPEG":
            _reduce_jpeg_scale(im)
        try:
            im.load()
        except Exception as e:
            raise decode_error(name, "corrupt or truncated image", e, max_pixels) from e
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


