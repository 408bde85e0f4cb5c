"""Starting the real `hashmatch serve` for tests: a subprocess on 127.0.0.1 at a free port, with tokens."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import httpx

import hashmatch
from hashmatch.store import tokens


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(parent: int) -> List[int]:
    """The pids whose parent is `parent`, read from /proc (not pgrep: under the sanitizer suite's
    LD_PRELOAD, pgrep itself can deadlock in the ASan runtime)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == parent:  # the field after the state; comm may hold spaces
            found.append(int(name))
    return found


def make_tokens(db: str) -> Dict[str, str]:
    """One token per role in the database: {role: token}."""
    with hashmatch.HashDB(db, create=False) as h:
        return {role: tokens.create_token(h, role, f"test {role}") for role in tokens.ROLES}


class Server:
    """A running `python -m hashmatch serve` (stopped with SIGTERM by stop())."""

    def __init__(self, db, *args: str, workers: int = 1, wait: bool = True, log: Optional[Path] = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = str(db)
        cmd = [sys.executable, "-m", "hashmatch", "serve", "--db", self.db, "--port", str(self.port),
               "--workers", str(workers), *args]
        self.log_path = log
        out = open(log, "wb") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=out if log else subprocess.DEVNULL,
                                     env=dict(os.environ))
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds until /status answered 200."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}" +
                                   (f": {self.log_path.read_text()[-3000:]}" if self.log_path else ""))
            try:
                if httpx.get(self.url + "/status", timeout=1).status_code == 200:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def client(self, token: Optional[str] = None, **kw) -> httpx.Client:
        """An HTTP client for the server, sending the token."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=kw.pop("timeout", 30), **kw)

    def worker_pids(self) -> List[int]:
        """The worker processes' pids (children of the server process)."""
        pids = []
        for pid in children(self.proc.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:  # not multiprocessing's resource tracker
                pids.append(pid)
        return pids

    def stop(self) -> int:
        """SIGTERM, then wait (SIGKILL after 20 s); the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class MediaServer:
    """A tiny HTTP server on 127.0.0.1 for fetch tests: /file serves bytes, /redirect?to=URL redirects."""

    def __init__(self, files: Dict[str, bytes]) -> None:
        files = dict(files)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                from urllib.parse import parse_qs, urlsplit

                parts = urlsplit(self.path)
                if parts.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", parse_qs(parts.query)["to"][0])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = files.get(parts.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()
