"""Shared fixtures: real photographs that ship with scikit-image."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

# PostgreSQL databases keep their saved index in a per-machine cache: the tests' goes in a temporary one.
os.environ.setdefault("HASHMATCH_INDEX_DIR", tempfile.mkdtemp(prefix="hashmatch-index-"))


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


# ---- CPU clones ---------------------------------------------------------------------------
# test_cpu_clones.py records, per kernel, which per-ISA clones it ran and which this CPU could
# not run; the terminal summary prints it, so a CI log says which code paths were tested.
CLONES_RUN: dict = {}


@pytest.fixture(scope="session")
def clone_report() -> dict:
    """{kernel: {clone: "ran" or why not}}, filled by the clone tests, printed at the end."""
    return CLONES_RUN


def pytest_terminal_summary(terminalreporter) -> None:
    """Print which dispatch clones the suite ran (and any this CPU could not run)."""
    if not CLONES_RUN:
        return
    from hashmatch import _core

    terminalreporter.write_sep("-", f"CPU clones (process dispatch: {_core.CPU_DISPATCH})")
    for kernel, clones in sorted(CLONES_RUN.items()):
        ran = [c for c, what in clones.items() if what == "ran"]
        missed = [f"{c} ({what})" for c, what in clones.items() if what != "ran"]
        line = f"{kernel}: ran {', '.join(ran) or 'none'}"
        terminalreporter.write_line(line + (f"; not run: {', '.join(missed)}" if missed else ""))


# ---- database backends ----------------------------------------------------------------------
# Tests that take `dbpath` run once on SQLite and once on a throwaway PostgreSQL cluster.
BACKENDS = ("sqlite", "postgresql")


_PG_FAILED: list = []


@pytest.fixture(scope="session")
def pg_cluster():
    """A PostgreSQL server for the session (tests/pg.py), stopped at the end; a start that failed is not retried."""
    from pg import Cluster

    if _PG_FAILED:
        raise RuntimeError(f"PostgreSQL did not start earlier in this session: {_PG_FAILED[0]}")
    try:
        cluster = Cluster()
    except Exception as e:
        _PG_FAILED.append(f"{type(e).__name__}: {e}")
        raise
    yield cluster
    cluster.stop()


@pytest.fixture(params=BACKENDS)
def dbpath(request, tmp_path, monkeypatch):
    """A factory: dbpath("x.db") is a new SQLite file's path, or a new PostgreSQL database's URL (same name, same db)."""
    made: dict = {}
    monkeypatch.setenv("HASHMATCH_INDEX_DIR", str(tmp_path / "index-cache"))

    def at(name: str = "h.db"):
        if name not in made:
            made[name] = tmp_path / name if request.param == "sqlite" else \
                request.getfixturevalue("pg_cluster").new_database()
        return made[name]

    at.backend = request.param
    return at
