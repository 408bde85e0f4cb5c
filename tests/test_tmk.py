"""TMK+PDQF: same hashes and scores as the reference (tmkpy), its .tmk files, robustness, one-pass hashing."""

from __future__ import annotations

import hashlib
import io
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hashmatch
from compat import TMK_PAIR_BOUND, TMK_SCORE_BOUND, TMK_SELF_BOUND, assert_tmk_agrees, assert_tmk_scores_agree
from hashmatch.signals.tmk import TMK_LEVEL1_THRESHOLD, TMK_LEVEL2_THRESHOLD, poullot_coefficients
from hashmatch.signals.tmk_sampler import SlotClock
from videos import pan, photo, scenes, source_video, write_video

FPS = 30


def _decoded(path: Path):
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _letterbox(img: np.ndarray) -> np.ndarray:
    """Black bars above and below the intact picture, 15% of the new height in all.

    TMK+PDQF has no border removal: with bars of 25% the reference itself scores about
    0.79 / 0.71 (level 1 / 2), and a picture squeezed to 3/4 height about 0.71 / 0.62.
    """
    bar = int(img.shape[0] * 0.15 / 2) // 2 * 2
    return np.pad(img, ((bar, bar), (0, 0), (0, 0)))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A 6 s source clip, edited copies of it, and two unrelated clips (other photographs)."""
    d = tmp_path_factory.mktemp("tmk")
    made = {"source": source_video(d / "source.mp4", seconds=6)}
    frames = _decoded(made["source"])
    n = len(frames)
    at = lambda i: frames[min(i, n - 1)]  # noqa: E731
    made["crf35"] = write_video(d / "crf35.mp4", at, n, FPS, crf=35)
    made["resized"] = write_video(d / "resized.mp4", lambda i: np.asarray(Image.fromarray(at(i)).resize((480, 360))),
                                  n, FPS)
    made["trimmed"] = write_video(d / "trimmed.mp4", lambda i: at(i + FPS), n - FPS, FPS)
    made["letterboxed"] = write_video(d / "letterboxed.mp4", lambda i: _letterbox(at(i)), n, FPS)
    made["other"] = write_video(d / "other.mp4", scenes(pan(photo("rocket"), 320, 240, 90, 7),
                                                        pan(photo("camera"), 320, 240, 90, 8), frames_each=90), 180, FPS)
    made["pal"] = write_video(d / "pal.mkv", pan(photo("coffee"), 352, 288, 100, 4), 100, 25)
    return made


@pytest.fixture(scope="module")
def reference(clips, tmp_path_factory):
    """tmkpy's hash of each clip (it runs the system ffmpeg), and its .tmk file."""
    import tmkpy

    d = tmp_path_factory.mktemp("tmk_ref")
    out = {}
    for name, path in clips.items():
        fv = tmkpy.hashVideo(str(path), "ffmpeg")
        fv.writeToOutputFile(str(d / f"{name}.tmk"), "test")
        out[name] = (fv, d / f"{name}.tmk")
    return out


@pytest.fixture(scope="module")
def ours(clips):
    return {name: hashmatch.tmk(path) for name, path in clips.items()}


def check_against_tmkpy(name: str, ours: hashmatch.TMK, reference: dict, tmp_path: Path) -> None:
    """Our TMK of a clip against tmkpy's: shape, frame count, scores and features (compat.py bounds)."""
    import tmkpy

    fv, ref_file = reference[name]
    assert_tmk_agrees(ours, fv, hashmatch.TMK.read(ref_file))
    path = tmp_path / f"{name}.tmk"
    ours.write(path)
    (level2,) = tmkpy.query(fv, [str(path)])  # tmkpy parses our file itself
    assert 1 - level2 <= TMK_SELF_BOUND


@pytest.mark.parametrize("name", ["source", "other", "pal", "letterboxed", "crf35", "resized", "trimmed"])
def test_tmkpy_reads_ours_and_scores_it_against_its_own(name, ours, reference, tmp_path):
    check_against_tmkpy(name, ours[name], reference, tmp_path)


