"""Fake exchange servers on 127.0.0.1 speaking each API's wire format as python-threatexchange's clients expect.

NCMEC: XML ``entries`` pages over a from/to window with ``next`` links, basic auth, feedback PUTs.
StopNCII: ``FetchHashes`` JSON with page tokens and function/subscription key headers, SubmitFeedback.
ThreatExchange: Graph API ``/{group}/threat_updates`` with cursor ``next`` URLs and an access token.
TCAP: a JWT from ``token-auth/tcap/`` (HS256, checked and expiring) for each hash-list page.

Faults are queued strings, each consumed by the next request: ``500``, ``429`` (Retry-After: 1),
``timeout`` (answers after the client gave up), ``truncate`` (half the body, full Content-Length),
``repeat`` (the previous response again: a page served twice), ``expire`` (StopNCII: the page token
is refused). Every fake keeps its ground truth: ``truth()`` is {exchange id: [(format, value)]}.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import threading
import time
import urllib.parse
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

Response = Tuple[int, Dict[str, str], bytes]
_DATE = "%Y-%m-%dT%H:%M:%SZ"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        srv: FakeServer = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = srv.next_fault()
        srv.requests += 1
        if srv.page_delay:
            time.sleep(srv.page_delay)
        if fault == "500":
            return self._send(500, {}, b"internal error")
        if fault == "429":
            return self._send(429, {"Retry-After": "1"}, b"slow down")
        if fault == "repeat" and srv.last is not None:
            return self._send(*srv.last)
        parsed = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        with srv.lock:
            resp = srv.app.handle(self.command, parsed.path, query, dict(self.headers), body)
        if resp[0] == 200:
            srv.last = resp
        if fault == "timeout":
            time.sleep(srv.timeout_sleep)
        if fault == "truncate":
            status, headers, data = resp
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(*resp)

    def _send(self, status: int, headers: Dict[str, str], data: bytes) -> None:
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = do_PUT = _serve


class FakeServer:
    """One fake API (an app with handle()) on a free loopback port, in a thread."""

    def __init__(self, app: Any, timeout_sleep: float = 1.5, page_delay: float = 0.0) -> None:
        self.app = app
        self.page_delay = page_delay  # seconds before each answer: a fetch that takes a known while
        self.faults: List[str] = []
        self.requests = 0
        self.last: Optional[Response] = None
        self.lock = threading.Lock()
        self.timeout_sleep = timeout_sleep
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.fake = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def next_fault(self) -> Optional[str]:
        """The next queued fault, if any."""
        with self.lock:
            return self.faults.pop(0) if self.faults else None

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


def _json(obj: Any, status: int = 200) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(obj).encode()


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


# ----- NCMEC ---------------------------------------------------------------------------------------
class NCMECApp:
    """NCMEC hash sharing v2: entries by member and id, each with a change time."""

    USER, PASSWORD = "esp-user", "esp-password"

    def __init__(self, page_size: int = 1000) -> None:
        self.page_size = page_size
        self.entries: Dict[Tuple[int, str], Dict[str, Any]] = {}
        self.feedback: List[Dict[str, Any]] = []
        self._sorted: Optional[List[Tuple[int, str]]] = None
        self.auth = "Basic " + base64.b64encode(f"{self.USER}:{self.PASSWORD}".encode()).decode()
        self.served = 0
        self.starts: List[int] = []  # the first entry of every page asked for

    def put(self, member: int, eid: str, media: str, fingerprints: Dict[str, str], *,
            classification: str = "A1", ts: Optional[int] = None, deleted: bool = False) -> None:
        """Add or change an entry (its change time now unless given)."""
        self.entries[(member, eid)] = {"media": media, "fps": dict(fingerprints), "cls": classification,
                                       "ts": int(time.time()) if ts is None else ts, "deleted": deleted}
        self._sorted = None

    def delete(self, member: int, eid: str) -> None:
        """Delete an entry (a deletedImage/deletedVideo from now on)."""
        e = self.entries[(member, eid)]
        e["deleted"], e["ts"] = True, int(time.time())
        self._sorted = None

    def truth(self) -> Dict[str, Dict[str, str]]:
        """{member-id: {their type: value}} of the live entries."""
        return {f"{m}-{i}": e["fps"] for (m, i), e in self.entries.items() if not e["deleted"]}

    def fill(self, n: int, seed: int = 0, ts: int = 1_600_000_000) -> None:
        """n entries with mixed fingerprint types (images: PDQ, MD5, SHA1, PDNA, NETCLEAN; videos: MD5, VIDENTIFIER)."""
        rng = random.Random(seed)
        for i in range(n):
            if i % 5 == 4:
                fps = {"md5": _hex(rng, 32), "videntifier": base64.b64encode(rng.randbytes(48)).decode()}
                media = "video"
            else:
                fps = {"pdq": _hex(rng, 64), "md5": _hex(rng, 32)}
                if i % 3 == 0:
                    fps["sha1"] = _hex(rng, 40)
                if i % 4 == 1:
                    fps["pdna"] = base64.b64encode(rng.randbytes(144)).decode()
                if i % 7 == 2:
                    fps["netclean"] = _hex(rng, 48)
                media = "image"
            self.entries[(1000 + i % 3, str(i + 1))] = {"media": media, "fps": fps, "cls": "A1" if i % 2 else "B1",
                                                         "ts": ts + i // 1000, "deleted": False}
        self._sorted = None

    def handle(self, method: str, path: str, q: Dict[str, str], headers: Dict[str, str], body: bytes) -> Response:
        if headers.get("Authorization") != self.auth:
            return 401, {}, b"<error>unauthorized</error>"
        parts = path.strip("/").split("/")
        if method == "GET" and parts[-1] == "entries":
            return self.entries_page(q)
        if method == "GET" and parts[-1] == "reasons":
            return 200, {}, (b'<feedbackReasons><availableFeedbackReasons><reason guid="g-1" name="not csam"/>'
                             b"</availableFeedbackReasons></feedbackReasons>")
        if method == "PUT" and parts[-1] == "feedback":
            esp, eid, kind = parts[-4], parts[-3], parts[-2]
            vote = "affirmative" if b"affirmative" in body else "negative"
            self.feedback.append({"member": int(esp), "id": eid, "type": kind, "vote": vote, "body": body.decode()})
            return 200, {}, b"<ok/>"
        return 404, {}, b"<error>not found</error>"

    def _window(self, start: int, end: int) -> List[Tuple[int, str]]:
        if self._sorted is None:
            self._sorted, self._windows = sorted(self.entries, key=lambda k: (int(k[1]), k[0])), {}
        if (start, end) not in self._windows:  # a window's pages are served from one listing, as NCMEC's are
            self._windows[(start, end)] = [k for k in self._sorted if start <= self.entries[k]["ts"] <= end]
        return self._windows[(start, end)]

    def entries_page(self, q: Dict[str, str]) -> Response:
        start = int(datetime.strptime(q["from"], _DATE).timestamp())
        end = int(datetime.strptime(q["to"], _DATE).timestamp())
        keys = self._window(start, end)
        first, size = int(q.get("start", 0)), int(q.get("size", self.page_size))
        self.starts.append(first)
        page = keys[first:first + size]
        self.served += len(page)
        images, videos = [], []
        for member, eid in page:
            e = self.entries[(member, eid)]
            tag = ("deleted" + e["media"].capitalize()) if e["deleted"] else e["media"]
            inner = f"<id>{eid}</id><member id=\"{member}\">Member {member}</member>"
            if not e["deleted"]:
                inner += f"<classification>{e['cls']}</classification><fingerprints>"
                inner += "".join(f"<{k}>{v}</{k}>" for k, v in e["fps"].items()) + "</fingerprints>"
            (videos if e["media"] == "video" else images).append(f"<{tag}>{inner}</{tag}>")
        stamp = datetime.fromtimestamp(end).strftime(_DATE)
        xml = ['<?xml version="1.0" encoding="UTF-8"?><queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">']
        if images:
            xml.append(f'<images count="{len(images)}" maxTimestamp="{stamp}">' + "".join(images) + "</images>")
        if videos:
            xml.append(f'<videos count="{len(videos)}" maxTimestamp="{stamp}">' + "".join(videos) + "</videos>")
        if first + size < len(keys):
            nxt = (f"/v2/entries?from={q['from']}&amp;to={q['to']}&amp;start={first + size}&amp;size={size}"
                   f"&amp;max={len(keys) - 1}")
            xml.append(f"<paging><next>{nxt}</next></paging>")
        xml.append("</queryResult>")
        return 200, {"Content-Type": "application/xml"}, "".join(xml).encode()


# ----- StopNCII ------------------------------------------------------------------------------------
class StopNCIIApp:
    """StopNCII FetchHashes / SubmitFeedback over records keyed by (signalType, hashValue)."""

    FETCH_KEY, SUB_KEY, FEEDBACK_KEY = "fetch-key", "sub-key", "feedback-key"

    def __init__(self) -> None:
        self.records: Dict[Tuple[str, str], Dict[str, Any]] = {}
        self.feedback: List[Dict[str, Any]] = []

    def put(self, kind: str, value: str, *, status: str = "Active", ts: Optional[int] = None,
            feedbacks: Optional[List[Dict[str, Any]]] = None) -> None:
        """Add or change a record."""
        self.records[(kind, value)] = {"status": status, "ts": int(time.time()) if ts is None else ts,
                                       "cases": {"case-1": status}, "feedbacks": feedbacks or []}

    def withdraw(self, kind: str, value: str) -> None:
        """The person withdrew their case: the aggregate hashStatus becomes Withdrawn."""
        self.put(kind, value, status="Withdrawn")

    def truth(self) -> Dict[str, Dict[str, str]]:
        """{signalType:hashValue: {signalType: hashValue}} of the live records."""
        return {f"{k}:{v}": {k: v} for (k, v), r in self.records.items() if r["status"] not in ("Withdrawn", "Deleted")}

    def handle(self, method: str, path: str, q: Dict[str, str], headers: Dict[str, str], body: bytes) -> Response:
        endpoint = path.rstrip("/").split("/")[-1]
        want = self.FETCH_KEY if endpoint == "FetchHashes" else self.FEEDBACK_KEY
        if headers.get("x-functions-key") != want or headers.get("Ocp-Apim-Subscription-Key") != self.SUB_KEY:
            return _json({"error": "unauthorized"}, 401)
        if endpoint == "FetchHashes":
            return self.fetch(q)
        if endpoint == "SubmitFeedback" and method == "POST":
            self.feedback.extend(json.loads(body)["hashFeedbacks"])
            return _json({})
        return _json({"error": "not found"}, 404)

    def fetch(self, q: Dict[str, str]) -> Response:
        start, size = int(q["startTimestamp"]), int(q.get("pageSize", 800))
        offset = 0
        if q.get("nextPageToken"):
            tok = json.loads(base64.b64decode(q["nextPageToken"]))
            if tok["start"] != start or tok.get("expired"):
                return _json({"error": "invalid page token"}, 400)
            offset = tok["offset"]
        keys = sorted((k for k, r in self.records.items() if r["ts"] >= start),
                      key=lambda k: (self.records[k]["ts"], k))
        page = keys[offset:offset + size]
        more = offset + size < len(keys)
        last_ts = max([self.records[k]["ts"] for k in keys], default=start)
        return _json({
            "count": len(page),
            "nextPageToken": base64.b64encode(json.dumps({"start": start, "offset": offset + size}).encode()).decode()
            if more else None,
            "nextSetTimestamp": last_ts,
            "hasMoreRecords": more,
            "hashRecords": [{"lastModtimestamp": self.records[k]["ts"], "signalType": k[0], "hashValue": k[1],
                             "hashStatus": self.records[k]["status"], "caseNumbers": self.records[k]["cases"],
                             "CSPFeedbacks": self.records[k]["feedbacks"]} for k in page],
        })


# ----- ThreatExchange ------------------------------------------------------------------------------
class ThreatExchangeApp:
    """Graph API threat_updates for one privacy group, cursor-paged."""

    TOKEN = "1234567890|" + "a" * 27
    GROUP = 303

    def __init__(self, page_size_cap: int = 1000) -> None:
        self.items: Dict[str, Dict[str, Any]] = {}
        self.base = ""  # set by the test: the server URL + /v26.0
        self.cap = page_size_cap

    def put(self, iid: str, kind: str, indicator: str, *, tags: Tuple[str, ...] = (), ts: Optional[int] = None,
            delete: bool = False) -> None:
        """Add, change or delete (should_delete) an indicator."""
        now = int(time.time()) if ts is None else ts
        self.items[iid] = {"id": iid, "indicator": indicator, "type": kind, "creation_time": now, "last_updated": now,
                           "should_delete": delete, "tags": list(tags), "status": "MALICIOUS",
                           "applications_with_opinions": [{"id": "555", "opinion": "MALICIOUS"}]}

    def truth(self) -> Dict[str, Dict[str, str]]:
        """{id: {type: indicator}} of the live indicators."""
        return {i: {u["type"]: u["indicator"]} for i, u in self.items.items() if not u["should_delete"]}

    def handle(self, method: str, path: str, q: Dict[str, str], headers: Dict[str, str], body: bytes) -> Response:
        if q.get("access_token") != self.TOKEN:
            return _json({"error": {"message": "Invalid OAuth access token", "code": 190}}, 400)
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[-1] != "threat_updates" or parts[-2] != str(self.GROUP):
            return _json({"error": {"message": "unknown path"}}, 404)
        start, stop = int(q.get("start_time") or 0), int(q.get("stop_time") or 2 ** 40)
        limit = min(int(q.get("limit") or 100), self.cap)
        offset = int(base64.b64decode(q["after"]).decode()) if q.get("after") else 0
        keys = sorted((i for i, u in self.items.items() if start <= u["last_updated"] <= stop),
                      key=lambda i: (self.items[i]["last_updated"], i))
        page = keys[offset:offset + limit]
        out: Dict[str, Any] = {"data": [self.items[i] for i in page]}
        after = base64.b64encode(str(offset + limit).encode()).decode()
        out["paging"] = {"cursors": {"before": "", "after": after}}
        if offset + limit < len(keys):
            nq = {"access_token": self.TOKEN, "start_time": start, "stop_time": stop, "limit": limit,
                  "fields": q.get("fields", ""), "after": after}
            out["paging"]["next"] = f"{self.base}/{self.GROUP}/threat_updates/?{urllib.parse.urlencode(nq)}"
        return _json(out)


# ----- TCAP ----------------------------------------------------------------------------------------
class TATApp:
    """TCAP's hash list v2 behind JWT auth: records after a "timestamp,id" checkpoint, oldest first."""

    USER, PASSWORD = "tcap-user", "tcap-password"

    def __init__(self, page_size: int = 500, token_ttl: float = 30.0) -> None:
        self.secret = os.urandom(16)
        self.items: Dict[int, Dict[str, Any]] = {}
        self.page_size = page_size
        self.ttl = token_ttl
        self.tokens_issued = 0

    def put(self, iid: int, algorithm: str, digest: str, *, deleted: bool = False, ts: Optional[float] = None,
            file_type: str = "jpg") -> None:
        """Add, change or delete a hash."""
        self.items[iid] = {"hash_digest": digest, "algorithm": algorithm, "ideology": "far-right",
                           "file_type": file_type, "deleted": deleted,
                           "updated_on": float(int(time.time()) if ts is None else ts),
                           "created_on": "2024-01-01T00:00:00Z", "id": iid}

    def truth(self) -> Dict[str, Dict[str, str]]:
        """{id: {algorithm: digest}} of the live hashes."""
        return {str(i): {e["algorithm"]: e["hash_digest"]} for i, e in self.items.items() if not e["deleted"]}

    def _jwt(self, user: str) -> str:
        enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
        head = enc({"alg": "HS256", "typ": "JWT"}) + "." + enc({"sub": user, "exp": time.time() + self.ttl})
        sig = base64.urlsafe_b64encode(hmac.new(self.secret, head.encode(), hashlib.sha256).digest()).rstrip(b"=")
        return head + "." + sig.decode()

    def _valid(self, token: str) -> bool:
        try:
            head, claims, sig = token.split(".")
            good = base64.urlsafe_b64encode(hmac.new(self.secret, f"{head}.{claims}".encode(),
                                                     hashlib.sha256).digest()).rstrip(b"=").decode()
            payload = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
            return hmac.compare_digest(good, sig) and payload["exp"] > time.time() and payload["sub"] == self.USER
        except (ValueError, KeyError):
            return False

    def handle(self, method: str, path: str, q: Dict[str, str], headers: Dict[str, str], body: bytes) -> Response:
        if method == "POST" and path.rstrip("/").endswith("token-auth/tcap"):
            form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode()).items()}
            if form.get("username") != self.USER or form.get("password") != self.PASSWORD:
                return _json({"error": "bad credentials"}, 401)
            self.tokens_issued += 1
            return _json({"token": self._jwt(self.USER), "user": {"username": self.USER}})
        if method == "GET" and path.rstrip("/").endswith("api/hash-list/v2/all"):
            auth = headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or not self._valid(auth[7:]):
                return _json({"error": "invalid token"}, 401)
            after: Tuple[float, int] = (-1.0, -1)
            if q.get("after"):
                ts, _, iid = q["after"].partition(",")
                after = (float(ts), int(iid))
            keys = sorted((i for i, e in self.items.items() if (e["updated_on"], i) > after),
                          key=lambda i: (self.items[i]["updated_on"], i))
            page = keys[:self.page_size]
            last = self.items[page[-1]] if page else None
            return _json({"count": len(keys), "next": "offset=1" if len(keys) > len(page) else None, "previous": None,
                          "checkpoint": f"{last['updated_on']},{last['id']}" if last else q.get("after", ""),
                          "results": [self.items[i] for i in page]})
        return _json({"error": "not found"}, 404)


