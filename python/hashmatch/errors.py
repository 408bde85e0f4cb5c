"""The exceptions hashmatch raises: every one is a HashmatchError."""

from __future__ import annotations


class HashmatchError(Exception):
    """Base class of every error hashmatch raises on bad input or resources."""


class InvalidInputError(HashmatchError, ValueError):
    """An argument has the wrong shape, dtype, size or value."""


class InputTypeError(InvalidInputError, TypeError):
    """An argument is of a type hashmatch does not accept."""


class MediaNotFoundError(HashmatchError, FileNotFoundError):
    """A media path does not exist."""


class DecodeError(HashmatchError):
    """A file or byte string is not a decodable image (corrupt, truncated, not an image)."""


class ResourceLimitError(HashmatchError):
    """Input exceeds a configured resource bound (for example max_pixels)."""


class HashFormatError(HashmatchError, ValueError):
    """A hash string or value is malformed."""


class IndexCorruptError(HashFormatError):
    """A saved index file is truncated or fails its checksum: rebuild it from the rows it was made of."""


class DatabaseNotFoundError(MediaNotFoundError):
    """A hash database to read does not exist (reading never creates one)."""


class ExchangeError(HashmatchError):
    """A live exchange failed: misconfigured, refused our request, or unreachable after every retry."""


class ExchangeConfigError(ExchangeError, InvalidInputError):
    """An exchange's settings are wrong (unknown API, bad --config, a secret where settings go)."""


class CredentialsError(ExchangeError):
    """An exchange's credentials are missing, malformed, rejected, or in a file others can read."""


class ExchangeUnavailableError(ExchangeError):
    """An exchange kept failing (5xx, 429, timeouts, truncated bodies) through every retry."""


class MissingDependencyError(HashmatchError, ImportError):
    """An optional dependency is not installed; the message names the pip extra that brings it."""
