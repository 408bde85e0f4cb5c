"""The ``hashmatch`` command line."""

from __future__ import annotations

import json
import subprocess
import sys

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
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Hashed" in out.stdout and "synthetic" in out.stdout
    rows = [line.split() for line in out.stdout.splitlines() if line.split()[:1] and line.split()[0].endswith(".png")]
    matched = [r for r in rows if r.count(r[0]) == 2]  # the query name again, in the match column
    assert len(matched) >= 16  # every transformed copy found its own entry
    assert "no match (correct)" in out.stdout


def test_db_add_import_match_stats(tmp_path, photos, capsys):
    paths = _write_images(tmp_path, photos)
    db = str(tmp_path / "cli.db")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["db", "add", db, paths[0], str(bad), "--source", "mine", "--label", "l1"]) == 1
    assert "added 1 entries" in capsys.readouterr().out
    other = hashmatch.pdq(paths[1])
    hashlist = tmp_path / "list.csv"
    hashlist.write_text(f"hash,external_id,labels\n{other.hex},ext-1,a;b\n")
    assert main(["db", "import", db, str(hashlist), "--source", "partner"]) == 0
    assert "1 added" in capsys.readouterr().out
    assert main(["match", db, "--json", paths[0], paths[1], paths[2], str(bad)]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in rows] == [paths[0], paths[1], paths[2], str(bad)]
    assert [m["source"] for m in rows[0]["matches"]] == ["mine"] and rows[0]["matches"][0]["distance"] == 0
    assert rows[0]["matches"][0]["labels"] == ["l1"]
    assert [(m["external_id"], m["labels"]) for m in rows[1]["matches"]] == [("ext-1", ["a", "b"])]
    assert rows[2]["matches"] == [] and rows[3]["error"] == "DecodeError"
    assert main(["db", "stats", db]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["entries"] == 2 and stats["sources"] == {"mine": 1, "partner": 1}


def test_db_import_rejects_a_malformed_list_whole(tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    hashlist = tmp_path / "list.txt"
    hashlist.write_text("a" * 64 + "\n" + "not-a-hash\n")
    assert main(["db", "import", db, str(hashlist)]) == 2
    assert "list.txt:2" in capsys.readouterr().err
    with hashmatch.HashDB(db) as opened:
        assert len(opened) == 0