PAIRS = [("source", "crf35"), ("source", "trimmed"), ("source", "other"), ("other", "pal"), ("resized", "crf35"),
         ("source", "letterboxed"), ("pal", "trimmed")]


def test_we_read_tmkpy_files_and_scores_agree(reference):
    theirs = {name: hashmatch.TMK.read(path) for name, (_, path) in reference.items()}
    for name, (fv, path) in reference.items():
        assert theirs[name].to_bytes() == path.read_bytes()
        assert theirs[name].frame_count == fv.getFrameFeatureCount()
    for a, b in PAIRS:  # the same vectors: only the scoring code differs
        assert_tmk_scores_agree(theirs[a], theirs[b], reference[a][0], reference[b][0], TMK_SCORE_BOUND)


def test_our_pair_scores_agree_with_tmkpys(ours, reference):
    for a, b in PAIRS:  # each side hashed by its own tool
        assert_tmk_scores_agree(ours[a], ours[b], reference[a][0], reference[b][0], TMK_PAIR_BOUND)


def _perturbed(t: hashmatch.TMK, field: str, scale: float, seed: int = 0) -> hashmatch.TMK:
    """t with Gaussian noise of `scale` times the array's RMS added to one feature array."""
    arrays = {"pure_average": t.pure_average, "cos_features": t.cos_features, "sin_features": t.sin_features}
    a = arrays[field].astype(np.float64)
    rms = np.sqrt(np.mean(a ** 2))
    arrays[field] = (a + np.random.default_rng(seed).normal(0, scale * rms, a.shape)).astype(np.float32)
    return hashmatch.TMK(t.algorithm, t.frames_per_second, t.frame_count, t.periods, t.coefficients, **arrays)


def _scaled(t: hashmatch.TMK, field: str, factor: float) -> hashmatch.TMK:
    arrays = {"pure_average": t.pure_average, "cos_features": t.cos_features, "sin_features": t.sin_features}
    arrays[field] = (arrays[field] * np.float32(factor)).astype(np.float32)
    return hashmatch.TMK(t.algorithm, t.frames_per_second, t.frame_count, t.periods, t.coefficients, **arrays)


# Corruptions of our TMK, each of which the check against tmkpy must catch.
TMK_MUTATIONS = {
    "pure average perturbed 1%": lambda t: _perturbed(t, "pure_average", 0.01),
    "cos features perturbed 1%": lambda t: _perturbed(t, "cos_features", 0.01),
    "sin features perturbed 1%": lambda t: _perturbed(t, "sin_features", 0.01),
    "cos features scaled 1%": lambda t: _scaled(t, "cos_features", 1.01),
    "frame count + 1": lambda t: hashmatch.TMK(t.algorithm, t.frames_per_second, t.frame_count + 1, t.periods,
                                               t.coefficients, t.pure_average, t.cos_features, t.sin_features),
}


@pytest.mark.parametrize("mutation", sorted(TMK_MUTATIONS))
def test_mutated_tmk_fails_the_reference_check(mutation, ours, reference, tmp_path):
    check_against_tmkpy("source", ours["source"], reference, tmp_path)  # the unmutated hash passes
    with pytest.raises(AssertionError):
        check_against_tmkpy("source", TMK_MUTATIONS[mutation](ours["source"]), reference, tmp_path)


def test_mutated_tmk_fails_the_pair_score_check(ours, reference):
    bad = _perturbed(ours["trimmed"], "pure_average", 0.05)
    with pytest.raises(AssertionError):
        assert_tmk_scores_agree(ours["source"], bad, reference["source"][0], reference["trimmed"][0], TMK_PAIR_BOUND)


def test_write_read_round_trip(ours, tmp_path):
    t = ours["source"]
    t.write(tmp_path / "a.tmk")
    again = hashmatch.TMK.read(tmp_path / "a.tmk")
    assert again == t and again.to_bytes() == t.to_bytes()
    buf = io.BytesIO()
    t.write(buf)
    assert hashmatch.TMK.read(io.BytesIO(buf.getvalue())) == t
    assert hashmatch.TMK.from_bytes(t.to_bytes()).level2(t) == pytest.approx(1.0, abs=1e-5)
    assert t.cos_features.dtype == np.float32 and t.cos_features.shape == (4, 32, 256)


