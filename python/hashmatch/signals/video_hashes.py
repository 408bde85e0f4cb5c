"""Every video signal from one decode pass: each frame signal's sink fed by one decode, file digests alongside.

Which signals hash video, and how, is the registry's: a signal computed from "frames" supplies
a frame sink (vPDQ keeps one frame a second, TMK fills 15-fps slots), one computed from
"bytes" a digest of the file. ``hashmatch.video.decode_into`` decides which frames to decode
and on which threads.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ..config import (MAX_DURATION, MAX_FRAME_PIXELS, MAX_HASHED_FRAMES, MAX_TMK_FRAMES, VPDQ_SECONDS_PER_HASH,
                      default_threads)
from ..errors import InvalidInputError
from ..video import VideoInfo, VideoInput, VideoReader, decode_into
from .base import SignalType, all_signals, get
from .tmk import TMK
from .vpdq import VPDQFrame

#: The video signals built in, as python-threatexchange names them.
VIDEO_FORMATS = ("vpdq", "tmk_pdqf", "video_md5", "video_sha256")
#: TMK fills 15 slots a second: the default bound matches MAX_DURATION.
DEFAULT_MAX_TMK_FRAMES = MAX_TMK_FRAMES

_CHUNK = 1 << 20


@dataclass(frozen=True)
class VideoHashes:
    """The requested hashes of one video, by signal name; ``vpdq``, ``tmk``, ``md5``, ``sha256`` for short."""

    info: VideoInfo
    values: Dict[str, Any] = field(default_factory=dict)
    formats: Tuple[str, ...] = ()
    #: Per frame signal, (variant, value) to look up for a query: the plain value first, then
    #: (dihedral=True) vPDQ's rotated and flipped frames.
    variants: Dict[str, List[Tuple[str, Any]]] = field(default_factory=dict)

    @property
    def vpdq(self) -> Optional[List[VPDQFrame]]:
        """The vPDQ frames, if computed."""
        return self.values.get("vpdq")

    @property
    def tmk(self) -> Optional[TMK]:
        """The TMK+PDQF hash, if computed."""
        return self.values.get("tmk_pdqf")

    @property
    def md5(self) -> Optional[str]:
        """The file's MD5, if computed."""
        return self.values.get("video_md5")

    @property
    def sha256(self) -> Optional[str]:
        """The file's SHA-256, if computed."""
        return self.values.get("video_sha256")

    def __getitem__(self, name: str) -> Any:
        """The value of one requested format, by its name (``vpdq``, ``tmk_pdqf``, ``video_md5``, ...)."""
        if name not in self.formats:
            raise KeyError(f"{name!r} was not computed (computed: {', '.join(self.formats) or 'none'})")
        return self.values[name]

    def as_dict(self) -> Dict[str, object]:
        """The requested formats by name."""
        return {name: self.values[name] for name in self.formats}


def video_signals() -> List[str]:
    """Every registered signal computed from a video (frames or file bytes), by name."""
    return [s.name for s in all_signals() if s.media_type == "video" and s.computed_from in ("frames", "bytes")]


def _chosen(formats: Iterable[str]) -> List[SignalType]:
    if isinstance(formats, str):
        formats = (formats,)
    names = tuple(dict.fromkeys(formats))
    known = video_signals()
    unknown = [f for f in names if f not in known]
    if unknown:
        raise InvalidInputError(f"unknown video format(s) {unknown}; known: {', '.join(known)}")
    if not names:
        raise InvalidInputError("no video formats requested")
    return [get(n) for n in names]


def _digests(source: Any, signals: Sequence[SignalType]) -> Dict[str, str]:
    digesters = {s.name: s.digester() for s in signals}
    stream = open(source, "rb") if isinstance(source, (str, os.PathLike)) else io.BytesIO(source)
    with stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            for d in digesters.values():
                d.update(chunk)
    return {name: d.hexdigest() for name, d in digesters.items()}


