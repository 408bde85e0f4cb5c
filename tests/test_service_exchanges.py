"""hashmatch serve's exchange routes (HMA's /c/exchanges, /c/exchange/<name>) and its background fetcher,
on the real server over HTTP, against the fake NCMEC on loopback: shapes from HMA's curation blueprint."""

from __future__ import annotations

import time

import pytest

import hashmatch
from hashmatch import exchanges
from exchange_fakes import FakeServer, NCMECApp
from serving import Server, make_tokens

NAME = "NCMEC_TEST"


@pytest.fixture
def served(dbpath, tmp_path, monkeypatch):
    app = NCMECApp(page_size=100)
    app.fill(250)
    fake = FakeServer(app)
    db = dbpath("ex.db")
    hashmatch.HashDB(db).close()
    toks = make_tokens(db)
    # The server reads the exchange's credentials from its environment, never from a request.
    monkeypatch.setenv(f"HASHMATCH_{NAME}_CREDENTIALS", f"{NCMECApp.USER}:{NCMECApp.PASSWORD}")
    with Server(db, "--exchange-interval", "0.5", log=tmp_path / "server.log") as server:
        yield server, toks, app, fake
    fake.close()


def _wait(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_an_exchange_made_over_http_fills_its_bank_in_the_background(served):
    server, toks, app, fake = served
    with server.client(toks["admin"]) as admin, server.client(toks["curator"]) as curator, \
            server.client(toks["matcher"]) as matcher:
        assert "ncmec" in curator.get("/c/exchanges/apis").json()
        api = curator.get("/c/exchanges/api/ncmec").json()
        # python-threatexchange's own NCMEC credentials ($TX_NCMEC_CREDENTIALS) are not set for the server
        assert api == {"supports_authentification": True, "has_set_authentification": False}
        body = {"bank": NAME, "api": "ncmec", "api_json": {"url": fake.url + "/", "timeout": 5}}
        assert curator.post("/c/exchanges", json=body).status_code == 403  # creating one is the admin's
        r = admin.post("/c/exchanges", json=body)
        assert r.status_code == 201 and r.json() == {"message": "Created successfully"}
        assert admin.post("/c/exchanges", json=body).status_code == 403  # exists
        assert curator.get("/c/exchanges").json() == [NAME]
        shown = curator.get(f"/c/exchange/{NAME}").json()
        assert shown["name"] == NAME and shown["api"] == "ncmec" and shown["enabled"] is True
        assert shown["url"] == fake.url + "/"

        # the background pass fetches all 250 entries into the bank named after the exchange
        status = _wait(lambda: (s := curator.get(f"/c/exchange/{NAME}/status").json())["last_fetch_succeeded"]
                       and s["fetched_items"] == 250 and s)
        assert set(status) >= {"checkpoint_ts", "running_fetch_start_ts", "last_fetch_complete_ts",
                               "last_fetch_succeeded", "up_to_date", "fetched_items"}
        assert status["up_to_date"] is True and isinstance(status["last_fetch_complete_ts"], int)
        pdq = next(fps["pdq"] for fps in app.truth().values() if "pdq" in fps)
        found = matcher.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": pdq}).json()["matches"]
        assert found, "a fetched PDQ is matchable through the service"

        # an entry deleted at NCMEC leaves the bank on a later pass
        (member, eid), entry = next((k, e) for k, e in app.entries.items() if "pdq" in e["fps"])
        gone = entry["fps"]["pdq"]
        app.delete(member, eid)
        _wait(lambda: not matcher.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": gone}
                                      ).json()["matches"])

        # switched off, then deleted (its bank and entries stay)
        r = admin.put(f"/c/exchange/{NAME}", json={"enabled": False})
        assert r.status_code == 200 and r.json()["enabled"] is False
        assert admin.delete(f"/c/exchange/{NAME}").json() == {"message": "success"}
        assert curator.get("/c/exchanges").json() == []
        assert curator.get(f"/c/exchange/{NAME}").status_code == 404
        assert admin.delete(f"/c/exchange/{NAME}").json() == {"message": "success"}  # HMA: none is no error
        assert any(b["name"] == NAME for b in curator.get("/c/banks").json())


def test_exchange_routes_refuse_credentials_and_bad_input(served):
    server, toks, app, fake = served
    with server.client(toks["admin"]) as admin, server.client() as anonymous:
        assert anonymous.get("/c/exchanges").status_code == 401
        r = admin.post("/c/exchanges/api/ncmec", json={"credential_json": {"user": "u", "password": "p"}})
        assert r.status_code == 400 and "HTTP" in r.json()["message"]
        assert admin.get("/c/exchanges/api/nope").status_code == 400
        for body, why in (({"api": "ncmec"}, "bank"), ({"bank": "lower", "api": "ncmec"}, "bank"),
                          ({"bank": "OK_NAME"}, "api"), ({"bank": "OK_NAME", "api": "nope"}, "nope"),
                          ({"bank": "OK_NAME", "api": "ncmec", "api_json": []}, "api_json"),
                          ({"bank": "OK_NAME", "api": "ncmec", "api_json": {"password": "x"}}, "credentials")):
            r = admin.post("/c/exchanges", json=body)
            assert r.status_code == 400 and why in r.json()["message"], (body, r.text)
        assert admin.get("/c/exchanges").json() == []
    assert NCMECApp.PASSWORD not in server.log_path.read_text()  # the server's credentials are never logged


def test_no_fetching_when_switched_off(dbpath, tmp_path, monkeypatch):
    app = NCMECApp(page_size=100)
    app.fill(20)
    fake = FakeServer(app)
    db = dbpath("off.db")
    with hashmatch.HashDB(db) as store:
        exchanges.add(store, NAME, "ncmec", NAME, {"url": fake.url + "/", "timeout": 5})
    monkeypatch.setenv(f"HASHMATCH_{NAME}_CREDENTIALS", f"{NCMECApp.USER}:{NCMECApp.PASSWORD}")
    try:
        with Server(db, "--exchange-interval", "0", log=tmp_path / "server.log"):
            time.sleep(2)
        assert fake.requests == 0
        with Server(db, "--exchange-interval", "0.5", log=tmp_path / "server2.log"):
            _wait(lambda: fake.requests > 0)
    finally:
        fake.close()
