"""`hashmatch exchange ...` as users run it, credentials handling, the file exchange, and the schema 3 -> 4 upgrade."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from exchange_fakes import FakeServer, NCMECApp, live_view, ncmec_expected
from hashmatch import exchanges
from hashmatch.cli import main
from hashmatch.errors import CredentialsError, ExchangeConfigError
from hashmatch.store import SCHEMA_VERSION, Store


def test_cli_add_fetch_status_list_feedback_remove(tmp_path, monkeypatch, capsys):
    app = NCMECApp(page_size=50)
    app.fill(120)
    srv = FakeServer(app)
    db = str(tmp_path / "c.db")
    creds = tmp_path / "ncmec.creds"
    creds.write_text(f"{NCMECApp.USER}:{NCMECApp.PASSWORD}\n")
    os.chmod(creds, 0o644)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"url": srv.url, "credentials_file": str(creds), "backoff": 0.01}))
    assert main(["exchange", "add", "nc", "--api", "ncmec", "--bank", "ncmec", "--config", str(cfg),
                 "--db", db]) == 0
    assert main(["exchange", "list", "--db", db]) == 0
    assert "nc\tncmec\tncmec\tenabled" in capsys.readouterr().out
    # a credentials file others can read is refused, naming the fix
    assert main(["exchange", "fetch", "--db", db]) == 1
    err = capsys.readouterr().err
    assert "chmod 600" in err and NCMECApp.PASSWORD not in err
    os.chmod(creds, 0o600)
    assert main(["exchange", "fetch", "--db", db]) == 0
    assert "nc: ok: 3 pages, 120 added" in capsys.readouterr().out
    assert main(["exchange", "fetch", "nc", "--db", db, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["added"] == 0 and report["unchanged"] == 0  # nothing changed since
    assert main(["exchange", "status", "--db", db, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["entries"] == 120 and status["state"] == "ok" and NCMECApp.PASSWORD not in json.dumps(status)
    with Store(db) as store:
        entry = next(r for r in store.iter_records() if r.external_id == "1000-1")
    assert main(["exchange", "feedback", "nc", str(entry.id), "--verdict", "false_positive", "--db", db]) == 0
    assert "sent" in capsys.readouterr().out and {f["vote"] for f in app.feedback} == {"negative"}
    assert main(["exchange", "fetch", "nope", "--db", db]) == 2  # a misspelt name: a usage error
    assert "no exchange named 'nope'" in capsys.readouterr().err
    assert main(["exchange", "remove", "nc", "--db", db]) == 0
    with Store(db) as store:
        assert exchanges.list_exchanges(store) == [] and len(store) == 120  # its entries stay
    conn = sqlite3.connect(db)
    text = "\n".join(str(r) for t in ("exchanges", "exchange_checkpoints", "exchange_status", "exchange_feedback",
                                      "entries", "banks", "meta") for r in conn.execute(f"SELECT * FROM {t}"))
    conn.close()
    assert NCMECApp.PASSWORD not in text
    srv.close()


def test_fetch_needs_an_existing_database(tmp_path, capsys):
    assert main(["exchange", "fetch", "--db", str(tmp_path / "missing.db")]) == 2
    assert "no hash database" in capsys.readouterr().err


def test_settings_are_checked_and_secrets_refused(tmp_path):
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(ExchangeConfigError, match="credentials never go in the database"):
            exchanges.add(store, "a", "ncmec", "b", {"password": "x"})
        with pytest.raises(ExchangeConfigError, match="unknown setting 'colour'"):
            exchanges.add(store, "a", "stop_ncii", "b", {"colour": 1})
        with pytest.raises(ExchangeConfigError, match="privacy_group"):
            exchanges.add(store, "a", "fb_threatexchange", "b", {})
        with pytest.raises(ExchangeConfigError, match="unknown exchange API"):
            exchanges.add(store, "a", "nope", "b", {})
        exchanges.add(store, "a", "tat", "b", {})
        with pytest.raises(ExchangeConfigError, match="already exists"):
            exchanges.add(store, "a", "tat", "b", {})
        report = exchanges.fetch(store, "a")  # no credentials anywhere
        assert not report.ok and "HASHMATCH_A_CREDENTIALS" in report.error and "PYTX_TAT_CREDENTIALS" in report.error


def test_credentials_file_must_be_owner_only(tmp_path):
    from hashmatch.exchanges import credentials
    path = tmp_path / "c"
    path.write_text("u:p")
    os.chmod(path, 0o640)
    with pytest.raises(CredentialsError, match=f"chmod 600 {path}"):
        credentials.read_file(path)
    os.chmod(path, 0o600)
    assert credentials.read_file(path) == "u:p"


def _write_list(path, items):
    from hashmatch.lists import record_to_json
    from hashmatch.store import Fingerprint, Record
    with open(path, "w") as f:
        for ext, fmt, value in items:
            f.write(json.dumps(record_to_json(Record("image", [Fingerprint(fmt, value)], external_id=ext))) + "\n")


def test_file_exchange_syncs_a_list(dbpath, tmp_path):
    lst = tmp_path / "list.jsonl"
    _write_list(lst, [("x1", "pdq", "a" * 64), ("x2", "md5", "b" * 32)])
    with Store(dbpath("f.db")) as store:
        exchanges.add(store, "partner", "file", "partner-bank", {"path": str(lst)})
        assert exchanges.fetch(store, "partner").added == 2
        assert exchanges.fetch(store, "partner").entries == 0  # unchanged file: nothing read
        _write_list(lst, [("x1", "pdq", "c" * 64), ("x3", "md5", "d" * 32)])
        report = exchanges.fetch(store, "partner")
        assert (report.added, report.updated, report.deleted) == (1, 1, 1)
        assert live_view(store, "partner") == {"x1": [("pdq", "c" * 64)], "x3": [("md5", "d" * 32)]}


def test_schema_3_databases_upgrade_to_4(dbpath):
    db = dbpath("u.db")
    with Store(db) as store:
        store.create_bank("kept")
        for table in ("exchange_feedback", "exchange_status", "exchange_checkpoints", "exchanges"):
            store.sql.execute(f"DROP TABLE {table}")
        store.sql.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with Store(db) as store:
        assert store.sql.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == \
            str(SCHEMA_VERSION) == "4"
        assert [b.name for b in store.banks()] == ["kept"]
        exchanges.add(store, "f", "file", "kept", {"path": __file__})
        assert [s.name for s in exchanges.list_exchanges(store)] == ["f"]


def test_export_carries_the_provenance(tmp_path, monkeypatch):
    app = NCMECApp(page_size=50)
    app.fill(30)
    srv = FakeServer(app)
    monkeypatch.setenv("HASHMATCH_N_CREDENTIALS", f"{NCMECApp.USER}:{NCMECApp.PASSWORD}")
    from hashmatch import HashDB
    from hashmatch.lists import export
    with Store(tmp_path / "e.db") as store:
        exchanges.add(store, "n", "ncmec", "nb", {"url": srv.url})
        exchanges.fetch(store, "n")
        assert live_view(store, "n") == ncmec_expected(app)
    with HashDB(tmp_path / "e.db") as db:
        export(db, tmp_path / "out.jsonl", bank="nb")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and all(r["metadata"]["exchange"]["api"] == "ncmec" for r in rows)
    assert {r["metadata"]["exchange"]["member"] for r in rows} == {1000, 1001, 1002}
    srv.close()


def test_retries_wait_for_retry_after_and_back_off():
    import requests
    from hashmatch.errors import ExchangeUnavailableError
    from hashmatch.exchanges.base import Retrier

    def failure(status, retry_after=None):
        resp = requests.Response()
        resp.status_code = status
        if retry_after is not None:
            resp.headers["Retry-After"] = retry_after
        return requests.HTTPError(response=resp)

    waits = []
    errors = [failure(429, "7"), failure(503), requests.Timeout("slow"), failure(500)]

    def flaky():
        if errors:
            raise errors.pop(0)
        return "page"

    retry = Retrier("x", {"backoff": 0.5, "attempts": 5}, sleep=waits.append)
    assert retry("page 1", flaky) == "page" and retry.retries == 4
    assert waits[0] >= 7 and 0.25 <= waits[1] <= 1.0 and 0.5 <= waits[2] <= 2.0 and 1.0 <= waits[3] <= 4.0
    with pytest.raises(ExchangeUnavailableError, match="failed 2 times; last: HTTP 502"):
        Retrier("x", {"attempts": 2}, sleep=waits.append)("page 2", lambda: (_ for _ in ()).throw(failure(502)))
    with pytest.raises(CredentialsError):
        Retrier("x", {}, sleep=waits.append)("page 3", lambda: (_ for _ in ()).throw(failure(401)))
