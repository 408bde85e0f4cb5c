"""Container metadata, per format as each reference pipeline handles it (README "Video metadata").

Clips are made from one synthetic source with Debian's ffmpeg binary: display-matrix rotations
(the mp4 muxer's ``rotate`` tag, and every one of the 8 rotations and flips written into the
``tkhd`` matrix), colour matrix and range tags, a sample aspect ratio, interlaced coding, an
edit list, a timestamp offset. TMK+PDQF is checked against tmkpy (which hashes what the ffmpeg
command line writes: the display matrix applied), vPDQ against vpdq (libav frames as stored).
Measured here: TMK 1 - score <= 4.8e-6 on the rotated clips and <= 1.2e-6 on the others; vPDQ
0 bits on every frame of every clip. The checks are compat.py's (1e-5, and exact vPDQ), far
tighter than the issue's >= 0.99 / >= 0.95 and 95% within 31.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

import hashmatch
from compat import as_tmkpy, assert_tmk_agrees, assert_vpdq_agrees
from hashmatch.signals.tmk import TMKSignal
from hashmatch.signals.vpdq import VPDQSignal
from hashmatch.video import frames as video_frames
from hashmatch.video.orientation import DISPLAY_TRANSFORMS, matrix_transform
from videos import source_video

_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"]
# (a, b, c, d) of each of the 8 display matrices, by the transform the command line applies.
_MATRICES = {name: m for m, name in DISPLAY_TRANSFORMS.items()}


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def with_matrix(src: Path, dst: Path, a: int, b: int, c: int, d: int) -> Path:
    """A copy of an MP4 whose video track header (tkhd) holds the display matrix (a b; c d)."""
    data = bytearray(src.read_bytes())
    i = data.index(b"tkhd")
    offset = i + 4 + (40 if data[i + 4] == 0 else 52)  # past version/flags, times, ids, layer, volume
    data[offset:offset + 36] = struct.pack(">9i", a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30)
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("metadata")
    src = source_video(d / "source.mp4", seconds=4)
    s = str(src)
    made = {f"matrix_{name}": with_matrix(src, d / f"matrix_{name}.mp4", *m) for name, m in _MATRICES.items()}
    recipes = {
        "rotate_tag_90": ["-i", s, "-c", "copy", "-metadata:s:v:0", "rotate=90"],
        "rotate_tag_180": ["-i", s, "-c", "copy", "-metadata:s:v:0", "rotate=180"],
        "rotate_tag_270": ["-i", s, "-c", "copy", "-metadata:s:v:0", "rotate=270"],
        "bt709_tagged": ["-i", s, *_X264, "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"],
        "full_range": ["-i", s, "-vf", "scale=out_range=full", *_X264, "-pix_fmt", "yuv420p", "-color_range", "pc"],
        "sar_4_3": ["-i", s, "-vf", "setsar=4/3", *_X264],
        "interlaced": ["-i", s, "-vf", "setfield=tff", *_X264, "-flags", "+ildct+ilme", "-x264opts", "tff=1"],
        "edit_list": ["-ss", "1.5", "-i", s, "-c", "copy"],
    }
    for name, args in recipes.items():
        _ffmpeg(*args, str(d / f"{name}.mp4"))
        made[name] = d / f"{name}.mp4"
    _ffmpeg("-i", s, "-c", "copy", "-output_ts_offset", "3", str(d / "ts_offset.ts"))
    made["ts_offset"] = d / "ts_offset.ts"
    return made


_TMKPY: dict = {}


def _tmkpy(path: Path, tmp: Path):
    import tmkpy

    if path not in _TMKPY:
        fv = tmkpy.hashVideo(str(path), "ffmpeg")
        fv.writeToOutputFile(str(tmp / f"{path.stem}.tmk"), "test")
        _TMKPY[path] = (fv, hashmatch.TMK.read(tmp / f"{path.stem}.tmk"))
    return _TMKPY[path]


NAMES = [f"matrix_{n}" for n in _MATRICES] + ["rotate_tag_90", "rotate_tag_180", "rotate_tag_270", "bt709_tagged",
                                              "full_range", "sar_4_3", "interlaced", "edit_list", "ts_offset"]


@pytest.mark.parametrize("name", NAMES)
def test_tmk_agrees_with_tmkpy(clips, name, tmp_path):
    fv, theirs = _tmkpy(clips[name], tmp_path)
    assert_tmk_agrees(hashmatch.tmk(clips[name]), fv, theirs)


@pytest.mark.parametrize("name", NAMES)
def test_vpdq_agrees_with_vpdq(clips, name):
    import vpdq as reference

    theirs = [hashmatch.VPDQFrame(f.frame_number, f.quality, f.hex, f.timestamp)
              for f in reference.computeHash(str(clips[name]), seconds_per_hash=1.0)]
    assert len(theirs) >= 2
    assert_vpdq_agrees(hashmatch.vpdq(clips[name]), theirs)


def test_the_references_disagree_on_rotation(clips):
    """vpdq hashes a rotated clip as stored (its frames equal the source's); tmkpy as displayed."""
    source = hashmatch.vpdq(clips["matrix_original"])
    turned = hashmatch.vpdq(clips["matrix_rotate90"])
    assert [f.hex for f in turned] == [f.hex for f in source]
    a, b = hashmatch.tmk(clips["matrix_original"]), hashmatch.tmk(clips["matrix_rotate90"])
    assert a.level1(b) < 0.9


def test_rotated_file_objects_take_the_sequential_pass_to_the_same_hashes(clips):
    path = clips["rotate_tag_90"]
    with open(path, "rb") as f:
        from_file = hashmatch.video_hashes(f, ("vpdq", "tmk_pdqf"))
    assert from_file.tmk == hashmatch.tmk(path)
    assert from_file.vpdq == hashmatch.vpdq(path)


# ----- the checks bite: each handling undone fails its reference comparison -------------------

def test_tmk_without_the_display_matrix_misses_tmkpy(clips, monkeypatch, tmp_path):
    import tmkpy

    monkeypatch.setattr(TMKSignal, "as_displayed", False)
    fv, _ = _tmkpy(clips["rotate_tag_90"], tmp_path)
    level1 = tmkpy.TMKFeatureVectors_computeLevel1Score(fv, as_tmkpy(hashmatch.tmk(clips["rotate_tag_90"])))
    assert level1 < 0.9  # measured -0.28 (level 2: 0.016): the phone video


def test_vpdq_as_displayed_misses_vpdq(clips, monkeypatch):
    monkeypatch.setattr(VPDQSignal, "as_displayed", True)
    turned = hashmatch.vpdq(clips["matrix_rotate90"])
    stored = hashmatch.vpdq(clips["matrix_original"])
    assert all(hashmatch.distance(a.hex, b.hex) > 31 for a, b in zip(turned, stored))


def test_interlaced_frames_are_scaled_as_one_picture(clips, monkeypatch):
    """PyAV's swscale scales a frame flagged interlaced field by field; the references' do not."""
    import av
    from av.video.reformatter import VideoReformatter

    with av.open(str(clips["interlaced"])) as c:
        frame = next(c.decode(video=0))
    assert frame.interlaced_frame
    ours = video_frames.rgb_pixels(VideoReformatter(), frame, as_displayed=False)
    monkeypatch.setattr(video_frames, "progressive", lambda f: f)
    by_field = video_frames.rgb_pixels(VideoReformatter(), frame, as_displayed=False)
    assert np.abs(ours.astype(int) - by_field).max() > 8  # chroma upsampled per field instead


def test_display_matrices():
    assert matrix_transform((0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)) == "rotate270"  # shown turned clockwise
    assert matrix_transform((2 * 65536, 0, 0, 0, 2 * 65536, 0, 0, 0, 1 << 30)) == "original"  # scaled
    assert matrix_transform((46341, 46341, 0, -46341, 46341, 0, 0, 0, 1 << 30)) is None  # 45 degrees
    assert matrix_transform((0,) * 9) is None
    assert len(set(DISPLAY_TRANSFORMS.values())) == 8
