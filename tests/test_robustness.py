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


def test_false_positive_rate_at_default_threshold_is_low(images):
    for name in HASHERS:
        assert images.fpr_at(name, images.thresholds[name][0]) < 1e-3, name
        default, strict = images.thresholds[name]
        assert images.fpr_at(name, strict) <= bench.TARGET_FPR, name
        assert np.all(np.diff(images.fpr[name]) >= 0) and images.fpr[name][-1] == 1.0, name


def test_trimming_recovers_borders_and_dihedral_recovers_flips(images):
    for case in [("border", 10), ("letterbox", "9:16")]:
        assert _recall(images, "PDQ+trim", case) >= 0.85, case
        assert _recall(images, "PDQ", case) <= 0.3, case
    assert _recall(images, "PDQ+dihedral", ("flip", "h")) >= 0.9
    assert _recall(images, "PDQ", ("flip", "h")) <= 0.1
    # Options only add query hashes: they never lose a match plain PDQ makes.
    for option in ("PDQ+dihedral", "PDQ+trim"):
        assert np.all(images.positives[option] <= images.positives["PDQ"]), option


def test_videos_identity_matches_and_trim_rescues_letterbox(videos):
    identity = videos.cases.index(("identity", None))
    letterbox = videos.cases.index(("letterbox", "9:16"))
    for name in bench.VIDEO_HASHERS:
        assert videos.matched[name][identity].all(), name
        assert videos.false_matches[name] == 0, name
    assert videos.matched["vPDQ+trim"][letterbox].all()
    assert not videos.matched["vPDQ"][letterbox].any()


def test_tables_and_plots(images, videos, tmp_path):
    table = bench.image_table(images)
    assert table.count("\n") == len(images.cases) + 5 and "| letterbox 9:16 |" in table
    assert "| false matches of 6 cross pairs | 0 | 0 | 0 |" in bench.video_table(videos)
    recall = bench.plot_recall(images, tmp_path / "recall.png", HASHERS)
    roc = bench.plot_roc(images, tmp_path / "roc.png", {"all": ["jpeg", "border", "letterbox", "flip"]})
    for png in (recall, roc):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 200_000
