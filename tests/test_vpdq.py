"""vPDQ: same frames and hashes as the reference `vpdq` package, its formats, its matching."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import hashmatch
from compat import assert_vpdq_agrees
from hashmatch.signals import vpdq as vpdq_frames
from videos import pan, photo, scenes, source_video, write_video


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A few synthetic videos: different photographs, frame rates, sizes and codecs."""
    d = tmp_path_factory.mktemp("vpdq")
    made = {"source": source_video(d / "source.mp4", seconds=8)}
    made["other"] = write_video(d / "other.mp4", scenes(pan(photo("rocket"), 320, 240, 120, 7),
                                                        pan(photo("camera"), 320, 240, 120, 8), frames_each=120), 240, 30)
    made["pal"] = write_video(d / "pal.mkv", pan(photo("coffee"), 352, 288, 150, 4), 150, 25)
    made["mpeg4"] = write_video(d / "mpeg4.avi", pan(photo("chelsea"), 256, 192, 90, 5), 90, 30, codec="mpeg4", crf=None)
    return made


_REFERENCE: dict = {}


def _reference(path: Path, seconds_per_hash: float = 1.0):
    """vpdq's frames of a clip, computed once per (clip, step): the mutation checks reuse them."""
    import vpdq as reference

    key = (str(path), seconds_per_hash)
    if key not in _REFERENCE:
        _REFERENCE[key] = [hashmatch.VPDQFrame(f.frame_number, f.quality, f.hex, f.timestamp)
                           for f in reference.computeHash(str(path), seconds_per_hash=seconds_per_hash)]
    return _REFERENCE[key]


def check_frames_agree(path: Path, seconds_per_hash: float) -> None:
    """hashmatch.vpdq of a clip against vpdq's, frame by frame (compat.assert_vpdq_agrees)."""
    ours = hashmatch.vpdq(path, seconds_per_hash=seconds_per_hash)
    theirs = _reference(path, seconds_per_hash)
    assert len(theirs) >= 3 and sum(f.quality >= 50 for f in theirs) >= 3
    assert_vpdq_agrees(ours, theirs)


CLIPS = ["source", "other", "pal", "mpeg4"]


@pytest.mark.parametrize("name", CLIPS)
@pytest.mark.parametrize("seconds_per_hash", [1.0, 0.5, 0])
def test_frames_agree_with_reference(clips, name, seconds_per_hash):
    check_frames_agree(clips[name], seconds_per_hash)


def _flip_bit(hex_: str, bit: int) -> str:
    return f"{int(hex_, 16) ^ (1 << bit):064x}"


