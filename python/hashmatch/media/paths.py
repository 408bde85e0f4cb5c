"""Local media paths: the one check every reader makes before opening one."""

from __future__ import annotations

import os
from typing import Union

from ..errors import InvalidInputError, MediaNotFoundError


def checked_path(path: Union[str, "os.PathLike[str]"], what: str = "media") -> str:
    """The path as a str once it names an existing file; MediaNotFoundError or InvalidInputError otherwise."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise MediaNotFoundError(f"no such file: {p!r}")
    if os.path.isdir(p):
        raise InvalidInputError(f"{p!r} is a directory, not {'an' if what[0] in 'aeiou' else 'a'} {what} file")
    return p
