"""The bundled synthetic images are what the seeded generator makes, and are distinct."""

from __future__ import annotations

import importlib.util
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image

import hashmatch
from hashmatch.cli.demo import synthetic_images

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("generate", ROOT / "datasets" / "synthetic" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_committed_images(tmp_path):
    made = _generator().generate(tmp_path)
    committed = sorted((ROOT / "datasets" / "synthetic" / "images").glob("*.png"))
    assert [p.name for p in sorted(made)] == [p.name for p in committed]
    for new, old in zip(sorted(made), committed):
        assert np.array_equal(np.asarray(Image.open(new)), np.asarray(Image.open(old))), new.name


def test_bundled_images_are_installed_and_distinct():
    paths = synthetic_images()
    assert len(paths) >= 40
    hashes = hashmatch.pdq_many(paths)
    assert all(h.quality >= 50 for h in hashes)
    closest = min(hashmatch.distance(a, b) for a, b in combinations(hashes, 2))
    assert closest > 64, closest
