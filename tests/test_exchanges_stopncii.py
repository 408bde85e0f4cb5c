"""StopNCII through python-threatexchange's client against a fake FetchHashes: page tokens, withdrawals
(by hashStatus), VideoTMK and unknown types kept, faults, an expired token, feedback."""

from __future__ import annotations

import json
import time

import pytest

from exchange_fakes import FakeServer, StopNCIIApp, live_view
from hashmatch import exchanges
from hashmatch.store import Store

OURS = {"ImagePDQ": "pdq", "VideoMD5": "video_md5"}
CREDS = json.dumps({"fetch_function_key": StopNCIIApp.FETCH_KEY, "subscription_key": StopNCIIApp.SUB_KEY,
                    "feedback_function_key": StopNCIIApp.FEEDBACK_KEY})


@pytest.fixture
def fake():
    app = StopNCIIApp()
    srv = FakeServer(app, timeout_sleep=1.2)
    yield app, srv
    srv.close()


def _fill(app, n, ts=1_700_000_000):
    for i in range(n):
        if i % 4 == 3:
            app.put("VideoMD5", f"{i:032x}", ts=ts + i // 50)
        else:
            app.put("ImagePDQ", f"{i:064x}", ts=ts + i // 50,
                    feedbacks=[{"feedbackValue": "Blocked", "tags": ["t1"], "source": "csp-9"}] if i == 0 else [])


def _expected(app):
    return {k: sorted((OURS[t], v) for t, v in fps.items()) for k, fps in app.truth().items() if
            next(iter(fps)) in OURS}


def _store(dbpath, srv, monkeypatch, **cfg):
    monkeypatch.setenv("HASHMATCH_SNCII_CREDENTIALS", CREDS)
    store = Store(dbpath("x.db"))
    exchanges.add(store, "sncii", "stop_ncii", "stopncii",
                  {"url": srv.url + "/v1", "timeout": 0.5, "backoff": 0.01, "page_size": 50, **cfg})
    return store


def test_fetch_withdrawal_and_update(dbpath, fake, monkeypatch):
    app, srv = fake
    _fill(app, 230)
    store = _store(dbpath, srv, monkeypatch)
    report = exchanges.fetch(store, "sncii")
    assert report.ok and report.complete and report.added == 230 and report.pages == 5
    assert live_view(store, "sncii") == _expected(app)
    first = next(r for r in store.iter_records() if r.external_id == f"ImagePDQ:{0:064x}")
    prov = first.metadata["exchange"]
    assert prov["status"] == "Active" and prov["cases"] == {"case-1": "Active"}
    assert prov["feedback"] == [{"value": "Blocked", "tags": ["t1"], "source": "csp-9"}]
    # a withdrawal (hashStatus), a new record, and a changed record (new case status)
    app.withdraw("ImagePDQ", f"{5:064x}")
    app.put("ImagePDQ", "f" * 64)
    app.records[("VideoMD5", f"{3:032x}")].update(ts=int(time.time()), cases={"case-1": "Active", "case-2": "Received"})
    report = exchanges.fetch(store, "sncii")
    assert report.ok and (report.added, report.updated, report.deleted) == (1, 1, 1)
    assert live_view(store, "sncii") == _expected(app)
    assert f"ImagePDQ:{5:064x}" not in {m.external_id for m in store.match_hash("pdq", f"{5:064x}")}
    withdrawn = next(r for r in store.iter_records() if r.external_id == f"ImagePDQ:{5:064x}")
    assert withdrawn.deleted
    store.close()


def test_videotmk_and_unknown_types_are_kept(tmp_path, fake, monkeypatch):
    app, srv = fake
    app.put("VideoTMK", "dG1rIGJ5dGVz")
    app.put("Text", "some text hash")
    app.put("SomethingNew", "v1")  # the client's dataclasses drop it; we keep it from the raw page
    store = _store(lambda n: tmp_path / n, srv, monkeypatch)
    assert exchanges.fetch(store, "sncii").added == 3
    kept = {r.external_id: r.metadata["exchange"].get("unparsed") for r in store.iter_records()}
    assert kept == {"VideoTMK:dG1rIGJ5dGVz": {"VideoTMK": "dG1rIGJ5dGVz"}, "Text:some text hash":
                    {"Text": "some text hash"}, "SomethingNew:v1": {"SomethingNew": "v1"}}
    store.close()


@pytest.mark.parametrize("faults", [["500", "500"], ["429"], ["timeout"], ["truncate"], ["repeat"]])
def test_faults(tmp_path, fake, monkeypatch, faults):
    app, srv = fake
    _fill(app, 180)
    store = _store(lambda n: tmp_path / n, srv, monkeypatch)
    srv.faults[:] = [None, *faults]
    report = exchanges.fetch(store, "sncii")
    assert report.ok and report.complete, report.error
    assert live_view(store, "sncii") == _expected(app)
    store.close()


def test_an_expired_page_token_restarts_the_window_not_everything(tmp_path, fake, monkeypatch):
    app, srv = fake
    _fill(app, 200)
    store = _store(lambda n: tmp_path / n, srv, monkeypatch)
    assert exchanges.fetch(store, "sncii", max_pages=2).added == 100
    app.put("ImagePDQ", "e" * 64)
    orig = app.fetch

    def expiring(q):  # every token issued before now is refused once
        if q.get("nextPageToken") and not getattr(app, "expired_once", False):
            app.expired_once = True
            return 400, {}, b'{"error": "token expired"}'
        return orig(q)

    app.fetch = expiring
    report = exchanges.fetch(store, "sncii")
    assert report.ok and report.complete and report.added == 101
    assert live_view(store, "sncii") == _expected(app)
    store.close()


def test_feedback_blocked_and_not_blocked(tmp_path, fake, monkeypatch):
    app, srv = fake
    _fill(app, 8)
    store = _store(lambda n: tmp_path / n, srv, monkeypatch)
    exchanges.fetch(store, "sncii")
    a = next(r for r in store.iter_records() if r.external_id == f"ImagePDQ:{0:064x}")
    b = next(r for r in store.iter_records() if r.external_id == f"VideoMD5:{3:032x}")
    assert exchanges.feedback(store, "sncii", a.id, "true_positive")["sent"] == 1
    assert exchanges.feedback(store, "sncii", b.id, "false_positive")["sent"] == 1
    assert [(f["hashValue"], f["feedbackValue"]) for f in app.feedback] == [(f"{0:064x}", "Blocked"),
                                                                             (f"{3:032x}", "NotBlocked")]
    store.close()


def test_feedback_without_its_key_stays_queued(tmp_path, fake, monkeypatch):
    app, srv = fake
    _fill(app, 2)
    store = _store(lambda n: tmp_path / n, srv, monkeypatch)
    monkeypatch.setenv("HASHMATCH_SNCII_CREDENTIALS", f"{StopNCIIApp.FETCH_KEY},{StopNCIIApp.SUB_KEY}")
    exchanges.fetch(store, "sncii")
    entry = next(iter(store.iter_records()))
    out = exchanges.feedback(store, "sncii", entry.id, "true_positive")
    assert out["sent"] == 0 and out["pending"] == 1
    row = exchanges.tables.pending_feedback(store, "sncii")[0]
    assert "feedback_function_key" in row["last_error"] and StopNCIIApp.FETCH_KEY not in row["last_error"]
    store.close()
