"""Every per-ISA clone the build contains runs here, bit-identical to the reference and to each other.

The core compiles its hot kernels once per instruction-set level (cpp/cpu.hpp) and the public
API runs the best one the CPU has, so without these tests the lower clones (the baseline PDQ
blur, the scalar-popcount scans) would never execute on a CPU with AVX2 or AVX-512, yet a wheel
runs them on CPUs without. A clone this CPU cannot run is reported as not run (and must then
fall back); the terminal summary lists which ones ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from hashmatch import _core
from oracle import as_rgb, reference_dihedral, reference_pdq
from test_index import brute_distances, brute_range, clustered_codes, queries_near, random_codes
from test_pdq_reference import _cases

LEVELS = ("default", "popcnt", "avx2", "avx512")
CLONES = _core.cpu_clones()
PDQ_CLONES = CLONES["pdq_blur"]
HAMMING_CLONES = [("hamming_scan", c) for c in CLONES["hamming_scan"]] + \
                 [("hamming_verify", c) for c in CLONES["hamming_verify"]]


def _runs_here(kernel: str, clone: str, report: dict) -> bool:
    """Whether this CPU runs the clone; if not, that a request for it falls back to a lower one."""
    if _core.cpu_supports(clone):
        assert _core.cpu_clone(kernel, clone) == clone, (kernel, clone)
        report.setdefault(kernel, {})[clone] = "ran"
        return True
    fallback = _core.cpu_clone(kernel, clone)
    assert LEVELS.index(fallback) < LEVELS.index(clone) and _core.cpu_supports(fallback)
    report.setdefault(kernel, {})[clone] = f"CPU lacks {clone}"
    return False


def test_build_contains_the_expected_clones():
    # x86-64 GCC builds (the wheels) carry every clone; other builds have the default only.
    import platform

    for kernel, clones in CLONES.items():
        assert clones[0] == "default" and clones == sorted(clones, key=LEVELS.index), kernel
    if platform.machine() in ("x86_64", "AMD64"):
        assert CLONES == {"pdq_blur": ["default", "avx2"], "hamming_scan": ["default", "popcnt", "avx512"],
                          "hamming_verify": ["default", "popcnt"]}
    assert _core.cpu_supports("default")


def test_dispatch_picks_the_best_clone_this_cpu_runs():
    cap = _core.CPU_DISPATCH
    for kernel, clones in CLONES.items():
        runnable = [c for c in clones if _core.cpu_supports(c) and LEVELS.index(c) <= LEVELS.index(cap)]
        assert _core.cpu_clone(kernel) == runnable[-1], kernel
    with pytest.raises(ValueError, match="isa must be"):
        _core.pdq_hash(np.zeros((8, 8), np.uint8), "sse9")


# ---- PDQ --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pdq_cases(photos):
    """Every PDQ reference case with the reference's hex and quality, computed once."""
    return [(name, img, reference_pdq(as_rgb(img))) for name, img in _cases(photos)]


@pytest.fixture(scope="module")
def luma_inputs(photos):
    rng = np.random.default_rng(7)
    rgb = [img if img.ndim == 3 else np.stack([img] * 3, -1) for img in photos.values()]
    rgb += [rng.integers(0, 256, (int(rng.integers(5, 900)), int(rng.integers(5, 900)), 3), dtype=np.uint8)
            for _ in range(6)]
    rgb += [np.full((100, 100, 3), v, np.uint8) for v in (0, 128, 255)]
    return [(img, (img[:, :, 0] * 0.299 + img[:, :, 1] * 0.587 + img[:, :, 2] * 0.114).astype(np.float32))
            for img in rgb]


@pytest.mark.parametrize("clone", PDQ_CLONES)
def test_pdq_clone_identical_to_reference(clone, pdq_cases, clone_report):
    if not _runs_here("pdq_blur", clone, clone_report):
        return
    wrong = []
    for name, img, (ref_hex, ref_quality) in pdq_cases:
        bits, quality = _core.pdq_hash(img, clone)
        if (bits.hex(), quality) != (ref_hex, ref_quality):
            wrong.append(name)
    assert not wrong, f"{clone}: {len(wrong)} of {len(pdq_cases)} differ from pdqhash, first {wrong[:3]}"


@pytest.mark.parametrize("clone", PDQ_CLONES)
def test_pdq_clone_dihedral_identical_to_reference(clone, pdq_cases, clone_report):
    if not _runs_here("pdq_blur", clone, clone_report):
        return
    for name, img, _ in pdq_cases[::5]:
        hashes, quality = _core.pdq_hash_dihedral(img, clone)
        assert ([h.hex() for h in hashes], quality) == reference_dihedral(as_rgb(img)), (clone, name)


@pytest.mark.parametrize("clone", PDQ_CLONES)
def test_pdq_clone_float_features_identical_to_reference(clone, luma_inputs, clone_report):
    import pdqhash

    if not _runs_here("pdq_blur", clone, clone_report):
        return
    for img, luma in luma_inputs:
        ours, quality = _core.pdq_features(luma, clone)
        ref, ref_quality = pdqhash.compute_float(img)
        np.testing.assert_array_equal(ours, np.asarray(ref, np.float32)[::-1])
        assert quality == ref_quality


