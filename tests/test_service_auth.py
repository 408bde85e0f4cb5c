"""hashmatch serve's tokens: 401 without a valid one, 403 for the wrong role, open health and metrics,
tokens kept only as digests, revocation, and the token CLI."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest

import hashmatch
from serving import Server, make_tokens

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"

#: (method, path, body) of one route per role group.
HASHER = ("POST", "/h/hash", None)
MATCHER = ("GET", f"/m/raw_lookup?signal_type=pdq&signal={PDQ}", None)
CURATOR = ("GET", "/c/banks", None)
V1 = ("POST", "/v1/lookup", {"hashes": [{"signal_type": "pdq", "signal": PDQ}]})


def call(client, route):
    method, path, body = route
    return client.request(method, path, json=body) if body is not None else client.request(method, path)


def test_tokens_and_roles(dbpath, tmp_path):
    db = dbpath("auth.db")
    hashmatch.HashDB(db).close()
    toks = make_tokens(db)
    with Server(db, log=tmp_path / "log") as server:
        with server.client() as anon:
            for route in (HASHER, MATCHER, CURATOR, V1):
                r = call(anon, route)
                assert r.status_code == 401 and "token" in r.json()["message"]
            for path in ("/status", "/status/live", "/metrics"):
                assert anon.get(path).status_code == 200
        for bad in ("hm_" + "x" * 43, "Bearer x", toks["admin"] + "x", "hm_", "é" * 10):
            with server.client() as c:
                r = c.get(MATCHER[1], headers={"Authorization": f"Bearer {bad}".encode("utf-8")})
                assert r.status_code == 401
        with server.client() as c:  # another scheme
            assert c.get(MATCHER[1], headers={"Authorization": f"Basic {toks['admin']}"}).status_code == 401

        allowed = {"hasher": [HASHER], "matcher": [MATCHER, V1], "curator": [CURATOR],
                   "admin": [HASHER, MATCHER, CURATOR, V1]}
        for role, token in toks.items():
            with server.client(token) as c:
                for route in (HASHER, MATCHER, CURATOR, V1):
                    r = call(c, route)
                    if route in allowed[role]:
                        assert r.status_code not in (401, 403), (role, route, r.text)
                    else:
                        assert r.status_code == 403, (role, route, r.text)
                        assert role in r.json()["message"]

        # revoked: refused once the worker's short cache lapses
        out = subprocess.run([sys.executable, "-m", "hashmatch", "token", "list", "--db", str(db), "--json"],
                             capture_output=True, text=True, check=True).stdout
        assert all(t not in out for t in toks.values())
        matcher_id = next(__import__("json").loads(line)["id"] for line in out.splitlines()
                          if '"matcher"' in line)
        subprocess.run([sys.executable, "-m", "hashmatch", "token", "revoke", str(matcher_id), "--db", str(db)],
                       check=True, capture_output=True)
        time.sleep(2.5)
        with server.client(toks["matcher"]) as c:
            assert call(c, MATCHER).status_code == 401
        with server.client() as anon:
            text = anon.get("/metrics").text
        for name in ("hashmatch_requests_total", "hashmatch_request_seconds_bucket", "hashmatch_errors_total",
                     "hashmatch_lookups_total", "hashmatch_index_size", "hashmatch_index_age_seconds"):
            assert name in text, name
        assert 'status="401"' in text and 'route="/m/raw_lookup"' in text
    log = (tmp_path / "log").read_text()
    assert all(t not in log for t in toks.values())
    lines = [__import__("json").loads(line) for line in log.splitlines() if line.startswith("{")]
    requests = [x for x in lines if x.get("event") == "request"]
    assert requests and {"method", "route", "status", "ms", "pid", "ts"} <= set(requests[0])


def test_token_cli_prints_once_and_stores_a_digest(tmp_path):
    db = tmp_path / "t.db"
    hashmatch.HashDB(db).close()
    token = subprocess.run([sys.executable, "-m", "hashmatch", "token", "create", "--role", "curator", "--db",
                            str(db), "--name", "ci"], capture_output=True, text=True, check=True).stdout.strip()
    assert token.startswith("hm_") and len(token) > 40
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT digest, role, name FROM api_tokens").fetchall()
    dump = "\n".join(conn.iterdump())
    conn.close()
    assert rows[0][1:] == ("curator", "ci") and len(rows[0][0]) == 64
    assert token not in dump
    bad = subprocess.run([sys.executable, "-m", "hashmatch", "token", "create", "--role", "root", "--db", str(db)],
                         capture_output=True, text=True)
    assert bad.returncode != 0
    missing = subprocess.run([sys.executable, "-m", "hashmatch", "token", "list", "--db", str(tmp_path / "no.db")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "no hash database" in missing.stderr


def test_schema_3_database_is_upgraded_to_4(tmp_path):
    db = tmp_path / "old.db"
    hashmatch.HashDB(db).close()
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE api_tokens")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with hashmatch.HashDB(db, create=False) as h:
        from hashmatch.store import tokens
        t = tokens.create_token(h, "admin")
        assert tokens.token_role(h, t) == "admin"
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "4"
    conn.close()


def test_missing_serve_dependency_names_the_extra(monkeypatch):
    import importlib.util

    from hashmatch.service import ServeDependencyError, require_deps

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(ServeDependencyError, match=r'pip install "hashmatch\[serve\]"'):
        require_deps()


def test_serve_refuses_a_missing_database_at_the_command_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "hashmatch", "serve", "--db", str(tmp_path / "missing.db")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "no hash database" in out.stderr
    assert not (tmp_path / "missing.db").exists()