def video_hashes(video: VideoInput, formats: Iterable[str] = VIDEO_FORMATS, *,
                 seconds_per_hash: float = VPDQ_SECONDS_PER_HASH, threads: Optional[int] = None,
                 max_frame_pixels: int = MAX_FRAME_PIXELS, max_duration: float = MAX_DURATION,
                 max_frames: int = MAX_HASHED_FRAMES, max_tmk_frames: int = MAX_TMK_FRAMES,
                 trim_borders: bool = False, dihedral: bool = False) -> VideoHashes:
    """The requested formats of a video (vpdq, tmk_pdqf, video_md5, video_sha256, ...) from one decode pass.

    threads: decoder threads (default: one per core). Paths and bytes are decoded in
    parallel stretches where the stream allows it; file objects in one sequential pass.

    trim_borders=True hashes each vPDQ frame inside its uniform borders (letterbox, pillarbox):
    for queries only, like hashmatch.pdq(..., trim_borders=True). TMK+PDQF is not affected.
    dihedral=True also hashes each vPDQ frame rotated and flipped (``variants``), for queries.
    """
    chosen = _chosen(formats)
    frame_signals = [s for s in chosen if s.computed_from == "frames"]
    byte_signals = [s for s in chosen if s.computed_from == "bytes"]
    if isinstance(video, (bytearray, memoryview)):
        video = bytes(video)  # one copy, shared by every reader of the decode
    elif byte_signals and hasattr(video, "read") and not isinstance(video, (str, os.PathLike)):
        video = video.read()  # a stream can be read once: keep its bytes for both the digests and the decode
    reopenable = isinstance(video, (str, os.PathLike, bytes))
    options = {"seconds_per_hash": seconds_per_hash, "max_frames": max_frames, "max_tmk_frames": max_tmk_frames,
               "trim_borders": trim_borders, "dihedral": dihedral}

    def open_video() -> VideoReader:
        return VideoReader(video, max_frame_pixels, max_duration)

    with open_video() as v, ThreadPoolExecutor(max_workers=1) as io_pool:
        digests = io_pool.submit(_digests, video, byte_signals) if byte_signals else None
        sinks = {s.name: s.video_sink(v, options) for s in frame_signals}
        if sinks:
            decode_into(open_video, v, sinks, threads or default_threads(), reopenable)
        values: Dict[str, Any] = {s.name: s.sink_result(sinks[s.name]) for s in frame_signals}
        variants = {s.name: s.sink_variants(sinks[s.name]) for s in frame_signals}
        if digests is not None:
            values.update(digests.result())
        return VideoHashes(v.info, values, tuple(s.name for s in chosen), variants)


def vpdq(video: VideoInput, *, seconds_per_hash: float = VPDQ_SECONDS_PER_HASH, threads: Optional[int] = None,
         max_frame_pixels: int = MAX_FRAME_PIXELS, max_duration: float = MAX_DURATION,
         max_frames: int = MAX_HASHED_FRAMES, trim_borders: bool = False,
         dihedral: bool = False) -> Union[List[VPDQFrame], List[List[VPDQFrame]]]:
    """vPDQ hash of a video: the PDQ of one frame per seconds_per_hash (0: every frame).

    dihedral=True: 8 frame lists, the frames rotated and flipped in DIHEDRAL_NAMES order (from
    one DCT per frame, as pdq(..., dihedral=True)), for looking up turned copies.
    """
    h = video_hashes(video, ("vpdq",), seconds_per_hash=seconds_per_hash, threads=threads,
                     max_frame_pixels=max_frame_pixels, max_duration=max_duration, max_frames=max_frames,
                     trim_borders=trim_borders, dihedral=dihedral)
    return [frames for _, frames in h.variants["vpdq"]] if dihedral else h.vpdq


def tmk(video: VideoInput, *, max_frame_pixels: int = MAX_FRAME_PIXELS, max_duration: float = MAX_DURATION,
        max_frames: int = MAX_TMK_FRAMES) -> TMK:
    """TMK+PDQF hash of a video: 15-fps 64x64 frames, PDQF features, the reference's periods and kernel."""
    return video_hashes(video, ("tmk_pdqf",), max_frame_pixels=max_frame_pixels, max_duration=max_duration,
                        max_tmk_frames=max_frames).tmk