@pytest.mark.parametrize("variant", ["crf35", "resized", "trimmed", "letterboxed"])
def test_edited_copies_match_their_source(ours, variant):
    src, copy = ours["source"], ours[variant]
    assert src.level1(copy) >= TMK_LEVEL1_THRESHOLD and src.level2(copy) >= TMK_LEVEL2_THRESHOLD
    assert src.is_match(copy) and copy.is_match(src)


@pytest.mark.parametrize("a, b", [("source", "other"), ("source", "pal"), ("other", "pal")])
def test_unrelated_videos_do_not_match(ours, a, b):
    assert not ours[a].is_match(ours[b])
    assert min(ours[a].level1(ours[b]), ours[a].level2(ours[b])) < 0.7


def test_incompatible_tmks_are_refused(ours):
    t = ours["source"]
    other = hashmatch.TMK(t.algorithm, t.frames_per_second, t.frame_count, np.array([2731, 4391], np.int32),
                          t.coefficients, t.pure_average, t.cos_features[:2], t.sin_features[:2])
    with pytest.raises(hashmatch.InvalidInputError, match="periods"):
        t.level2(other)
    with pytest.raises(hashmatch.InvalidInputError):
        t.level1("not a tmk")
    with pytest.raises(hashmatch.InvalidInputError, match="cos_features"):
        hashmatch.TMK(t.algorithm, 15, 1, t.periods, t.coefficients, t.pure_average, t.cos_features[:, :3], t.sin_features)


def test_kernel_coefficients_are_the_references():
    import tmkpy

    assert np.array_equal(poullot_coefficients(), np.float32(tmkpy.TMKFeatureVectors_makePoullotFourierCoefficients()))


def _gray_ramp(path: Path, rate, frames: int) -> Path:
    """Frame i is flat gray 10 + 3i: which frame fills a slot can be read back from its level."""
    return write_video(path, lambda i: np.full((64, 64, 3), 10 + 3 * i, np.uint8), frames, rate,
                       crf=0, pix_fmt="yuv444p")


@pytest.mark.parametrize("rate", [10, 24, 25, 30, 60])
def test_slots_get_the_frames_the_reference_ffmpeg_command_gives_them(rate, tmp_path):
    import av

    path = _gray_ramp(tmp_path / f"ramp{rate}.mp4", rate, 80)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-s", "64:64", "-an", "-f", "rawvideo",
                          "-c:v", "rawvideo", "-pix_fmt", "rgb24", "-r", "15", "pipe:1"],
                         capture_output=True, check=True).stdout
    clock, ours, previous, levels = SlotClock(15, rate), [], None, []
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            levels.append(frame.to_ndarray(format="rgb24").mean())
            before, count = clock.push(frame.pts * frame.time_base, frame.duration * frame.time_base)
            if previous is None:
                before, count = 0, before + count
            ours += [previous] * before + [i] * count
            previous = i
    slots = np.frombuffer(raw, np.uint8).reshape(-1, 64 * 64 * 3).mean(axis=1)
    reference = [int(np.abs(np.array(levels) - x).argmin()) for x in slots]
    assert ours == reference
    assert len(set(ours)) < 80 if rate > 15 else len(ours) > 80  # drops when faster, duplicates when slower


def test_video_hashes_is_one_pass_of_the_separate_functions(clips):
    path = clips["pal"]
    everything = hashmatch.video_hashes(path)
    assert everything.vpdq == hashmatch.vpdq(path)
    assert everything.tmk == hashmatch.tmk(path)
    data = path.read_bytes()
    assert everything.md5 == hashlib.md5(data).hexdigest()
    assert everything.sha256 == hashlib.sha256(data).hexdigest()
    assert everything["tmk_pdqf"] is everything.tmk and everything["video_md5"] == everything.md5
    assert set(everything.as_dict()) == {"vpdq", "tmk_pdqf", "video_md5", "video_sha256"}
    assert (everything.info.width, everything.info.height) == (352, 288)
    from_stream = hashmatch.video_hashes(io.BytesIO(data))
    assert from_stream.tmk == everything.tmk and from_stream.sha256 == everything.sha256
    assert hashmatch.video_hashes(data, ["vpdq"], seconds_per_hash=0.5).vpdq == hashmatch.vpdq(path, seconds_per_hash=0.5)