def test_pdq_clones_identical_to_each_other(pdq_cases, luma_inputs):
    runnable = [c for c in PDQ_CLONES if _core.cpu_supports(c)]
    assert len(runnable) == len(PDQ_CLONES) or not _core.cpu_supports("avx2")
    for name, img, _ in pdq_cases[::2]:
        outs = {c: _core.pdq_hash(img, c) for c in runnable}
        assert len(set(outs.values())) == 1, (name, outs)
    for _, luma in luma_inputs:
        floats = {c: _core.pdq_features(luma, c)[0].tobytes() for c in runnable}
        assert len(set(floats.values())) == 1


# ---- Hamming ----------------------------------------------------------------------------------

class _Index:
    """The core index with one clone cap, in the Python wrapper's call shape (for the brute-force checks)."""

    def __init__(self, kernel: str, clone: str):
        mih = kernel == "hamming_verify"  # verification only runs when the tables are probed
        self.core = _core.HammingIndex(0 if mih else 10 ** 9, 64, force_mih=mih, isa=clone)
        assert self.core.has_tables is False

    def add(self, codes, ids):
        self.core.add(codes, ids)

    def range_search(self, queries, radius):
        return self.core.range_search(queries, radius, 1)


RADII = [0, 1, 8, 16, 30, 31, 32, 33, 40, 64, 128, 256]


@pytest.fixture(scope="module")
def hamming_data():
    random = random_codes(3000, seed=21)
    clustered, centres = clustered_codes(60, 25, seed=22)
    codes = np.concatenate([random, clustered])
    ids = np.random.default_rng(23).permutation(len(codes)).astype(np.int64) * 3 - 500
    queries = np.concatenate([centres[:10], queries_near(codes, 20, seed=24)])
    return codes, ids, queries, brute_distances(queries, codes)


@pytest.mark.parametrize("kernel, clone", HAMMING_CLONES, ids=[f"{k}-{c}" for k, c in HAMMING_CLONES])
def test_hamming_clone_exact(kernel, clone, hamming_data, clone_report):
    if not _runs_here(kernel, clone, clone_report):
        return
    codes, ids, queries, dist = hamming_data
    index = _Index(kernel, clone)
    index.add(codes, ids)
    assert index.core.has_tables == (kernel == "hamming_verify")
    if kernel == "hamming_verify":  # the verification kernel runs at these radii
        assert all(index.core.probes_at(r) for r in RADII[:10])
    for radius in RADII:
        lims, d, i = index.range_search(queries, radius)
        exp_lims, exp_d, exp_i = brute_range(dist, ids, radius)
        assert (lims.tolist(), d.tolist(), i.tolist()) == (exp_lims, exp_d, exp_i), (kernel, clone, radius)
    d, i = index.core.knn(queries, 7, 1)
    for q, row in enumerate(dist):
        order = np.lexsort((ids, row))[:7]
        assert d[q].tolist() == row[order].tolist() and i[q].tolist() == ids[order].tolist(), (clone, q)


def test_hamming_clones_identical_to_each_other(hamming_data):
    codes, ids, queries, _ = hamming_data
    for kernel in ("hamming_scan", "hamming_verify"):
        outs = {}
        for clone in CLONES[kernel]:
            if not _core.cpu_supports(clone):
                continue
            index = _Index(kernel, clone)
            index.add(codes, ids)
            outs[clone] = [a.tobytes() for r in (31, 32, 64) for a in index.range_search(queries, r)]
        assert len(outs) >= 1 and all(v == next(iter(outs.values())) for v in outs.values()), kernel


# ---- $HASHMATCH_CPU ---------------------------------------------------------------------------

_CHILD = r"""
import json, sys
import numpy as np
import hashmatch
from hashmatch import _core
rng = np.random.default_rng(5)
imgs = [rng.integers(0, 256, (300, 200, 3), dtype=np.uint8), np.cumsum(rng.integers(0, 9, (257, 129)), 0).astype(np.uint8)]
codes = rng.integers(0, 256, (500, 32), dtype=np.uint8)
index = hashmatch.HammingIndex(mih_min_rows=10 ** 9)
index.add(codes, np.arange(500))
lims, d, i = index.range_search(codes[:5], 120)
print(json.dumps({"dispatch": _core.CPU_DISPATCH, "clones": {k: _core.cpu_clone(k) for k in _core.cpu_clones()},
                  "pdq": [hashmatch.pdq(im).hex for im in imgs], "many": [h.hex for h in hashmatch.pdq_many(imgs)],
                  "range": [lims.tolist(), d.tolist(), i.tolist()]}))
"""


def _child(level: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HASHMATCH_CPU=level)
    return subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("level", LEVELS)
def test_hashmatch_cpu_environment_caps_every_public_call(level, clone_report):
    run = _child(level)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["dispatch"] == level
    assert got["clones"] == {k: _core.cpu_clone(k, level) for k in CLONES}
    rng = np.random.default_rng(5)
    imgs = [rng.integers(0, 256, (300, 200, 3), dtype=np.uint8),
            np.cumsum(rng.integers(0, 9, (257, 129)), 0).astype(np.uint8)]
    expected = [reference_pdq(as_rgb(im))[0] for im in imgs]
    assert got["pdq"] == expected and got["many"] == expected
    codes = rng.integers(0, 256, (500, 32), dtype=np.uint8)
    exp = brute_range(brute_distances(codes[:5], codes), np.arange(500), 120)
    assert got["range"] == [list(x) for x in exp]


def test_invalid_hashmatch_cpu_fails_the_import():
    run = _child("sse9")
    assert run.returncode != 0 and "HASHMATCH_CPU must be default, popcnt, avx2 or avx512" in run.stderr
