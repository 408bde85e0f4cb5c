"""Hashing by URL: allow-listed hosts only, public addresses only (after DNS, on every redirect, connecting
to the address checked), size and time bounds; on the real server and in the fetcher itself."""

from __future__ import annotations

import io
import socket

import pytest
from PIL import Image

import hashmatch
from hashmatch.service import fetch
from serving import MediaServer, Server, make_tokens


def policy(*hosts, resolver=None, **kw):
    return fetch.FetchPolicy(allow_hosts=hosts, resolver=resolver or (lambda h, p: [h]), **kw)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.1.2.3", "10.0.0.5", "172.16.3.4", "192.168.1.1",
                                     "169.254.169.254", "0.0.0.0", "224.0.0.1", "100.64.0.1", "::1", "fe80::1",
                                     "fd00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1", "ff02::1"])
def test_private_addresses_are_refused_after_resolution(address):
    p = policy("media.example", resolver=lambda h, port: ["93.184.216.34", address])
    with pytest.raises(fetch.FetchRefusedError, match="resolves to"):
        fetch.check_url("http://media.example/a.jpg", p)


def test_the_url_rules():
    ok = policy("media.example", "*.cdn.example", resolver=lambda h, p: ["93.184.216.34"])
    assert fetch.check_url("https://media.example/a.jpg?x=1", ok) == ("https", "media.example", 443, "/a.jpg?x=1",
                                                                      "93.184.216.34")
    assert fetch.check_url("http://img.cdn.example:8080/", ok)[2] == 8080
    for url, why in [("ftp://media.example/a", "scheme"), ("file:///etc/passwd", "scheme"),
                     ("http://user:pw@media.example/", "credentials"), ("http://evil.example/", "allow-list"),
                     ("http://cdn.example/", "allow-list"), ("http:///nohost", "no host"),
                     ("http://media.example:99999/", "malformed")]:
        with pytest.raises(fetch.FetchRefusedError, match=why):
            fetch.check_url(url, ok)
    with pytest.raises(fetch.FetchRefusedError, match="off"):
        fetch.check_url("http://media.example/", fetch.FetchPolicy())
    # IP literals are addresses too
    with pytest.raises(fetch.FetchRefusedError):
        fetch.check_url("http://10.1.2.3/", fetch.FetchPolicy(allow_hosts=("10.1.2.3",)))
    with pytest.raises(fetch.FetchRefusedError):
        fetch.check_url("http://[::1]/", fetch.FetchPolicy(allow_hosts=("::1",)))


def test_connects_to_the_address_it_checked(monkeypatch):
    """DNS rebinding: the name resolves once per hop, and the socket goes to that answer."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    calls = []

    def resolver(host, port):
        calls.append(host)
        return next(answers)

    def connect(address, timeout=None, *a, **k):
        calls.append(address)
        raise OSError("no network in tests")

    monkeypatch.setattr(socket, "create_connection", connect)
    with pytest.raises(fetch.FetchFailedError):
        fetch.fetch("http://media.example/a.jpg", policy("media.example", resolver=resolver))
    assert calls == ["media.example", ("93.184.216.34", 80)]


def _jpeg(img) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_fetching_on_the_real_server(tmp_path, photos):
    photo = _jpeg(photos["coffee"])
    media = MediaServer({"/a.jpg": photo, "/big.jpg": b"\xff" * 300_000})
    other = MediaServer({"/a.jpg": photo})  # a loopback server that is NOT exempt
    db = tmp_path / "f.db"
    hashmatch.HashDB(db).close()
    toks = make_tokens(db)
    try:
        with Server(db, "--fetch-allow", "127.0.0.1", "--fetch-allow", "localhost", "--fetch-allow", "10.1.2.3",
                    "--fetch-allow", "169.254.169.254", "--fetch-allow-private", f"127.0.0.1:{media.port}",
                    "--max-body-bytes", "1000000", log=tmp_path / "log") as server, server.client(toks["admin"]) as c:
            expected = hashmatch.pdq(photo).hex
            r = c.get("/h/hash", params={"url": f"{media.url}/a.jpg"})
            assert r.status_code == 200 and r.json() == {"pdq": expected}
            assert c.post("/c/banks", json={"name": "URLS"}).status_code == 201
            bad_meta = c.post("/c/bank/URLS/content", params={"url": f"{media.url}/a.jpg"},
                              json={"metadata": {"invalid_metadata": 5}})
            assert bad_meta.status_code == 400
            r = c.post("/c/bank/URLS/content", params={"url": f"{media.url}/a.jpg", "content_type": "photo"},
                       json={"metadata": {"content_id": "1197433091", "json": {"asdf": {}}}})
            assert r.status_code == 200 and r.json()["signals"] == {"pdq": expected}
            got = c.get(f"/c/bank/URLS/content/{r.json()['id']}").json()
            assert got["original_media_uri"] == f"{media.url}/a.jpg"
            assert got["metadata"]["content_id"] == "1197433091"
            r = c.get("/m/lookup", params={"url": f"{media.url}/a.jpg"})
            assert r.json() == {"pdq": {"URLS": [{"bank_content_id": got["id"], "distance": "0"}]}}
            assert c.get("/h/hash", params={"url": f"{media.url}/missing.jpg"}).status_code == 400

            refused = [f"{other.url}/a.jpg",  # loopback, not exempt
                       f"http://localhost:{other.port}/a.jpg",  # a name resolving to loopback
                       "http://10.1.2.3/a.jpg", "http://169.254.169.254/latest/meta-data/",
                       f"{media.url}/redirect?to=http://127.0.0.1:{other.port}/a.jpg",  # redirect to loopback
                       f"{media.url}/redirect?to=http://10.1.2.3/a.jpg",
                       f"{media.url}/redirect?to=http://169.254.169.254/",
                       f"{media.url}/redirect?to=http://evil.example/a.jpg",  # off the allow-list
                       "http://evil.example/a.jpg", "file:///etc/passwd", "gopher://127.0.0.1/"]
            for url in refused:
                for route in ("/h/hash", "/m/lookup"):
                    r = c.get(route, params={"url": url})
                    assert r.status_code == 400, (url, r.text)
                    assert "refused" in r.json()["message"] or "allow" in r.json()["message"] or \
                        "scheme" in r.json()["message"], (url, r.text)
            r = c.post("/v1/lookup/media", params={"url": f"{media.url}/redirect?to=http://10.1.2.3/"})
            assert r.status_code == 400
        # the download cap
        p = fetch.FetchPolicy(allow_hosts=("127.0.0.1",), allow_private=(f"127.0.0.1:{media.port}",),
                              max_bytes=100_000)
        with pytest.raises(fetch.FetchTooLargeError):
            fetch.fetch(f"{media.url}/big.jpg", p)
        assert fetch.fetch(f"{media.url}/a.jpg", p).body == photo
    finally:
        media.close()
        other.close()


def test_no_allow_list_means_no_fetching(tmp_path):
    db = tmp_path / "n.db"
    hashmatch.HashDB(db).close()
    toks = make_tokens(db)
    with Server(db) as server, server.client(toks["admin"]) as c:
        r = c.get("/h/hash", params={"url": "http://example.com/a.jpg"})
        assert r.status_code == 400 and "--fetch-allow" in r.json()["message"]
