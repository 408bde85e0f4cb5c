"""One file in, one result row out, never raising: what every scan engine runs on its workers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ..config import MAX_PIXELS
from ..errors import DecodeError
from ..media import HEAD_BYTES, media_kind
from ..pipeline import HashDB
from ..pipeline.records import query_of, query_of_video_hashes, query_signals, video_hashes_for_query
from ..store import Match
from .sources import is_url, read_bytes, read_head_and_size

#: A task: a path, and its bytes when the parent already read them (sources only it can see).
Task = Tuple[str, Optional[bytes]]
Row = Dict[str, Any]


@dataclass(frozen=True)
class ScanOptions:
    """What every worker applies to every file: decode limits and match thresholds."""

    max_pixels: int = MAX_PIXELS
    max_distance: Optional[int] = None
    min_quality: Optional[int] = None


_DBS: Dict[str, HashDB] = {}
_DBS_LOCK = threading.Lock()


def worker_db(path: str) -> HashDB:
    """This process's read-only HashDB for `path`, opened (and its index loaded) once."""
    with _DBS_LOCK:
        db = _DBS.get(path)
        if db is None:
            db = _DBS[path] = HashDB(path, read_only=True)  # read_only never creates
        return db


@dataclass
class _Fetched:
    path: str
    size: Optional[int] = None
    kind: str = "unknown"
    media: Any = None  # the bytes, or the local path of a video decoded from disk
    error: Optional[BaseException] = None


def _fetch(task: Task) -> _Fetched:
    path, data = task
    out = _Fetched(path)
    try:
        if data is None and is_url(path):
            data = read_bytes(path)  # one request per object: a bucket charges and waits per request
        if data is not None:
            head, out.size = data[:HEAD_BYTES], len(data)
        else:
            head, out.size = read_head_and_size(path)
        out.kind = media_kind(head)
        if out.kind == "video" and data is None:
            out.media = path  # a local video streams from disk: never all of it in memory
        elif out.kind != "unknown":
            out.media = data if data is not None else read_bytes(path)
    except Exception as e:  # a file that cannot be read is a row with its reason, like one that cannot decode
        out.error = e
    return out


def scan_batch(tasks: Sequence[Task], db: HashDB, options: ScanOptions) -> List[Row]:
    """The rows of a batch of files, each file read while the one before it is decoded and hashed."""
    with ThreadPoolExecutor(max_workers=1) as reader:
        return [scan_fetched(f, db, options) for f in _prefetch(reader, tasks)]


def _prefetch(reader: ThreadPoolExecutor, tasks: Sequence[Task]) -> Iterator[_Fetched]:
    # One file read ahead: reading (disk, network) overlaps decoding, memory stays at two files.
    pending = reader.submit(_fetch, tasks[0]) if tasks else None
    for k in range(len(tasks)):
        current = pending.result()
        pending = reader.submit(_fetch, tasks[k + 1]) if k + 1 < len(tasks) else None
        yield current


def scan_fetched(f: _Fetched, db: HashDB, options: ScanOptions) -> Row:
    """The row of one fetched file: its hashes and matches, or status 'error' with the reason."""
    start = time.perf_counter()
    row = empty_row(f.path)
    row["size"], row["media_type"] = f.size, f.kind
    try:
        if f.error is not None:
            raise f.error
        if f.kind == "image":
            _scan_image(row, f.media, db, options)
        elif f.kind == "video":
            _scan_video(row, f.media, db, options)
        elif f.size == 0:
            raise DecodeError("empty file")
        else:
            raise DecodeError("not an image or a video (judged by its content, not its name)")
        row["status"] = "ok"
    except Exception as e:  # a worker never stops on a file: every failure becomes that file's row
        row["status"], row["error_type"], row["error"] = "error", type(e).__name__, str(e)
    row["seconds"] = round(time.perf_counter() - start, 6)
    return row


def _scan_image(row: Row, data: bytes, db: HashDB, options: ScanOptions) -> None:
    query = query_of(data, max_pixels=options.max_pixels)
    found = db.match_query(query, max_distance=options.max_distance, min_quality=options.min_quality)
    row["formats"] = list(query.values)
    if "vpdq" in query.values:  # an animated image is also a short video: its frames were looked up too
        row["vpdq_frames"] = len(query.values["vpdq"][0][1])
    if found.query is not None:
        row["pdq"], row["quality"] = found.query.hex, found.query.quality
    row["skipped"], row["matches"] = found.skipped, [match_dict(m) for m in found]


def _scan_video(row: Row, media: Any, db: HashDB, options: ScanOptions) -> None:
    h = video_hashes_for_query(media, threads=1)
    row["formats"], row["vpdq_frames"], row["video_md5"] = query_signals("video"), len(h.vpdq or ()), h.md5
    found = db.match_query(query_of_video_hashes(h), max_distance=options.max_distance,
                           min_quality=options.min_quality)
    row["skipped"], row["matches"] = found.skipped, [match_dict(m) for m in found]


#: The fields of one match in a row, in order (the Parquet schema follows them).
MATCH_FIELDS = ("entry_id", "uid", "format", "distance", "query_match_percent", "compared_match_percent",
                "level1", "level2", "variant", "media_type", "source", "external_id", "labels", "classification")
#: The fields of a row, in order; ``seconds`` is the only one that differs between two scans of a file.
ROW_FIELDS = ("path", "size", "media_type", "formats", "pdq", "quality", "vpdq_frames", "video_md5", "matches",
              "skipped", "status", "error_type", "error", "seconds")


def match_dict(m: Match) -> Dict[str, Any]:
    """One match as a row's plain dict."""
    d = {name: getattr(m, name) for name in MATCH_FIELDS}
    d["labels"] = list(m.labels)
    return d


def empty_row(path: str) -> Row:
    """A row with every field, nothing known yet."""
    row: Row = dict.fromkeys(ROW_FIELDS)
    row["path"], row["formats"], row["matches"] = path, [], []
    return row


def error_row(path: str, error_type: str, message: str) -> Row:
    """The row of a file its worker could not report on (the worker process died on it)."""
    row = empty_row(path)
    row["status"], row["error_type"], row["error"] = "error", error_type, message
    return row
