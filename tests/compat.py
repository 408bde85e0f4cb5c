"""Compatibility checks against the reference tools, shared by the tests and their mutation checks.

Each bound is what we measure on the test clips, with a small margin, so that a wrong hash
fails: test_vpdq.py and test_tmk.py run these on our output and again on deliberately
corrupted output (a flipped bit, frames shifted by one, a changed quality, a perturbed TMK
vector), which must fail.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

import hashmatch

# vPDQ, measured on every clip of test_vpdq.py at 1, 0.5 and every frame (PyAV's FFmpeg
# against vpdq's system FFmpeg 5.1): same frames, 0 bits apart, same quality. vpdq keeps
# timestamps as float32 (1/30 s is 0.033333335), so they are compared at float32.
VPDQ_MAX_BITS = 0

# TMK+PDQF against tmkpy on the same clips (tmkpy scales with the ffmpeg binary, we with
# PyAV's FFmpeg, so the 64x64 frames differ by rounding):
# - 1 - score of our hash against tmkpy's, level 1 and level 2: measured <= 1.2e-6.
TMK_SELF_BOUND = 1e-5
# - relative L2 difference of each feature array (pure average, cos, sin): measured <= 1.9e-3.
#   Scores are scale-invariant; this catches a rescaled vector.
TMK_FEATURE_BOUND = 5e-3
# - our scores against tmkpy's on the same vectors (tmkpy's .tmk files read by us): <= 6.1e-7.
TMK_SCORE_BOUND = 2e-6
# - a pair scored on our hashes against the same pair on tmkpy's: <= 1.4e-4 (the vectors'
#   ~1e-3 relative differences move unrelated pairs' scores most).
TMK_PAIR_BOUND = 5e-4


def assert_vpdq_agrees(ours: Sequence[hashmatch.VPDQFrame], theirs: Sequence, max_bits: int = VPDQ_MAX_BITS) -> None:
    """Frame by frame: same frame numbers and timestamps, equal quality, hashes within max_bits."""
    assert [f.frame_number for f in ours] == [f.frame_number for f in theirs], "frame numbers differ"
    for a, b in zip(ours, theirs):
        where = f"frame {a.frame_number}"
        assert np.float32(a.timestamp) == np.float32(b.timestamp), f"{where}: timestamp {a.timestamp} != {b.timestamp}"
        assert a.quality == b.quality, f"{where}: quality {a.quality} != {b.quality}"
        bits = hashmatch.distance(a.hex, b.hex)
        assert bits <= max_bits, f"{where}: {bits} bits from the reference (bound {max_bits})"


def as_tmkpy(t: hashmatch.TMK):
    """Our TMK as a tmkpy feature-vector object, for tmkpy's own scoring."""
    import tmkpy

    return tmkpy.createTMKFeatureVectors(t.frames_per_second, t.frame_count, t.periods.tolist(),
                                         t.coefficients.tolist(), t.pure_average.tolist(),
                                         t.cos_features.tolist(), t.sin_features.tolist())


def assert_tmk_agrees(ours: hashmatch.TMK, fv, theirs: hashmatch.TMK) -> None:
    """Our TMK of a clip against tmkpy's (fv, and the same read from its .tmk file as `theirs`)."""
    import tmkpy

    assert ours.frame_count == fv.getFrameFeatureCount(), "frame count"
    assert ours.frames_per_second == fv.getFramesPerSecond(), "frames per second"
    assert np.array_equal(ours.periods, fv.getPeriods()), "periods"
    assert np.array_equal(ours.coefficients, np.float32(fv.getFourierCoefficients())), "coefficients"
    ref = as_tmkpy(ours)
    level1 = tmkpy.TMKFeatureVectors_computeLevel1Score(fv, ref)
    level2 = tmkpy.TMKFeatureVectors_computeLevel2Score(fv, ref)
    assert 1 - level1 <= TMK_SELF_BOUND, f"level 1 {level1}"
    assert 1 - level2 <= TMK_SELF_BOUND, f"level 2 {level2}"
    for name in ("pure_average", "cos_features", "sin_features"):
        a, b = getattr(ours, name).astype(np.float64), getattr(theirs, name).astype(np.float64)
        rel = np.linalg.norm(a - b) / np.linalg.norm(b)
        assert rel <= TMK_FEATURE_BOUND, f"{name}: relative difference {rel:.2g}"


def assert_tmk_scores_agree(a: hashmatch.TMK, b: hashmatch.TMK, fv_a, fv_b, bound: float) -> None:
    """Our level-1 and level-2 scores of (a, b) within bound of tmkpy's scores of (fv_a, fv_b)."""
    import tmkpy

    ref1 = tmkpy.TMKFeatureVectors_computeLevel1Score(fv_a, fv_b)
    ref2 = tmkpy.TMKFeatureVectors_computeLevel2Score(fv_a, fv_b)
    assert abs(a.level1(b) - ref1) <= bound, f"level 1 {a.level1(b)} vs tmkpy {ref1}"
    assert abs(a.level2(b) - ref2) <= bound, f"level 2 {a.level2(b)} vs tmkpy {ref2}"
