"""Run with the test plugin installed: every step of a signal type's life, reported as JSON on stdout."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

import hashmatch
from hashmatch import signals
from hashmatch.lists import export, read_file


def jpeg(pixels: np.ndarray, quality: int = 80) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def found(matches) -> list:
    return sorted({(m.entry_id, m.format) for m in matches})


def main(folder: Path) -> dict:
    out: dict = {"names": signals.names(), "kinds": {n: signals.get(n).index.kind for n in ("ahash64", "colorhist")},
                 "external": signals.from_external("examplenet", "AHASH")}
    known = {"astronaut": data.astronaut(), "coffee": data.coffee(), "camera": data.camera()}
    rng = np.random.default_rng(7)
    distractor = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    with hashmatch.HashDB(folder / "a.db") as db:
        ids = {name: db.add(pixels, source="plugin-test", external_id=name) for name, pixels in known.items()}
        out["ids"] = ids
        out["stored_formats"] = sorted(f.format for f in db.get(ids["astronaut"]).fingerprints)
        out["copy"] = found(db.match(jpeg(known["astronaut"])))
        out["distractor"] = found(db.match(jpeg(distractor)))
        ahash = signals.get("ahash64").from_pixels(known["coffee"])
        out["by_hash"] = found(db.match_hash("ahash64", ahash.hex))
        out["by_value"] = found(db.match(ahash))
        out["rotated"] = found(db.match(np.ascontiguousarray(np.rot90(known["camera"])), dihedral=True))
        out["stats"] = db.stats()["fingerprints"]
        out["exported"] = export(db, folder / "all.jsonl")[0]
        export(db, folder / "list.txt", kind="list")
        out["list_formats"] = sorted({line.split(" ", 1)[0] for line in (folder / "list.txt").read_text().splitlines()})
    with hashmatch.HashDB(folder / "a.db", create=False) as db:  # reopened: saved index files, rows
        out["index_files"] = sorted(p.name for p in folder.glob("a.db.*-index"))
        out["reopened"] = found(db.match(jpeg(known["astronaut"])))
        db.remove(ids["astronaut"])
        out["after_remove"] = found(db.match(jpeg(known["astronaut"])))
    with hashmatch.HashDB(folder / "b.db") as other:
        other.merge_records(read_file(folder / "all.jsonl"))
        out["imported"] = sorted({(other.get(m.entry_id).external_id, m.format)
                                  for m in other.match(jpeg(known["astronaut"]))})
        listed = hashmatch.HashDB(folder / "c.db")
        listed.merge_records(read_file(folder / "list.txt"))
        out["from_list"] = sorted({m.format for m in listed.match(jpeg(known["coffee"]))})
        listed.close()
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
