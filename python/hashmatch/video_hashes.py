"""Every video format from one decode pass: vPDQ, TMK+PDQF, and digests of the file bytes.

Each decoded frame goes to every requested sampler (vPDQ keeps one per second, TMK fills
15-fps slots), which hash them in the core; video_decode decides which frames to decode
and on which threads, and the file digests are computed alongside.
"""

from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from .errors import InvalidInputError
from .tmk import TMK
from .tmk_sampler import TMKSampler
from .video import (DEFAULT_MAX_DURATION, DEFAULT_MAX_FRAME_PIXELS, DEFAULT_MAX_HASHED_FRAMES, VideoInfo,
                    VideoInput, VPDQSampler, _Video)
from .video_decode import decode_into
from .vpdq_frames import VPDQFrame

#: Format names as python-threatexchange spells them.
VIDEO_FORMATS = ("vpdq", "tmk_pdqf", "video_md5", "video_sha256")
#: TMK fills 15 slots a second: the default bound matches DEFAULT_MAX_DURATION.
DEFAULT_MAX_TMK_FRAMES = int(15 * DEFAULT_MAX_DURATION) + 1

_CHUNK = 1 << 20


@dataclass(frozen=True)
class VideoHashes:
    """The requested hashes of one video; formats not requested are None."""

    info: VideoInfo
    vpdq: Optional[List[VPDQFrame]] = None
    tmk: Optional[TMK] = None
    md5: Optional[str] = None
    sha256: Optional[str] = None
    formats: Tuple[str, ...] = field(default=())

    def __getitem__(self, name: str):
        """The value of one requested format, by its name (``vpdq``, ``tmk_pdqf``, ``video_md5``, ...)."""
        if name not in self.formats:
            raise KeyError(f"{name!r} was not computed (computed: {', '.join(self.formats) or 'none'})")
        return {"vpdq": self.vpdq, "tmk_pdqf": self.tmk, "video_md5": self.md5, "video_sha256": self.sha256}[name]

    def as_dict(self) -> Dict[str, object]:
        """The requested formats by name."""
        return {name: self[name] for name in self.formats}


def _check_formats(formats: Iterable[str]) -> Tuple[str, ...]:
    if isinstance(formats, str):
        formats = (formats,)
    chosen = tuple(dict.fromkeys(formats))
    unknown = [f for f in chosen if f not in VIDEO_FORMATS]
    if unknown:
        raise InvalidInputError(f"unknown video format(s) {unknown}; known: {', '.join(VIDEO_FORMATS)}")
    if not chosen:
        raise InvalidInputError("no video formats requested")
    return chosen


def _digests(source, want_md5: bool, want_sha256: bool) -> Tuple[Optional[str], Optional[str]]:
    md5, sha = (hashlib.md5() if want_md5 else None), (hashlib.sha256() if want_sha256 else None)
    stream = open(source, "rb") if isinstance(source, (str, os.PathLike)) else io.BytesIO(source)
    with stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            for h in (md5, sha):
                if h is not None:
                    h.update(chunk)
    return (md5.hexdigest() if md5 else None), (sha.hexdigest() if sha else None)


def video_hashes(video: VideoInput, formats: Iterable[str] = VIDEO_FORMATS, *, seconds_per_hash: float = 1.0,
                 threads: Optional[int] = None, max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
                 max_duration: float = DEFAULT_MAX_DURATION, max_frames: int = DEFAULT_MAX_HASHED_FRAMES,
                 max_tmk_frames: int = DEFAULT_MAX_TMK_FRAMES, trim_borders: bool = False) -> VideoHashes:
    """The requested formats of a video (vpdq, tmk_pdqf, video_md5, video_sha256) from one decode pass.

    threads: decoder threads (default: one per core). Paths and bytes are decoded in
    parallel stretches where the stream allows it; file objects in one sequential pass.

    trim_borders=True hashes each vPDQ frame inside its uniform borders (letterbox, pillarbox):
    for queries only, like hashmatch.pdq(..., trim_borders=True). TMK+PDQF is not affected.
    """
    from .image import _default_threads

    chosen = _check_formats(formats)
    want_md5, want_sha = "video_md5" in chosen, "video_sha256" in chosen
    if isinstance(video, (bytearray, memoryview)):
        video = bytes(video)  # one copy, shared by every reader of the decode
    elif (want_md5 or want_sha) and hasattr(video, "read") and not isinstance(video, (str, os.PathLike)):
        video = video.read()  # a stream can be read once: keep its bytes for both the digests and the decode
    reopenable = isinstance(video, (str, os.PathLike, bytes))

    def open_video() -> _Video:
        return _Video(video, max_frame_pixels, max_duration)

    with open_video() as v, ThreadPoolExecutor(max_workers=1) as io_pool:
        digests = io_pool.submit(_digests, video, want_md5, want_sha) if want_md5 or want_sha else None
        sinks = {}
        if "vpdq" in chosen:
            sinks["vpdq"] = VPDQSampler(v.fps, seconds_per_hash, max_frames, trim_borders)
        if "tmk_pdqf" in chosen:
            sinks["tmk_pdqf"] = TMKSampler(v.fps, max_tmk_frames, v.exact_start)
        if sinks:
            decode_into(open_video, v, sinks, threads or _default_threads(), reopenable)
        md5, sha = digests.result() if digests else (None, None)
        return VideoHashes(v.info, sinks["vpdq"].frames if "vpdq" in sinks else None,
                           sinks["tmk_pdqf"].result() if "tmk_pdqf" in sinks else None, md5, sha, chosen)


def vpdq(video: VideoInput, *, seconds_per_hash: float = 1.0, threads: Optional[int] = None,
         max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS, max_duration: float = DEFAULT_MAX_DURATION,
         max_frames: int = DEFAULT_MAX_HASHED_FRAMES, trim_borders: bool = False) -> List[VPDQFrame]:
    """vPDQ hash of a video: the PDQ of one frame per seconds_per_hash (0: every frame)."""
    return video_hashes(video, ("vpdq",), seconds_per_hash=seconds_per_hash, threads=threads,
                        max_frame_pixels=max_frame_pixels, max_duration=max_duration, max_frames=max_frames,
                        trim_borders=trim_borders).vpdq


def tmk(video: VideoInput, *, max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
        max_duration: float = DEFAULT_MAX_DURATION, max_frames: int = DEFAULT_MAX_TMK_FRAMES) -> TMK:
    """TMK+PDQF hash of a video: 15-fps 64x64 frames, PDQF features, the reference's periods and kernel."""
    return video_hashes(video, ("tmk_pdqf",), max_frame_pixels=max_frame_pixels, max_duration=max_duration,
                        max_tmk_frames=max_frames).tmk
