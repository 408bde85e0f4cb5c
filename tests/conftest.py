"""Shared fixtures: real photographs that ship with scikit-image."""

from __future__ import annotations

import numpy as np
import pytest


def _photos() -> dict:
    from skimage import data

    names = ["astronaut", "coffee", "chelsea", "rocket", "camera", "moon", "coins", "page", "text",
             "immunohistochemistry", "hubble_deep_field", "retina", "cat", "grass", "gravel", "brick"]
    photos = {}
    for name in names:
        loader = getattr(data, name, None)
        if loader is None:
            continue
        try:
            img = loader()
        except Exception:  # a loader that would need a download is not a test input
            continue
        if img.dtype == np.uint8 and img.ndim in (2, 3):
            photos[name] = img if img.ndim == 2 else img[:, :, :3]
    return photos


@pytest.fixture(scope="session")
def photos() -> dict:
    """scikit-image's bundled photographs as uint8 arrays (gray or RGB), by name."""
    found = _photos()
    assert len(found) >= 8, f"expected scikit-image photographs, found {sorted(found)}"
    return found
