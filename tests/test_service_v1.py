"""hashmatch serve's /v1 routes on the real server: batch lookups, numeric distances, thresholds that only
narrow a bank's, videos by upload and by vPDQ / TMK+PDQF / video_md5 values, an image found in a video's
frames with timestamps, and the dihedral and trim_borders options."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

import hashmatch
from serving import Server, make_tokens
from videos import textured, write_video


def jpeg(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def flip_bits(hex64: str, n: int) -> str:
    bits = bytearray(bytes.fromhex(hex64))
    for i in range(n):
        bits[i // 8] ^= 1 << (i % 8)
    return bits.hex()


@pytest.fixture
def library(dbpath, tmp_path, photos):
    db = dbpath("v1.db")
    clip = textured(7, frames=90)
    video = write_video(tmp_path / "clip.mp4", clip, 90, fps=30)
    astro = jpeg(photos["astronaut"])
    with hashmatch.HashDB(db) as h:
        h.create_bank("IMAGES", thresholds={"pdq": {"max_distance": 20}})
        image_id = h.add(astro, bank="IMAGES")
        video_id = h.add(str(video), bank="VIDEOS")
        stored = {fp.format: fp for fp in h.get(video_id).fingerprints}
    toks = make_tokens(db)
    with Server(db, log=tmp_path / "log") as server:
        yield {"server": server, "token": toks["matcher"], "image_id": image_id, "video_id": video_id,
               "astro": astro, "pdq": hashmatch.pdq(astro).hex, "video": video.read_bytes(), "stored": stored,
               "frame": jpeg(clip(30)), "photos": photos, "hasher": toks["hasher"]}


def test_batch_hash_lookups_and_narrowed_thresholds(library):
    s, pdq, image_id = library["server"], library["pdq"], library["image_id"]
    with s.client(library["token"]) as c:
        hashes = [{"signal_type": "pdq", "signal": pdq}, {"signal_type": "pdq", "signal": flip_bits(pdq, 15)},
                  {"signal_type": "pdq", "signal": flip_bits(pdq, 25)}, {"signal_type": "pdq",
                                                                        "signal": flip_bits(pdq, 120)}]
        r = c.post("/v1/lookup", json={"hashes": hashes})
        assert r.status_code == 200
        results = r.json()["results"]
        assert [x["index"] for x in results] == [0, 1, 2, 3]
        assert results[0]["matches"][0]["distance"] == 0 and results[0]["matches"][0]["entry_id"] == image_id
        assert results[0]["matches"][0]["bank"] == "IMAGES"
        assert results[1]["matches"][0]["distance"] == 15  # a number, not HMA's string
        assert results[2]["matches"] == []  # 25 > the bank's 20
        assert results[3]["matches"] == []

        def found(body):
            return [len(x["matches"]) for x in c.post("/v1/lookup", json=body).json()["results"]]

        assert found({"hashes": hashes[:3], "max_distance": 10}) == [1, 0, 0]  # narrower than the bank's
        assert found({"hashes": hashes[:3], "max_distance": 30}) == [1, 1, 0]  # never wider than the bank's
        assert found({"hashes": hashes[:3], "max_distance": 256}) == [1, 1, 0]
        assert found({"hashes": hashes[:1], "banks": ["VIDEOS"]}) == [0]
        assert found({"signal_type": "pdq", "signal": pdq}) == [1]
        for bad in ({"hashes": hashes, "max_distance": "x"}, {"hashes": hashes, "max_distance": 300},
                    {"hashes": hashes, "max_distance": 3.5}, {"hashes": []}, {"hashes": [{"signal": pdq}]},
                    {"hashes": [{"signal_type": "pdq", "signal": 5}]}, {"hashes": hashes, "banks": "IMAGES"},
                    {"hashes": hashes, "banks": ["NO_SUCH_BANK"]}, {"hashes": hashes, "dihedral": True},
                    {"hashes": [{"signal_type": "photodna", "signal": "x"}]}):
            r = c.post("/v1/lookup", json=bad)
            assert r.status_code == 400, (bad, r.text)
        assert c.post("/v1/lookup", json={"hashes": hashes * 300}).status_code == 413
        r = c.post("/v1/compare", json={"signal_type": "pdq", "a": pdq, "b": flip_bits(pdq, 7)})
        assert r.json() == {"signal_type": "pdq", "distance": 7, "similarity": False, "match": True}


def test_videos_by_upload_and_by_hash_values(library):
    s, stored, video_id = library["server"], library["stored"], library["video_id"]
    with s.client(library["token"]) as c:
        r = c.post("/v1/lookup/media", files={"file": ("clip.mp4", library["video"], "video/mp4")})
        assert r.status_code == 200
        res = r.json()["results"][0]
        assert res["media_type"] == "video"
        formats = {m["format"] for m in res["matches"] if m["entry_id"] == video_id}
        assert {"vpdq", "tmk_pdqf", "video_md5"} <= formats
        vp = next(m for m in res["matches"] if m["format"] == "vpdq")
        assert vp["query_match_percent"] == 100.0

        values = {"video_md5": stored["video_md5"].value, "vpdq": stored["vpdq"].value,
                  "tmk_pdqf": base64.b64encode(stored["tmk_pdqf"].data).decode()}
        r = c.post("/v1/lookup", json={"hashes": [{"signal_type": k, "signal": v} for k, v in values.items()]})
        assert r.status_code == 200, r.text
        for result in r.json()["results"]:
            assert [m["entry_id"] for m in result["matches"]] == [video_id], result
        tmk = r.json()["results"][2]["matches"][0]
        assert tmk["level1"] > 0.9 and tmk["level2"] > 0.9
        assert c.post("/v1/lookup", json={"hashes": [{"signal_type": "tmk_pdqf", "signal": "!!"}]}).status_code == 400

        # one frame of the video, as an image: found in the video's frames, with when
        r = c.post("/v1/lookup/media", files={"frame": ("f.jpg", library["frame"], "image/jpeg")})
        hit = next(m for m in r.json()["results"][0]["matches"] if m["entry_id"] == video_id)
        assert hit["format"] == "vpdq" and hit["timestamps"] and all(0 <= t <= 3.0 for t in hit["timestamps"])


def test_dihedral_trim_borders_and_batch_uploads(library):
    s, image_id = library["server"], library["image_id"]
    astro = library["photos"]["astronaut"]
    rotated = jpeg(np.ascontiguousarray(np.rot90(astro)))
    framed = jpeg(np.pad(astro, ((120, 120), (160, 160), (0, 0))))
    with s.client(library["token"]) as c:
        def hits(data, **params):
            r = c.post("/v1/lookup/media", params=params, files={"f": ("x.jpg", data, "image/jpeg")})
            assert r.status_code == 200, r.text
            return [m for m in r.json()["results"][0]["matches"] if m["entry_id"] == image_id]

        assert hits(rotated) == []
        found = hits(rotated, dihedral="true")
        assert found and found[0]["variant"] != "original"
        assert hits(framed) == []
        assert hits(framed, trim_borders="true")
        r = c.post("/v1/lookup/media", files=[("a", ("a.jpg", library["astro"])), ("b", ("b.jpg", rotated)),
                                               ("c", ("c.bin", b"not an image"))])
        results = r.json()["results"]
        assert [x["name"] for x in results] == ["a.jpg", "b.jpg", "c.bin"]
        assert results[0]["matches"] and results[1]["matches"] == [] and results[2]["error"]["status"] == 400
        assert c.post("/v1/lookup/media", params={"dihedral": "maybe"}, files={"f": ("a", library["astro"])}
                      ).status_code == 400
    with s.client(library["hasher"]) as c:
        r = c.post("/v1/hash", files={"f": ("a.jpg", library["astro"])})
        assert r.json()["results"][0]["hashes"]["pdq"] == library["pdq"]
        assert r.json()["results"][0]["media_type"] == "image"
