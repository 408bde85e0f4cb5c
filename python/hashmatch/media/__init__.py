"""Media in: any input form to checked pixels (images) or a decodable source (videos). Never hashes."""

from .animation import Animation, AnimationFrame, animation_of
from .borders import content_box, trim_borders, trim_pixels
from .dispatch import Media, is_media_input, open_media
from .paths import checked_path
from .image import DEFAULT_MAX_PIXELS, ImageInput, check_array, load_image
from .sniff import HEAD_BYTES, media_kind

__all__ = ["Animation", "AnimationFrame", "DEFAULT_MAX_PIXELS", "HEAD_BYTES", "ImageInput", "Media", "animation_of",
           "check_array", "checked_path", "content_box", "is_media_input", "load_image", "media_kind", "open_media",
           "trim_borders", "trim_pixels"]
