"""Durable file writes: every file hashmatch writes goes through atomic_write."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]

#: Temporary files are named ``.<target>.<random>.tmp`` beside their target.
TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb", **open_args) -> Iterator[IO]:
    """Write `path` all or nothing: a temp file beside it, fsync, rename over it, fsync the directory.

    Readers see the old file or the new one, never a part; a crash or an exception leaves the
    old file and removes the temp file (one left by SIGKILL is swept by remove_stale_temp_files).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write opens for writing from scratch ('w' or 'wb'), not {mode!r}")
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=str(target.parent or "."))
    try:
        with os.fdopen(fd, mode, **open_args) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    """atomic_write of one bytes value."""
    with atomic_write(path) as f:
        f.write(data)


def fsync_dir(directory: PathLike) -> None:
    """Make a rename in `directory` durable (where the platform can open a directory)."""
    try:
        fd = os.open(os.fspath(directory) or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temp_files(path: PathLike, older_than: float = 3600.0) -> int:
    """Delete temp files atomic_write left for `path` when its process died; returns the count.

    Only files untouched for `older_than` seconds go: a write in progress (another process's)
    touches its file continuously and renames it within seconds.
    """
    target = Path(path)
    cutoff = time.time() - older_than
    removed = 0
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*{TEMP_SUFFIX}"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed += 1
        except OSError:  # gone already, or not ours to remove
            pass
    return removed
