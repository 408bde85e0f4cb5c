"""Decoded frames to RGB pixels, the way a reference pipeline converts them.

The two video references convert frames differently, and the hashes show it:

- the ffmpeg command line (what tmkpy hashes) applies the display matrix (``-autorotate``)
  and converts with the frame's own colour matrix and range (its scale filter's ``auto``);
- vpdq hands each frame to a plain ``sws_scale``: as stored, with swscale's default
  BT.601 matrix and the range its pixel format implies (``yuvj*`` full, others limited).

Both scale interlaced frames as one picture (FFmpeg 5.1's swscale, and the scale filter's
``interl=0``); the swscale in PyAV's newer FFmpeg scales a frame flagged interlaced field by
field, so such a frame is handed over as a progressive copy. Which way a signal converts is
the signal's (``SignalType.as_displayed``).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .orientation import displayed


def rgb_pixels(reformatter: "object", frame: "object", *, as_displayed: bool, width: Optional[int] = None,
               height: Optional[int] = None, interpolation: Optional[str] = None) -> np.ndarray:
    """An av.VideoFrame as HxWx3 RGB: as the ffmpeg command line shows it, or as vpdq reads it."""
    source = progressive(frame)
    if as_displayed:
        rgb = reformatter.reformat(source, width=width, height=height, format="rgb24", interpolation=interpolation,
                                   src_color_range=frame.color_range)
        return displayed(frame, rgb.to_ndarray())
    rgb = reformatter.reformat(source, width=width, height=height, format="rgb24", interpolation=interpolation,
                               src_colorspace="ITU601")
    return rgb.to_ndarray()


def progressive(frame: "object") -> "object":
    """The frame itself, or for a frame flagged interlaced the same pixels in a frame without the flag."""
    if not frame.interlaced_frame:
        return frame
    import av

    copy = av.VideoFrame(frame.width, frame.height, frame.format.name)
    for src, dst in zip(frame.planes, copy.planes):
        rows = min(src.buffer_size // src.line_size, dst.buffer_size // dst.line_size)
        width = min(src.line_size, dst.line_size)
        a = np.frombuffer(src, np.uint8)[:rows * src.line_size].reshape(rows, src.line_size)
        b = np.frombuffer(dst, np.uint8)[:rows * dst.line_size].reshape(rows, dst.line_size)
        b[:, :width] = a[:, :width]
    copy.colorspace, copy.color_range = frame.colorspace, frame.color_range
    copy.pts, copy.time_base = frame.pts, frame.time_base
    return copy
