"""``hashmatch demo --serve``: the bundled synthetic images in a database, served, and called over HTTP."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, TextIO, Tuple

from PIL import Image

from ..pipeline import HashDB
from ..pipeline.records import fingerprint
from ..service import require_deps
from ..signals import get
from ..signals.pdq import pdq_many
from ..store import Record, tokens
from .demo import TRANSFORMS, synthetic_images


def _call(port: int, method: str, path: str, token: str, body: bytes = b"",
          ctype: str = "") -> Tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    if ctype:
        headers["Content-Type"] = ctype
    conn.request(method, path, body=body or None, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    try:
        return resp.status, json.loads(data)
    except ValueError:
        return resp.status, data.decode("utf-8", "replace")


def _upload(field: str, name: str, data: bytes) -> Tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def run_serve_demo(out: TextIO) -> int:
    """Serve a demo database on a free loopback port, match copies over HTTP as an HMA client would, stop."""
    require_deps()
    paths = synthetic_images()
    known = paths[:-1]
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "demo.db"
        with HashDB(db_path) as db:
            db.create_bank("SYNTHETIC")
            db.add_records([Record("image", [fingerprint(get("pdq"), h)], bank="SYNTHETIC", external_id=p.name)
                            for p, h in zip(known, pdq_many(known))])
            token = tokens.create_token(db, "admin", "demo")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "hashmatch", "serve", "--db", str(db_path), "--port",
                                   str(port), "--no-access-log", "--log-level", "warning"])
        try:
            start = time.monotonic()
            while True:
                try:
                    if _call(port, "GET", "/status", "")[0] == 200:
                        break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() - start > 60:
                    print("hashmatch demo --serve: the server did not start", file=out)
                    return 1
                time.sleep(0.05)
            print(f"hashmatch serve on http://127.0.0.1:{port} with {len(known)} synthetic images in bank "
                  f"SYNTHETIC (ready in {time.monotonic() - start:.1f} s)\n", file=out)
            ok = True
            for path in known[:3]:
                with Image.open(path) as im:
                    im.load()
                    for name, transform in TRANSFORMS[:3]:
                        body, ctype = _upload("photo", path.name, transform(im))
                        status, answer = _call(port, "POST", "/m/lookup", token, body, ctype)
                        hits = answer.get("pdq", {}).get("SYNTHETIC", []) if isinstance(answer, dict) else []
                        ok &= status == 200 and bool(hits)
                        print(f"POST /m/lookup {path.name:<26} {name:<11} -> {status} {json.dumps(answer)}",
                              file=out)
            status, banks = _call(port, "GET", "/c/banks", token)
            print(f"GET /c/banks -> {status} {json.dumps(banks)}", file=out)
            status, _ = _call(port, "GET", "/c/banks", "hm_not-a-token")
            print(f"GET /c/banks with a bad token -> {status}", file=out)
            ok &= status == 401
        finally:
            server.terminate()
            server.wait(30)
    return 0 if ok else 1