# Corruptions of our output, each of which the frame-by-frame check must catch.
MUTATIONS = {
    "one bit flipped in every hash": lambda fs, rng: [replace(f, hex=_flip_bit(f.hex, int(rng.integers(256))))
                                                      for f in fs],
    "one bit flipped in one hash": lambda fs, rng: [replace(f, hex=_flip_bit(f.hex, 17)) if i == len(fs) // 2 else f
                                                    for i, f in enumerate(fs)],
    "7 bits flipped in every hash, quality 100": lambda fs, rng: [
        replace(f, hex=f"{int(f.hex, 16) ^ sum(1 << int(b) for b in rng.choice(256, 7, replace=False)):064x}",
                   quality=100) for f in fs],
    "hashes shifted by one frame": lambda fs, rng: [replace(f, hex=fs[min(i + 1, len(fs) - 1)].hex, quality=f.quality)
                                                    for i, f in enumerate(fs)],
    "frame numbers shifted by one": lambda fs, rng: [replace(f, frame_number=f.frame_number + 1) for f in fs],
    "timestamps shifted by one frame": lambda fs, rng: [
        replace(f, timestamp=fs[min(i + 1, len(fs) - 1)].timestamp if i + 1 < len(fs) else f.timestamp + 1)
        for i, f in enumerate(fs)],
    "one quality changed": lambda fs, rng: [replace(f, quality=f.quality - 1 if f.quality else 1) if i == 1 else f
                                            for i, f in enumerate(fs)],
    "last frame dropped": lambda fs, rng: fs[:-1],
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@pytest.mark.parametrize("name, seconds_per_hash", [("source", 1.0), ("pal", 0)])
def test_mutated_output_fails_the_reference_check(clips, name, seconds_per_hash, mutation, monkeypatch):
    check_frames_agree(clips[name], seconds_per_hash)  # the unmutated output passes
    real = hashmatch.vpdq
    rng = np.random.default_rng(20)
    monkeypatch.setattr(hashmatch, "vpdq", lambda *a, **kw: MUTATIONS[mutation](real(*a, **kw), rng))
    with pytest.raises(AssertionError):
        check_frames_agree(clips[name], seconds_per_hash)


def test_every_frame_and_sampling_step(clips):
    info = hashmatch.video_info(clips["pal"])
    assert (info.width, info.height, round(info.fps)) == (352, 288, 25)
    every = hashmatch.vpdq(clips["pal"], seconds_per_hash=0)
    assert [f.frame_number for f in every] == list(range(150))
    assert [f.frame_number for f in hashmatch.vpdq(clips["pal"])] == list(range(0, 150, 25))
    assert every[25].timestamp == pytest.approx(1.0, abs=1e-3)


def test_inputs_bytes_and_file(clips):
    data = clips["mpeg4"].read_bytes()
    expected = hashmatch.vpdq(clips["mpeg4"])
    assert hashmatch.vpdq(data) == expected
    assert hashmatch.vpdq(io.BytesIO(data)) == expected
    assert hashmatch.vpdq(str(clips["mpeg4"])) == expected


def test_text_format_round_trip_and_reference_layout(clips):
    frames = hashmatch.vpdq(clips["source"])
    text = vpdq_frames.dumps(frames)
    first = text.splitlines()[0].split(",")
    assert first[0] == "0" and first[1] == str(frames[0].quality) and first[2] == frames[0].hex
    assert first[3] == "0.000"
    again = vpdq_frames.loads(text)
    assert [(f.frame_number, f.quality, f.hex) for f in again] == [(f.frame_number, f.quality, f.hex) for f in frames]
    assert vpdq_frames.dumps(again) == text


def test_signal_string_is_python_threatexchange_compatible(clips):
    from threatexchange.extensions.vpdq.vpdq_util import VpdqCompactFeature, json_to_vpdq, vpdq_to_json

    frames = hashmatch.vpdq(clips["source"])
    ours = vpdq_frames.to_signal(frames)
    theirs = vpdq_to_json([VpdqCompactFeature(f.hex, f.quality, f.timestamp) for f in frames])
    assert ours == theirs
    parsed = json_to_vpdq(ours)
    assert [(p.pdq_hex, p.quality) for p in parsed] == [(f.hex, f.quality) for f in frames]
    back = vpdq_frames.from_signal(theirs)
    assert [(f.hex, f.quality) for f in back] == [(f.hex, f.quality) for f in frames]


def test_matching_agrees_with_python_threatexchange(clips, tmp_path):
    from threatexchange.extensions.vpdq.vpdq_brute_matcher import match_VPDQ_hash_brute
    from threatexchange.extensions.vpdq.vpdq_util import VpdqCompactFeature

    source = hashmatch.vpdq(clips["source"])
    reencoded = hashmatch.vpdq(write_video(tmp_path / "re.mp4", _frames_of(clips["source"]), 240, 30, crf=35))
    other = hashmatch.vpdq(clips["other"])
    compact = lambda fs: [VpdqCompactFeature(f.hex, f.quality, f.timestamp) for f in fs]  # noqa: E731
    for query, compared in [(reencoded, source), (other, source), (source, source)]:
        ours = hashmatch.vpdq_match(query, compared)
        theirs = match_VPDQ_hash_brute(compact(query), compact(compared), 50, 31)
        assert ours.query_match_percent == pytest.approx(theirs.query_match_percent)
        assert ours.compared_match_percent == pytest.approx(theirs.compared_match_percent)
    assert hashmatch.vpdq_match(reencoded, source).is_match()
    assert not hashmatch.vpdq_match(other, source).is_match()
    assert hashmatch.vpdq_match([], source) == hashmatch.VPDQMatch(0.0, 0.0)


def _frames_of(path: Path):
    import av

    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return lambda i: frames[min(i, len(frames) - 1)]


@pytest.mark.parametrize(
    "line, field",
    [("x,100," + "0" * 64 + ",0.000", "frame_number"), ("0,abc," + "0" * 64 + ",0.000", "quality"),
     ("0,100," + "0" * 63 + ",0.000", "hash"), ("0,100," + "g" * 64 + ",0.000", "hash"),
     ("0,101," + "0" * 64 + ",0.000", "quality"), ("0,100," + "0" * 64 + ",nan", "timestamp"),
     ("0,100," + "0" * 64, "frame_number,quality,hex,timestamp")],
)
def test_malformed_vpdq_text_names_line_and_field(line, field):
    good = "0,100," + "f" * 64 + ",0.000"
    with pytest.raises(hashmatch.HashFormatError, match=rf"list.txt:2: .*{field}"):
        vpdq_frames.loads(good + "\n" + line + "\n", source="list.txt")


def test_malformed_signal_strings():
    for text in ["{", "{}", json.dumps([1]), json.dumps(["abc,1"]), json.dumps(["0" * 64 + ",x,0.0"])]:
        with pytest.raises(hashmatch.HashFormatError):
            vpdq_frames.from_signal(text)
