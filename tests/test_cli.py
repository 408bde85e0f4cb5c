"""The ``hashmatch`` command line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

import hashmatch
from hashmatch.cli import main


def _write_images(tmp_path, photos):
    paths = []
    for name, img in list(photos.items())[:3]:
        p = tmp_path / f"{name}.png"
        Image.fromarray(img).save(p)
        paths.append(str(p))
    return paths


def test_hash_prints_hex_quality_path(tmp_path, photos, capsys):
    paths = _write_images(tmp_path, photos)
    assert main(["hash", *paths]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(paths)
    for line, path in zip(lines, paths):
        hex_, quality, printed = line.split(" ", 2)
        expected = hashmatch.pdq(path)
        assert (hex_, int(quality), printed) == (expected.hex, expected.quality, path)


def test_hash_json_and_bad_files(tmp_path, photos, capsys):
    paths = _write_images(tmp_path, photos)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    missing = str(tmp_path / "missing.png")
    assert main(["hash", "--json", paths[0], str(bad), missing, paths[1]]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in rows] == [paths[0], str(bad), missing, paths[1]]
    assert rows[0]["pdq"] == hashmatch.pdq(paths[0]).hex and rows[0]["quality"] == 100
    assert rows[1]["error"] == "DecodeError" and "broken.jpg" in rows[1]["reason"]
    assert rows[2]["error"] == "MediaNotFoundError"
    assert rows[3]["pdq"] == hashmatch.pdq(paths[1]).hex


def test_console_script_demo_runs():
    out = subprocess.run([sys.executable, "-m", "hashmatch.cli", "demo"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Hashed" in out.stdout and "synthetic" in out.stdout
    hex_lines = [l for l in out.stdout.splitlines() if l.endswith(tuple("0123456789abcdef")) and ".png" in l]
    assert len(hex_lines) >= 24
