"""Media or hash values in, the store's records and queries out: what every entry point hashes with.

An item is a hash value when a registered signal recognises it (a ``PDQ``, a 64-character hex
``str``, 32 bytes, a list of ``VPDQFrame``, a ``TMK``); otherwise it is media, sniffed by its
content (``hashmatch.media.open_media``): an image gets every default image signal, computed
from one decode; a video every default video signal, from one decode pass. An animated image
(GIF, APNG, WebP) is one entry of media type "image" holding both: the image signals of its
first frame and the frame signals (vPDQ) of all its frames, so a known image is found in any
of its frames and its frames find the video they were cut from. A file whose name
is 64 hex characters is passed as a ``pathlib.Path``, never a ``str``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import signals
from ..config import MAX_PIXELS, VPDQ_SECONDS_PER_HASH
from ..errors import InvalidInputError
from ..media import Animation, Media, animation_of, load_image, open_media, trim_pixels
from ..signals.video_hashes import VideoHashes, video_hashes
from ..store import Fingerprint, Query, Record


def fingerprint(signal: signals.SignalType, value: Any, quality: Optional[int] = None,
                options: Optional[Dict[str, Any]] = None) -> Fingerprint:
    """A computed or given value of a signal as the store's fingerprint (options: how hashmatch computed it)."""
    stored = signal.to_stored(value)
    params = dict(stored.params)
    if options is not None:
        params.update(signal.computed_params(options))
    q = quality if quality is not None else stored.quality
    return Fingerprint(signal.name, stored.value, q, signal.version, params, stored.data)


def as_hash(item: Any) -> Optional[Tuple[signals.SignalType, Any]]:
    """(signal, value) when an item already is a hash value, else None (it is media)."""
    return signals.value_of(item)


def record_of(item: Any, quality: Optional[int] = None) -> Record:
    """The record (media type and fingerprints) of a hash value or a media item, hashing media."""
    found = as_hash(item)
    if found is not None:
        signal, value = found
        return Record(_media_type(signal), [fingerprint(signal, value, quality)])
    media = open_media(item)
    if media.kind == "video":
        return video_record(media.source)
    animation = animation_of(media.source)  # checked before anything is decoded
    fps = image_fingerprints(media, signals.computed("image"))
    if quality is not None:  # a caller's quality replaces the computed one
        fps = [Fingerprint(f.format, f.value, quality, f.algorithm_version, f.params, f.data)
               if f.quality is not None else f for f in fps]
    if animation is not None:
        fps += [fingerprint(s, variants[0][1], options={"animation": animation})
                for s, variants in animation_values(animation)]
    return Record("image", fps)


def animation_values(animation: Animation, dihedral: bool = False) -> List[Tuple[signals.SignalType, List]]:
    """(signal, its (variant, value) list) for each default video signal computed from an animation.

    An animated image is an image (its first frame: pdq, as the field hashes it) and a short video
    (its frames: vpdq, timed by the file's own delays); TMK+PDQF and the file digests of videos
    are not computed from animations.
    """
    out = []
    for signal in signals.computed("video"):
        if signal.computed_from == "frames":
            variants = signal.from_animation(animation, {"dihedral": dihedral})
            if variants:
                out.append((signal, variants))
    return out


def image_fingerprints(media: Media, wanted: Sequence[signals.SignalType]) -> List[Fingerprint]:
    """The fingerprints of an image in the wanted signals: pixel signals from one decode, digests of the file."""
    out: List[Fingerprint] = []
    pixel_signals = [s for s in wanted if s.computed_from == "pixels"]
    if pixel_signals:
        pixels = load_image(media.source)
        out += [fingerprint(s, s.from_pixels(pixels)) for s in pixel_signals]
    byte_signals = [s for s in wanted if s.computed_from == "bytes"]
    if byte_signals:
        if media.path is None:
            raise InvalidInputError(f"{', '.join(s.name for s in byte_signals)} of {media.name} need the file")
        out += [Fingerprint(s.name, s.of_file(media.path)) for s in byte_signals]
    return out


def video_record(video: Any) -> Record:
    """Every default video signal of a video in one decode pass (vPDQ, TMK+PDQF, file digests)."""
    names = [s.name for s in signals.computed("video")]
    return Record("video", video_fingerprints(video_hashes(video, names, seconds_per_hash=VPDQ_SECONDS_PER_HASH)))


def video_fingerprints(h: VideoHashes) -> List[Fingerprint]:
    """The fingerprints of computed VideoHashes, one per format it holds (vPDQ at its sampling)."""
    options = {"seconds_per_hash": VPDQ_SECONDS_PER_HASH}
    out = []
    for name in h.formats:
        value = h.values.get(name)
        if value is not None:
            out.append(fingerprint(signals.get(name), value, options=options))
    return out


def query_of(item: Any, dihedral: bool = False, trim_borders: bool = False, *, max_pixels: int = MAX_PIXELS) -> Query:
    """The hashes to look up for a hash value, an image or a video (images decoded up to max_pixels)."""
    found = as_hash(item)
    if found is not None:
        signal, value = found
        if (dihedral or trim_borders) and signal.computed_from == "pixels":
            raise InvalidInputError("dihedral and trim_borders matching need the image, not its hash: "
                                    "pass the media")
        return Query(media_type=_media_type(signal)).add(signal.name, value)
    media = open_media(item)
    if media.kind == "video":
        return video_query(media.source, dihedral=dihedral)
    animation = animation_of(media.source, max_pixels=max_pixels)
    pixels = load_image(media.source, max_pixels=max_pixels)
    trimmed = trim_pixels(pixels) if trim_borders else None
    query = Query(media_type="image")
    for signal in signals.computed("image", purpose="query"):
        if signal.computed_from == "pixels":
            for variant, value in signal.query_variants(pixels, dihedral=dihedral, trimmed=trimmed):
                query.add(signal.name, value, variant)
        elif media.path is not None:
            query.add(signal.name, signal.of_file(media.path))
    if animation is not None:  # its frames too: a known image in them, or the video they were cut from
        for signal, variants in animation_values(animation, dihedral):
            for variant, value in variants:
                query.add(signal.name, value, variant)
    return query


def query_signals(media_type: str) -> List[str]:
    """The signals a query of this media type computes and matches, by name."""
    return [s.name for s in signals.computed(media_type, purpose="query")]


def video_query(video: Any, **limits: Any) -> Query:
    """The hashes a video is matched on, from one decode pass; limits go to video_hashes."""
    return query_of_video_hashes(video_hashes_for_query(video, **limits))


def video_hashes_for_query(video: Any, **limits: Any) -> VideoHashes:
    """The VideoHashes a video query needs (vPDQ at the database's sampling, TMK+PDQF, MD5; limits may
    include dihedral=True: vPDQ's frames rotated and flipped too)."""
    return video_hashes(video, query_signals("video"), seconds_per_hash=VPDQ_SECONDS_PER_HASH, **limits)


def query_of_video_hashes(h: VideoHashes) -> Query:
    """The Query of already computed VideoHashes."""
    query = Query(media_type="video")
    for name in h.formats:
        if h.values.get(name) is not None and signals.get(name).index is not None:
            for variant, value in h.variants.get(name, [("original", h.values[name])]):
                query.add(name, value, variant)
    return query


def _media_type(signal: signals.SignalType) -> str:
    return "video" if signal.media_type == "video" else "image"
