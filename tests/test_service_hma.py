"""hashmatch serve's HMA routes, called over HTTP on the real server, with the shapes HMA's own source and
tests give (open-media-match's blueprints and test_api.py): an HMA client works by changing its base URL."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import hashmatch
from serving import Server, make_tokens


def jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def flip_bits(hex64: str, n: int) -> str:
    bits = bytearray(bytes.fromhex(hex64))
    for i in range(n):
        bits[i // 8] ^= 1 << (i % 8)
    return bits.hex()


@pytest.fixture
def served(dbpath, tmp_path):
    db = dbpath("hma.db")
    hashmatch.HashDB(db).close()
    toks = make_tokens(db)
    with Server(db, log=tmp_path / "server.log") as server:
        yield server, toks


def test_banks_create_update_delete_as_hma(served):
    server, toks = served
    with server.client(toks["curator"]) as c:
        assert c.get("/c/banks").json() == []
        assert c.post("/c/banks", json={"name": "01_TEST_BANK"}).status_code == 400  # must not start with a digit
        assert c.post("/c/banks", json={"name": "my_test_bank"}).status_code == 400  # no lowercase
        r = c.post("/c/banks", json={"name": "MY_TEST_BANK"})
        assert r.status_code == 201
        assert r.json() == {"matching_enabled_ratio": 1.0, "name": "MY_TEST_BANK"}
        assert c.get("/c/banks").json() == [r.json()]
        assert c.post("/c/banks", json={"name": "MY_TEST_BANK"}).status_code == 403  # exists
        assert c.get("/c/bank/MY_TEST_BANK").json() == r.json()
        assert c.get("/c/bank/NOPE").status_code == 404

        assert c.put("/c/bank/MY_TEST_BANK", json={"name": "1_invalid_name"}).status_code == 400
        r = c.put("/c/bank/MY_TEST_BANK", json={"name": "MY_TEST_BANK_RENAMED"})
        assert r.status_code == 200 and r.json()["name"] == "MY_TEST_BANK_RENAMED"
        r = c.put("/c/bank/MY_TEST_BANK_RENAMED", json={"enabled": False})
        assert r.status_code == 200 and r.json()["matching_enabled_ratio"] == 0
        r = c.put("/c/bank/MY_TEST_BANK_RENAMED", json={"enabled_ratio": 0.5})
        assert r.status_code == 200 and r.json()["matching_enabled_ratio"] == 0.5
        assert c.get("/c/banks").json() == [{"name": "MY_TEST_BANK_RENAMED", "matching_enabled_ratio": 0.5}]

        assert c.delete("/c/bank/MY_TEST_BANK_RENAMED").status_code == 200
        assert c.delete("/c/bank/MY_TEST_BANK_RENAMED").status_code == 200  # a missing bank: still 200
        assert c.get("/c/banks").json() == []


def test_content_hashing_and_matching_as_hma(served, photos):
    server, toks = served
    photo = jpeg(photos["astronaut"])
    expected = hashmatch.pdq(photo).hex
    with server.client(toks["admin"]) as c:
        assert c.post("/c/banks", json={"name": "NEW_BANK"}).status_code == 201
        hashed = c.post("/h/hash", files={"photo": ("a.jpg", photo, "image/jpeg")})
        assert hashed.status_code == 200 and hashed.json() == {"pdq": expected}
        assert c.post("/h/hash", files={"document": ("a.jpg", photo)}).status_code == 400  # not a content type
        assert c.post("/h/hash", files=[("photo", ("a", photo)), ("photo", ("b", photo))]).status_code == 400

        added = c.post("/c/bank/NEW_BANK/content", files={"photo": ("a.jpg", photo, "image/jpeg")})
        assert added.status_code == 200
        cid = added.json()["id"]
        assert added.json() == {"id": cid, "signals": {"pdq": expected}}

        assert c.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": expected}).json() == {"matches": [cid]}
        near = flip_bits(expected, 5)
        r = c.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": near, "include_distance": "true"})
        assert r.json() == {"matches": [{"bank_content_id": cid, "distance": "5"}]}
        assert c.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": near, "banks": "OTHER"}).json() == \
            {"matches": []}
        assert c.get("/m/raw_lookup", params={"signal_type": "pdq"}).status_code == 400  # signal is required
        assert c.get("/m/raw_lookup", params={"signal_type": "nope", "signal": near}).status_code == 400
        assert c.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": "zz"}).status_code == 400

        # GET /m/lookup with signal_type: the outer object is elided
        r = c.get("/m/lookup", params={"signal_type": "pdq", "signal": near})
        assert r.json() == {"NEW_BANK": [{"bank_content_id": cid, "distance": "5"}]}
        r = c.post("/m/lookup", files={"photo": ("q.jpg", photo, "image/jpeg")})
        assert r.json() == {"pdq": {"NEW_BANK": [{"bank_content_id": cid, "distance": "0"}]}}
        assert c.get("/m/lookup").status_code == 400

        # a hash added as a signal is matchable at once
        other = hashmatch.pdq(jpeg(photos["coffee"])).hex
        r = c.post("/c/bank/NEW_BANK/signal", json={"pdq": other})
        assert r.status_code == 200 and r.json() == {"id": r.json()["id"], "signals": {"pdq": other}}
        sid = r.json()["id"]
        assert c.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": other}).json() == {"matches": [sid]}
        assert c.post("/c/bank/NEW_BANK/signal", json={"pdq": "not-a-hash"}).status_code == 400
        assert c.post("/c/bank/NEW_BANK/signal", json={}).status_code == 400
        assert c.post("/c/bank/MISSING/signal", json={"pdq": other}).status_code == 404

        # content: get, disable / enable (disabled content is not matched by lookup), delete
        got = c.get(f"/c/bank/NEW_BANK/content/{cid}")
        assert got.status_code == 200
        body = got.json()
        assert body["id"] == cid and body["disable_until_ts"] == 1 and body["collab_metadata"] == {}
        assert body["bank"] == {"name": "NEW_BANK", "matching_enabled_ratio": 1.0}
        assert "original_media_uri" in body and "signals" not in body
        assert c.get(f"/c/bank/NEW_BANK/content/{cid}", params={"include_signals": "true"}).json()["signals"] == \
            {"pdq": expected}
        assert c.get("/c/bank/NEW_BANK/content/99999").status_code == 404
        r = c.put(f"/c/bank/NEW_BANK/content/{cid}", json={"disable_until_ts": 0})
        assert r.status_code == 200 and r.json()["disable_until_ts"] == 0
        assert c.get("/m/lookup", params={"signal_type": "pdq", "signal": expected}).json() == {}
        assert c.put(f"/c/bank/NEW_BANK/content/{cid}", json={"disable_until_ts": 1}).json()["disable_until_ts"] == 1
        assert c.get("/m/lookup", params={"signal_type": "pdq", "signal": expected}).json() != {}
        assert c.put(f"/c/bank/NEW_BANK/content/{cid}", json={"disable_until_ts": -1}).status_code == 400
        assert c.put(f"/c/bank/NEW_BANK/content/{cid}", json={"disable_until_ts": 4_000_000_000}).status_code == 400
        assert c.put(f"/c/bank/NEW_BANK/content/{cid}", json={"disable_until_ts": "soon"}).status_code == 400

        # a bank at enabled_ratio 0 takes part in no lookup
        c.put("/c/bank/NEW_BANK", json={"enabled_ratio": 0.0})
        assert c.get("/m/lookup", params={"signal_type": "pdq", "signal": expected}).json() == {}
        c.put("/c/bank/NEW_BANK", json={"enabled_ratio": 1.0})

        assert c.delete(f"/c/bank/NEW_BANK/content/{cid}").json() == {"deleted": 1}
        assert c.post("/c/banks", json={"name": "GONE"}).status_code == 201
        assert c.post("/c/bank/GONE/signal", json={"pdq": flip_bits(other, 50)}).status_code == 200
        assert c.delete("/c/bank/GONE").json() == {"message": "Done"}  # with its content
        assert [b["name"] for b in c.get("/c/banks").json()] == ["NEW_BANK"]
        assert c.get("/c/bank/GONE").status_code == 404
        assert c.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": expected}).json() == {"matches": []}
        assert c.delete(f"/c/bank/NEW_BANK/content/{cid}").json() == {"deleted": 0}


def test_compare_status_and_configuration_as_hma(served):
    server, toks = served
    a = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
    b = flip_bits(a, 9)
    far = flip_bits(a, 100)
    with server.client(toks["admin"]) as c:
        assert c.post("/m/compare", json={"pdq": [a, b]}).json() == {"pdq": [True, {"distance": 9}]}
        assert c.post("/m/compare", json={"pdq": [a, far]}).json() == {"pdq": [False, {"distance": 100}]}
        assert c.post("/m/compare", json={"pdq": [a, b, a]}).status_code == 400
        assert c.post("/m/compare", json={"pdq": a}).status_code == 400
        assert c.post("/m/compare", json=[a, b]).status_code == 400
        assert c.post("/m/compare", json={"pdq": [a, "zz"]}).status_code == 400

        status = c.get("/m/index/status").json()
        assert set(status["pdq"]) == {"present", "built_to", "size"} and status["pdq"]["present"] is True
        assert set(c.get("/m/index/status", params={"signal_type": "pdq"}).json()) == {"pdq"}
        assert c.get("/m/index/status", params={"signal_type": "nope"}).status_code == 400
        index = c.get("/c/signal_type/index").json()["pdq"]
        assert set(index) == {"db_size", "index_size", "index_out_of_date", "newest_db_item", "index_built_to"}

        types = c.get("/c/signal_type").json()
        assert {"name": "pdq", "enabled_ratio": 1.0} in types and {"name": "video_md5", "enabled_ratio": 1.0} in types
        assert c.get("/c/content_type").json() == [{"name": "photo", "enabled": True},
                                                   {"name": "video", "enabled": True}]

        spec = c.get("/openapi/openapi.json").json()
        assert spec["openapi"].startswith("3.") and "/m/raw_lookup" in spec["paths"]
        assert spec["paths"]["/c/banks"]["post"]["x-roles"] == ["admin", "curator"]
    with server.client() as c:
        r = c.get("/status")
        assert r.status_code == 200 and r.text == "I-AM-ALIVE"
        assert c.get("/status/live").status_code == 200
        assert c.get("/no/such/route").json()["message"] == "Not Found"


def test_the_serve_demo_calls_the_server_as_an_hma_client_would():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "hashmatch", "demo", "--serve"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert '"SYNTHETIC": [{"bank_content_id": 1, "distance": "0"}]' in out.stdout
    assert "with a bad token -> 401" in out.stdout
