"""Third-party signal types through the ``hashmatch.signals`` entry-point group, with no change to hashmatch.

The plugin package under tests/plugins is installed into a temporary directory by the fixture
and used from a subprocess that has it on its path: a 64-bit average hash (found through a
Hamming index) and a colour histogram (found through a FAISS vector index). Each is computed,
stored, indexed, matched, exported and imported; the rest of the suite never sees them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "plugins"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """The plugin package installed (pip, no network) into a directory of its own."""
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(HERE / "hashmatch_test_signals")], check=True, timeout=300)
    assert list(target.glob("hashmatch_test_signals-*.dist-info/entry_points.txt"))
    return target


@pytest.fixture(scope="module")
def scenario(plugin_path, tmp_path_factory) -> dict:
    """The scenario's report, run with the plugin on the path."""
    folder = tmp_path_factory.mktemp("plugin-db")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(HERE / "scenario.py"), str(folder)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_plugins_register_through_entry_points(scenario):
    assert {"ahash64", "colorhist"} <= set(scenario["names"])
    assert scenario["kinds"] == {"ahash64": "hamming", "colorhist": "vector"}
    assert scenario["external"] == "ahash64"


def test_they_are_computed_and_stored_beside_pdq(scenario):
    assert scenario["stored_formats"] == ["ahash64", "colorhist", "pdq"]
    assert scenario["stats"] == {"ahash64": 3, "colorhist": 3, "pdq": 3}


def test_a_copy_matches_in_every_signal_and_a_distractor_in_none(scenario):
    astronaut = scenario["ids"]["astronaut"]
    assert [astronaut, "ahash64"] in scenario["copy"] and [astronaut, "colorhist"] in scenario["copy"]
    assert [astronaut, "pdq"] in scenario["copy"]
    assert scenario["distractor"] == []


def test_hash_values_match_by_name_and_by_value(scenario):
    coffee = scenario["ids"]["coffee"]
    assert scenario["by_hash"] == [[coffee, "ahash64"]]
    assert scenario["by_value"] == [[coffee, "ahash64"]]


def test_dihedral_queries_work_for_a_plugin_signal(scenario):
    # The base class rotates the pixels for a signal without its own dihedral variants.
    camera = scenario["ids"]["camera"]
    assert [camera, "ahash64"] in scenario["rotated"] and [camera, "pdq"] in scenario["rotated"]


def test_its_index_is_saved_reopened_and_updated(scenario):
    assert scenario["index_files"] == ["a.db.ahash64-index", "a.db.pdq-index"]
    assert scenario["reopened"] == scenario["copy"]
    assert scenario["after_remove"] == []


def test_exported_and_imported_like_any_format(scenario):
    assert scenario["exported"] == 3
    assert {"ahash64", "colorhist", "pdq"} <= set(scenario["list_formats"])
    assert scenario["imported"] == [["astronaut", "ahash64"], ["astronaut", "colorhist"], ["astronaut", "pdq"]]
    assert {"ahash64", "colorhist", "pdq"} <= set(scenario["from_list"])
