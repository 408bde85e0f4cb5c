"""The layer rule of ../shared/design.md, checked on the source: no module imports a layer above its own,
and no private (``_name``) name is imported from another module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "hashmatch"

#: Lowest first. A module may import its own layer and those before it.
LAYERS = [
    {"_core", "errors", "config", "files", "rwlock"},
    {"media"},
    {"video"},
    {"signals", "formats"},
    {"index"},
    {"store"},
    {"pipeline"},
    {"lists"},
    {"exchanges"},
    {"scan"},
    {"service"},
    {"cli"},
    {"__init__", "__main__"},
]


def _layer(top: str) -> int:
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"hashmatch.{top} is in no layer: add it to LAYERS and to the design's layout")


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        yield path, parts


def _top(parts) -> str:
    return parts[0] if parts else "__init__"


def _imports(path: Path, parts):
    """(line, imported module parts, names) for every hashmatch import in a module."""
    tree = ast.parse(path.read_text(), str(path))
    package = list(parts[:-1]) if parts[-1] != "__init__" else list(parts[:-1])
    if parts[-1] == "__init__":
        package = list(parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "hashmatch":
                target = node.module.split(".")[1:]
            else:
                continue
            names = [a.name for a in node.names]
            if not node.module:  # from . import x, y: each name is a module
                for n in names:
                    yield node.lineno, target + [n], []
            else:
                yield node.lineno, target, names
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "hashmatch":
                    yield node.lineno, a.name.split(".")[1:], []


def test_every_module_is_in_a_layer_and_imports_none_above_it():
    bad = []
    for path, parts in _modules():
        own = _layer(_top(parts))
        for line, target, _ in _imports(path, parts):
            if target and _layer(target[0]) > own:
                bad.append(f"{path.relative_to(PACKAGE)}:{line} imports hashmatch.{'.'.join(target)}")
    assert not bad, "imports against the layer rule:\n" + "\n".join(bad)


def test_no_private_name_crosses_modules():
    bad = []
    for path, parts in _modules():
        for line, target, names in _imports(path, parts):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if target and target[-1].startswith("_") and target[-1] not in ("_core", "__init__", "__main__"):
                private.append(".".join(target))
            if private:
                bad.append(f"{path.relative_to(PACKAGE)}:{line} imports {private} from hashmatch.{'.'.join(target)}")
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", ["formats", "ingest", "exchange", "scanning", "video_hashes", "vpdq_frames"])
def test_no_flat_module_is_left_behind(name):
    # One home per concept: the old flat modules are gone (formats stays as the signals' alias package).
    if name == "formats":
        assert (PACKAGE / "formats" / "__init__.py").read_text().count("import") <= 3
    else:
        assert not (PACKAGE / f"{name}.py").exists() and not (PACKAGE / name).exists()


def test_the_checker_sees_a_violation(tmp_path):
    # A check that could not fail would prove nothing: an upward import is reported.
    bad = tmp_path / "m.py"
    bad.write_text("from ..cli import main\nfrom .x import _hidden\n")
    found = list(_imports(bad, ("store", "m")))
    assert ["cli"] in [t for _, t, _ in found] and any("_hidden" in n for _, _, n in found)
    assert _layer("cli") > _layer("store")
