"""What a scan reads: the files of a directory, of a list of paths, or of a bucket URL (fsspec)."""

from __future__ import annotations

import os
from typing import List, Tuple

from ..errors import InvalidInputError, MediaNotFoundError
from ..media import HEAD_BYTES, media_kind


def is_url(path: str) -> bool:
    """Whether a path names an fsspec URL (``s3://``, ``memory://``, ``file://`` ...) rather than a local path."""
    return "://" in path


def list_files(source: str) -> List[str]:
    """Every file of a source, sorted: a directory (recursively), a file of paths (one per line), or a URL."""
    source = os.fspath(source)
    if is_url(source):
        return _list_url(source)
    if os.path.isdir(source):
        out = []
        for root, dirs, files in os.walk(source):
            dirs.sort()
            out += [os.path.join(root, name) for name in files]
        return sorted(out)
    if os.path.isfile(source):
        if media_kind(source) != "unknown":
            return [source]  # one media file is a source of one
        return _read_path_list(source)
    raise MediaNotFoundError(f"scan source {source!r} does not exist; pass a directory, a file of paths or a URL")


def _read_path_list(path: str) -> List[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"scan source {path!r} is neither media nor a text file of paths ({e})") from e
    # Duplicate lines would be scanned twice: a list names each file once.
    return list(dict.fromkeys(line for line in lines if line and not line.startswith("#")))


def _list_url(url: str) -> List[str]:
    fs, root = _filesystem(url)
    if not fs.exists(root):
        raise MediaNotFoundError(f"scan source {url!r} does not exist")
    if fs.isfile(root):
        return [url]
    return sorted(fs.unstrip_protocol(p) for p, info in fs.find(root, detail=True).items()
                  if info.get("type", "file") == "file")


def _filesystem(url: str):
    try:
        from fsspec.core import url_to_fs
    except ImportError as e:  # pragma: no cover - fsspec is a dependency
        raise InvalidInputError("scanning URLs needs fsspec: pip install fsspec") from e
    try:
        return url_to_fs(url)
    except (ImportError, ValueError) as e:
        raise InvalidInputError(f"cannot open {url!r}: {e}; install the fsspec backend for its protocol"
                                " (s3fs for s3://, gcsfs for gs://)") from e


def shared_between_processes(source: str) -> bool:
    """Whether other processes see the same files (false for ``memory://``, which lives in one process)."""
    return not os.fspath(source).startswith("memory://")


def read_head_and_size(path: str) -> Tuple[bytes, int]:
    """The first HEAD_BYTES bytes of a local file and its size."""
    with open(path, "rb") as f:
        return f.read(HEAD_BYTES), os.fstat(f.fileno()).st_size


def read_bytes(path: str) -> bytes:
    """The whole content of a local file or a URL."""
    if is_url(path):
        fs, p = _filesystem(path)
        return fs.cat_file(p)
    with open(path, "rb") as f:
        return f.read()
