"""ThreatExchange (Graph API threat_updates cursors) and TCAP (JWT auth) against fakes on loopback."""

from __future__ import annotations

import time

import pytest

from exchange_fakes import FakeServer, TATApp, ThreatExchangeApp, live_view
from hashmatch import exchanges
from hashmatch.store import Store

TE_OURS = {"HASH_PDQ": "pdq", "HASH_MD5": "video_md5"}


@pytest.fixture
def graph():
    app = ThreatExchangeApp()
    srv = FakeServer(app, timeout_sleep=1.2)
    app.base = srv.url + "/v26.0"
    yield app, srv
    srv.close()


def _te_store(dbpath, srv, monkeypatch, **cfg):
    monkeypatch.setenv("HASHMATCH_TE_CREDENTIALS", ThreatExchangeApp.TOKEN)
    store = Store(dbpath("x.db"))
    exchanges.add(store, "te", "fb_threatexchange", "te-bank",
                  {"url": srv.url + "/v26.0", "privacy_group": ThreatExchangeApp.GROUP, "page_size": 40,
                   "timeout": 0.5, "backoff": 0.01, **cfg})
    return store


def _te_expected(app):
    return {k: sorted((TE_OURS[t], v) for t, v in fps.items() if t in TE_OURS) for k, fps in app.truth().items()}


def _te_fill(app, n, ts=1_650_000_000):
    for i in range(n):
        app.put(str(10_000 + i), "HASH_PDQ" if i % 3 else "HASH_MD5", f"{i:064x}" if i % 3 else f"{i:032x}",
                tags=("tag-a",) if i % 2 else (), ts=ts + i)


def test_threat_updates_cursors_deletes_and_no_token_in_the_database(dbpath, graph, monkeypatch):
    app, srv = graph
    _te_fill(app, 130)
    app.put("99", "URI", "https://example.com/x", ts=1_650_000_500)
    store = _te_store(dbpath, srv, monkeypatch)
    report = exchanges.fetch(store, "te")
    assert report.ok and report.complete and report.added == 131 and report.pages == 4
    assert live_view(store, "te") == _te_expected(app)
    rec = next(r for r in store.iter_records() if r.external_id == "10001")
    assert rec.labels == ["tag-a"] and rec.metadata["exchange"]["opinions"][0]["opinion"] == "MALICIOUS"
    uri = next(r for r in store.iter_records() if r.external_id == "99")
    assert uri.metadata["exchange"]["unparsed"] == {"URI": "https://example.com/x"}
    app.put("10001", "HASH_PDQ", "f" * 64, delete=True)
    app.put("10002", "HASH_PDQ", "e" * 64)
    time.sleep(1.05)
    report = exchanges.fetch(store, "te")
    assert report.ok and (report.updated, report.deleted) == (1, 1)
    assert live_view(store, "te") == _te_expected(app)
    # a checkpoint saved mid-window holds the cursor URL without the access token
    exchanges.tables.reset_checkpoint(store, "te")
    exchanges.fetch(store, "te", max_pages=1)
    cp = exchanges.status(store, "te")[0]["checkpoint"]
    assert cp["next"] and "after=" in cp["next"]
    dump = "\n".join(str(row) for table in ("exchanges", "exchange_checkpoints", "exchange_status", "entries")
                     for row in store.sql.execute(f"SELECT * FROM {table}").fetchall())
    assert ThreatExchangeApp.TOKEN.split("|")[1] not in dump
    report = exchanges.fetch(store, "te")  # resumes from the cursor, the token put back
    assert report.ok and report.complete
    assert live_view(store, "te") == _te_expected(app)
    store.close()


@pytest.mark.parametrize("faults", [["500", "429"], ["timeout", "truncate"], ["repeat"]])
def test_threat_updates_faults(tmp_path, graph, monkeypatch, faults):
    app, srv = graph
    _te_fill(app, 100)
    store = _te_store(lambda n: tmp_path / n, srv, monkeypatch)
    srv.faults[:] = [None, *faults]
    report = exchanges.fetch(store, "te")
    assert report.ok and report.complete, report.error
    assert live_view(store, "te") == _te_expected(app)
    store.close()


# ----- TCAP ----------------------------------------------------------------------------------------
@pytest.fixture
def tcap():
    app = TATApp(page_size=30)
    srv = FakeServer(app, timeout_sleep=1.2)
    yield app, srv
    srv.close()


TAT_OURS = {("PDQ", "jpg"): "pdq", ("MD5", "jpg"): "md5", ("MD5", "mp4"): "video_md5", ("SHA256", "jpg"): "sha256"}


def _tat_fill(app, n):
    for i in range(n):
        algorithm, ftype = [("PDQ", "jpg"), ("MD5", "jpg"), ("MD5", "mp4"), ("SHA256", "jpg")][i % 4]
        digest = f"{i:064x}" if algorithm in ("PDQ", "SHA256") else f"{i:032x}"
        app.put(i + 1, algorithm, digest, ts=1_690_000_000 + i // 7, file_type=ftype)


def _tat_expected(app):
    return {str(i): [(TAT_OURS[(e["algorithm"], e["file_type"])], e["hash_digest"])]
            for i, e in app.items.items() if not e["deleted"]}


def _tat_store(dbpath, srv, monkeypatch, creds=f"{TATApp.USER}:{TATApp.PASSWORD}"):
    monkeypatch.setenv("HASHMATCH_TCAP_CREDENTIALS", creds)
    store = Store(dbpath("x.db"))
    exchanges.add(store, "tcap", "tat", "tcap-bank", {"url": srv.url, "timeout": 0.5, "backoff": 0.01})
    return store


def test_tcap_jwt_pages_and_deletions(dbpath, tcap, monkeypatch):
    app, srv = tcap
    _tat_fill(app, 100)
    store = _tat_store(dbpath, srv, monkeypatch)
    report = exchanges.fetch(store, "tcap")
    assert report.ok and report.complete and report.added == 100
    assert app.tokens_issued >= 4  # a JWT for each page, as the client asks
    assert live_view(store, "tcap") == _tat_expected(app)
    rec = next(r for r in store.iter_records() if r.external_id == "1")
    assert rec.classification == "far-right" and rec.metadata["exchange"]["file_type"] == "jpg"
    app.put(1, "PDQ", f"{1:064x}", deleted=True)
    app.put(500, "PDQ", "d" * 64)
    report = exchanges.fetch(store, "tcap")
    assert report.ok and (report.added, report.deleted) == (1, 1)
    assert live_view(store, "tcap") == _tat_expected(app)
    store.close()


def test_tcap_bad_password_and_expired_tokens(tmp_path, tcap, monkeypatch):
    app, srv = tcap
    _tat_fill(app, 10)
    store = _tat_store(lambda n: tmp_path / n, srv, monkeypatch, creds=f"{TATApp.USER}:nope")
    report = exchanges.fetch(store, "tcap")
    assert not report.ok and "CredentialsError" in report.error and "nope" not in report.error
    monkeypatch.setenv("HASHMATCH_TCAP_CREDENTIALS", f"{TATApp.USER}:{TATApp.PASSWORD}")
    app.ttl = -1  # every token it issues is already expired: the list refuses it
    report = exchanges.fetch(store, "tcap")
    assert not report.ok and "CredentialsError" in report.error
    app.ttl = 30
    srv.faults[:] = ["500", None, "truncate", "429"]
    report = exchanges.fetch(store, "tcap")
    assert report.ok and report.complete, report.error
    assert live_view(store, "tcap") == _tat_expected(app)
    store.close()
