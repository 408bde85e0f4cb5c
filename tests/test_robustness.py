"""The robustness benchmark's quick run: its dataset, transforms, scoring and outputs behave."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_robustness as bench  # noqa: E402
import transforms  # noqa: E402  (on sys.path through bench_robustness)

HASHERS = ("PDQ", "PDQ+dihedral", "PDQ+trim", "imagehash pHash", "imagehash dHash")


# One process (workers=1): the benchmark's fork pool is for its own single-threaded command line;
# forking pytest, which by now holds other tests' threads, can deadlock (it did under ASan).
@pytest.fixture(scope="module")
def images() -> bench.ImageScores:
    return bench.run_images(40, 2000, bench.QUICK_IMAGE_CASES, names=HASHERS, workers=1,
                            log=lambda *_: None)


@pytest.fixture(scope="module")
def videos() -> bench.VideoScores:
    return bench.run_videos(2, bench.QUICK_VIDEO_CASES, workers=1, log=lambda *_: None)


def _recall(scores: bench.ImageScores, hasher: str, case: tuple) -> float:
    return float(scores.recall(hasher, scores.thresholds[hasher][0])[scores.cases.index(case)])


def test_every_transform_makes_a_valid_distinct_copy():
    rng = np.random.default_rng(0)
    original = bench.generate.images(1, start=bench.ORIGINALS_START)[0]
    for name, strength in transforms.cases():
        out = transforms.apply(name, strength, original, rng)
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3, (name, strength)
        assert min(out.shape[:2]) >= 16, (name, strength)
        assert (name == "identity") == (out.shape == original.shape and np.array_equal(out, original)), (name, strength)


def test_all_hashers_present_and_scored(images):
    assert list(images.positives) == list(HASHERS)
    assert images.n_distractors == 2000 and images.n_originals == 40
    for name in HASHERS:
        assert images.positives[name].shape == (len(bench.QUICK_IMAGE_CASES), 40)


def test_identical_copies_always_match(images):
    for name in HASHERS:
        assert _recall(images, name, ("identity", None)) == 1.0, name
        assert images.positives[name][images.cases.index(("identity", None))].max() == 0, name


# Floors and ceilings below are the quick run's measured figures (seeded, so the same on every
# run) with a margin; each can fail if a hash, an option or the scoring regresses.
# Measured: FPR at the default threshold 0 for every PDQ variant and pHash, 1.3e-5 for dHash
# (1 of 80,000 pairs); PDQ's threshold at FPR <= 1e-4 is 95 bits (dihedral 91, trim 95).
def test_false_positive_rates_and_strict_thresholds_at_their_measured_values(images):
    for name in ("PDQ", "PDQ+dihedral", "PDQ+trim", "imagehash pHash"):
        assert images.fpr_at(name, images.thresholds[name][0]) <= 2e-5, name
    assert images.fpr_at("imagehash dHash", 7) <= 5e-5
    # The field's 31 bits sit far below where distractors start to match: options included.
    for name in ("PDQ", "PDQ+dihedral", "PDQ+trim"):
        assert images.thresholds[name][1] >= 80, (name, images.thresholds[name])
    assert 10 <= images.thresholds["imagehash pHash"][1] <= 20


# Measured recall at the default threshold: jpeg 50 1.00 for all; border 10: PDQ 0.00, trim 1.00;
# letterbox 9:16: PDQ 0.07, trim 0.97; flip h: PDQ 0.00, dihedral 0.95.
def test_recall_at_its_measured_floors(images):
    for name in HASHERS:
        assert _recall(images, name, ("jpeg", 50)) >= 0.95, name
    assert _recall(images, "PDQ+trim", ("border", 10)) >= 0.95
    assert _recall(images, "PDQ+trim", ("letterbox", "9:16")) >= 0.9
    assert _recall(images, "PDQ+dihedral", ("flip", "h")) >= 0.9
    for case in [("border", 10), ("letterbox", "9:16"), ("flip", "h")]:
        assert _recall(images, "PDQ", case) <= 0.15, case


# Measured on the 2 quick clips, copies transcoded from the stored file: vPDQ matches 100% of the
# frames of the identity and the CRF-33 re-encode; TMK+PDQF (lower of level 1 and 2) 1.0 and
# 0.9996-0.9998; letterbox 9:16: vPDQ 0%, vPDQ+trim 100%, TMK 0.11-0.26; turned 90 degrees and
# re-encoded: vPDQ and vPDQ+trim 0%, vPDQ+dihedral 100%, TMK -0.62 and 0.03.
def test_videos_at_their_measured_floors(videos):
    identity = videos.cases.index(("identity", None))
    reencode = videos.cases.index(("reencode", 33))
    letterbox = videos.cases.index(("letterbox", "9:16"))
    tmk, vpdq, trim = (videos.similarity[n] for n in ("TMK+PDQF", "vPDQ", "vPDQ+trim"))
    assert (vpdq[identity] == 100).all() and (tmk[identity] >= 0.99999).all()
    assert (vpdq[reencode] >= 90).all() and (tmk[reencode] >= 0.99).all()
    # A second-generation copy is not the stored file: its TMK is not the stored one's.
    assert (tmk[reencode] < 0.99999).all()
    assert (trim[letterbox] >= 90).all() and (vpdq[letterbox] <= 10).all() and (tmk[letterbox] <= 0.5).all()
    for name in bench.VIDEO_HASHERS:
        assert videos.matched[name][identity].all() and videos.matched[name][reencode].all(), name
        assert videos.false_matches[name] == 0, name
    assert videos.matched["vPDQ+trim"][letterbox].all()
    assert not videos.matched["vPDQ"][letterbox].any() and not videos.matched["TMK+PDQF"][letterbox].any()
    turned = videos.cases.index(("rotate90", 90))
    assert (videos.similarity["vPDQ+dihedral"][turned] >= 90).all() and (vpdq[turned] <= 10).all()
    assert videos.matched["vPDQ+dihedral"][turned].all() and not videos.matched["vPDQ"][turned].any()
    assert not videos.matched["TMK+PDQF"][turned].any()


def test_video_copies_are_transcodes_of_the_stored_file(tmp_path):
    source = bench.make_videos.nth_clip(0)
    stored = bench.make_videos.render(source, tmp_path / "stored.mp4")
    played = bench.make_videos.decoded(stored, source.name)
    assert played.frames == source.frames and played.fps == source.fps
    # The decoded frames carry the first encode's loss: they are not the pristine frames.
    assert not np.array_equal(played.frame(5), source.frame(5))
    frames, _ = bench.make_videos.edited_frames(played, bench.transforms.VIDEO_TRANSFORMS["reencode"][33])
    assert np.array_equal(frames[5], played.frame(5))


def test_tables_and_plots(images, videos, tmp_path):
    table = bench.image_table(images)
    assert table.count("\n") == len(images.cases) + 5 and "| letterbox 9:16 |" in table
    assert "| false matches of 8 cross pairs | 0 | 0 | 0 | 0 |" in bench.video_table(videos)
    recall = bench.plot_recall(images, tmp_path / "recall.png", HASHERS)
    roc = bench.plot_roc(images, tmp_path / "roc.png", {"all": ["jpeg", "border", "letterbox", "flip"]})
    for png in (recall, roc):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 200_000
