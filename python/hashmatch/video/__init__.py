"""The video decode engine, hash-agnostic: open, plan, decode in parallel segments into frame sinks.

Each signal that hashes video supplies a ``FrameSink``; ``decode_into`` feeds every sink from
one decode pass.
"""

from .container import VideoInfo, VideoInput, VideoReader, frame_time, video_info
from .decode import FramePart, FrameSink, decode_into
from .plan import Segment, StreamPlan, plan_stream

__all__ = ["FramePart", "FrameSink", "Segment", "StreamPlan", "VideoInfo", "VideoInput", "VideoReader",
           "decode_into", "frame_time", "plan_stream", "video_info"]
