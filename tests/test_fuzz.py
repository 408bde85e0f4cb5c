"""The fuzz targets, briefly: the saved corpus of past findings, then seeded mutations of each.

The long campaigns run with ``python tests/fuzz/run.py TARGET --seconds 600`` (atheris);
here every target runs a fixed number of deterministic mutations, so a regression in any
parser or native entry point fails the suite with the input that broke it.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from tests.fuzz.mutate import mutate
from tests.fuzz.run import corpus_dir, saved_inputs
from tests.fuzz.targets import SEEDS, TARGETS, run_one

# Mutations per target: a few seconds each; the slow targets (Pillow decodes, 200x200 hashes,
# video decodes) get fewer.
_RUNS = {"image_pdq": 12000, "image_media": 3000, "core_pdq": 6000, "index_file": 12000, "video": 400}
_DEFAULT_RUNS = 30000

# Pillow warns about the malformed metadata and large sizes the mutations make, numpy about
# overflowing values: expected on hostile input; the contract is about errors.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning", "ignore::RuntimeWarning")


def _replay(target: str, inputs) -> None:
    for i, data in enumerate(inputs):
        try:
            run_one(target, data)
        except BaseException as e:
            raise AssertionError(f"{target} input #{i} ({data[:120]!r}...) raised {type(e).__name__}: {e}") from e


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_saved_corpus(target):
    """Every input that once crashed a target or raised the wrong error now obeys the contract."""
    _replay(target, SEEDS[target]() + saved_inputs(target))


def test_every_finding_is_kept():
    """The corpus folders belong to known targets, and past findings exist (they are regression tests)."""
    folders = os.listdir(os.path.dirname(corpus_dir("x")))
    assert set(folders) <= set(TARGETS), folders
    assert sum(len(saved_inputs(t)) for t in TARGETS) >= 5


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_mutations(target):
    """Seeded random mutations of the seeds and corpus: success or a hashmatch error, nothing else."""
    rng = random.Random(f"hashmatch-{target}")
    corpus = SEEDS[target]() + saved_inputs(target)
    _replay(target, (mutate(rng.choice(corpus), rng, corpus) for _ in range(_RUNS.get(target, _DEFAULT_RUNS))))


def test_runner_with_atheris():
    """The campaign runner itself works: atheris drives a target for a fixed number of runs."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, os.path.join(root, "tests", "fuzz", "run.py"), "pdq_hex", "--runs", "3000"],
                         capture_output=True, text=True, timeout=300, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Done 3000 runs" in out.stderr