def test_video_hashes_computes_only_what_is_asked(clips):
    only = hashmatch.video_hashes(clips["pal"], ("video_md5",))
    assert only.vpdq is None and only.tmk is None and only.sha256 is None and len(only.md5) == 32
    with pytest.raises(KeyError, match="tmk_pdqf"):
        only["tmk_pdqf"]
    with pytest.raises(hashmatch.InvalidInputError, match="unknown"):
        hashmatch.video_hashes(clips["pal"], ("vpdq", "md6"))
    with pytest.raises(hashmatch.InvalidInputError):
        hashmatch.video_hashes(clips["pal"], ())


# ---- bad input -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def good_tmk(ours):
    return ours["pal"].to_bytes()


def _with_header(data: bytes, **fields) -> bytes:
    names = ["fps", "periods", "coefficients", "dimension", "frames"]
    values = dict(zip(names, struct.unpack_from("<5i", data, 12)))
    values.update(fields)
    return data[:12] + struct.pack("<5i", *[values[n] for n in names]) + data[32:]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: b"", "shorter than"),
    (lambda d: d[:20], "shorter than"),
    (lambda d: b"TMK2" + d[4:], "magic"),
    (lambda d: d[:4] + b"FEAT" + d[8:], "magic"),
    (lambda d: d[:8] + b"ABCD" + d[12:], "algorithm"),
    (lambda d: d[:-4], "truncated"),
    (lambda d: d[:1000], "truncated"),
    (lambda d: d + b"\0\0\0\0", "trailing"),
    (lambda d: _with_header(d, periods=0), "periods"),
    (lambda d: _with_header(d, coefficients=1 << 30), "Fourier coefficients"),
    (lambda d: _with_header(d, dimension=-1), "dimension"),
    (lambda d: _with_header(d, fps=0), "frames per second"),
    (lambda d: _with_header(d, frames=-5), "frame count"),
    (lambda d: _with_header(d, periods=3), "trailing"),
    (lambda d: _with_header(d, periods=5), "truncated"),
    (lambda d: d[:32] + struct.pack("<i", -7) + d[36:], "periods must be positive"),
    (lambda d: d[:-4] + struct.pack("<f", float("nan")), "finite"),
])
def test_malformed_tmk_bytes(good_tmk, mutate, message, tmp_path):
    bad = mutate(good_tmk)
    with pytest.raises(hashmatch.HashFormatError, match=message):
        hashmatch.TMK.from_bytes(bad)
    (tmp_path / "bad.tmk").write_bytes(bad)
    with pytest.raises(hashmatch.HashFormatError, match="bad.tmk"):
        hashmatch.TMK.read(tmp_path / "bad.tmk")


def test_bad_videos_raise_decode_errors(clips, tmp_path):
    import av

    from test_video_errors import _audio_packets

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clips["source"].read_bytes()[:4000])  # the index (moov) is at the end: nothing to play
    empty = tmp_path / "empty.mkv"
    with av.open(str(empty), "w") as out:
        v = out.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        _audio_packets(out, out.add_stream("mp2", rate=44100))
    audio = tmp_path / "audio.mka"
    with av.open(str(audio), "w") as out:
        _audio_packets(out, out.add_stream("mp2", rate=44100))
    for path, message in [(junk, "junk.mp4"), (cut, "cut.mp4"), (empty, "no frames"), (audio, "no video stream")]:
        with pytest.raises(hashmatch.DecodeError, match=message):
            hashmatch.tmk(path)
        with pytest.raises(hashmatch.DecodeError, match=message):
            hashmatch.video_hashes(path)
    with pytest.raises(hashmatch.MediaNotFoundError):
        hashmatch.video_hashes(tmp_path / "missing.mp4")
    with pytest.raises(hashmatch.ResourceLimitError, match="max_frames"):
        hashmatch.tmk(clips["pal"], max_frames=10)