# ----- comparing a bank with a fake's truth ---------------------------------------------------------
NCMEC_FORMATS = {("image", "pdq"): "pdq", ("image", "md5"): "md5", ("video", "md5"): "video_md5",
                 ("image", "sha1"): "sha1", ("video", "sha1"): "video_sha1", ("image", "pdna"): "photodna",
                 ("image", "netclean"): "netclean", ("video", "netclean"): "netclean",
                 ("video", "videntifier"): "videntifier", ("image", "videntifier"): "videntifier"}


def live_view(store: Any, source: str) -> Dict[str, List[Tuple[str, str]]]:
    """{external id: sorted [(format, value)]} of an exchange's live entries (binary values as their text);
    asserts that no external id is live twice."""
    out: Dict[str, List[Tuple[str, str]]] = {}
    for r in store.iter_records(include_deleted=False):
        if r.source != source:
            continue
        assert r.external_id not in out, f"entry {r.external_id} is in the bank twice"
        out[r.external_id] = sorted((f.format, f.value if f.data is None else f.data.decode()) for f in r.fingerprints)
    return out


def ncmec_expected(app: NCMECApp) -> Dict[str, List[Tuple[str, str]]]:
    """NCMEC truth in our formats."""
    media = {f"{m}-{i}": e["media"] for (m, i), e in app.entries.items()}
    return {k: sorted((NCMEC_FORMATS[(media[k], t)], v) for t, v in fps.items()) for k, fps in app.truth().items()}
