"""HMA's (open-media-match's) routes with its paths, parameters and JSON shapes, on the store.

An HMA client switches by changing its base URL (and sending a token). Content ids are entry
ids; HMA's ``matching_enabled_ratio`` is a bank's enabled_ratio (0 when the bank is disabled);
``disable_until_ts`` is 1 for enabled content, 0 for disabled until enabled again, else a Unix
time. Matching goes through the store, which honours enabled ratios and disabled content.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, Dict, List, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .. import signals
from ..pipeline import HashDB
from ..pipeline.records import fingerprint
from ..store import Match, Record
from ..store.backends import open_backend
from ..store.database import FOREVER
from . import fetch as fetching
from .http import ApiError, bool_param, endpoint, json_body, json_object, list_param, require_param, uploads
from .media import CONTENT_TYPES, parse_value, record_of_bytes, signal_named, signals_of
from .worker import Worker

#: HMA's bank names: UPPER_WITH_UNDER, not starting with a digit.
HMA_BANK_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
FIVE_YEARS = 5 * 365 * 86400
#: A deleted bank whose tombstones the store keeps is parked under this name (Store.delete_bank): not listed.
PARKED = re.compile(r" \(deleted \d+ #\d+\)$")


# ----- shapes ---------------------------------------------------------------------------------
def bank_json(bank: Any) -> Dict[str, Any]:
    """HMA's BankConfig: name and matching_enabled_ratio."""
    return {"name": bank.name, "matching_enabled_ratio": float(bank.enabled_ratio) if bank.enabled else 0.0}


def disable_until_ts(record: Record) -> int:
    """HMA's disable_until_ts of an entry: 1 enabled, 0 disabled until enabled again, else a Unix time."""
    until = record.disabled_until
    if until is None:
        return 1
    if until >= FOREVER:
        return 0
    return int(until)


def content_json(db: HashDB, record: Record, with_signals: bool = False) -> Dict[str, Any]:
    """HMA's BankContentConfig of an entry."""
    out: Dict[str, Any] = {"id": record.id, "disable_until_ts": disable_until_ts(record), "collab_metadata": {},
                           "original_media_uri": record.media_uri, "bank": bank_json(db.bank(record.bank))}
    user = {k: v for k, v in (("content_id", record.external_id), ("content_uri", record.content_uri),
                              ("json", record.metadata or None)) if v is not None}
    if user:
        out["metadata"] = user
    if record.notes is not None:
        out["note"] = record.notes
    if with_signals:
        out["signals"] = signals_of(record)
    return out


def distance_text(m: Match) -> str:
    """HMA's distance: a string (its pretty_str), '-' for exact matches."""
    if m.distance is not None:
        return str(m.distance)
    if m.score is not None:
        return f"{m.score:.4f}"
    if m.level2 is not None:
        return f"{m.level2:.4f}"
    return "-"


def bank_exists(db: HashDB, name: str) -> bool:
    """Whether a bank of that name exists (one keyed query; listing banks counts every entry)."""
    try:
        db.bank(name)
    except KeyError:
        return False
    return True


def lookup_by_bank(db: HashDB, signal: signals.SignalType, value: Any,
                   banks: Optional[List[str]]) -> Dict[str, List[Dict[str, Any]]]:
    """One signal looked up, its matches grouped by bank: {bank: [{bank_content_id, distance}]}."""
    if banks is not None:
        banks = [b for b in banks if bank_exists(db, b)]  # HMA filters by the names it is given
        if not banks:
            return {}
    found = db.match_hash(signal.name, value, banks=banks)
    out: Dict[str, List[Dict[str, Any]]] = {}
    for m in found:
        out.setdefault(m.bank or "", []).append({"bank_content_id": m.entry_id, "distance": distance_text(m)})
    return out


def _signal_types(request: Request, available: Dict[str, str]) -> Dict[str, str]:
    wanted = list_param(request.query_params.get("types"))
    if wanted is None:
        return available
    out = {}
    for name in wanted:
        if name not in available:
            raise ApiError(400, f"signal type '{name[:100]}' doesn't exist or is disabled")
        out[name] = available[name]
    return out


def _check_content_type(request: Request) -> None:
    hint = request.query_params.get("content_type")
    if hint and hint not in CONTENT_TYPES:
        raise ApiError(400, f"no such content_type: '{hint[:100]}'")


async def _hash_url(request: Request, worker: Worker, url: str) -> Record:
    _check_content_type(request)
    got = await asyncio.get_running_loop().run_in_executor(None, fetching.fetch, url, worker.fetch_policy)
    record = await record_of_bytes(got.body)
    record.media_uri = got.url
    return record


async def _hash_upload(request: Request) -> Record:
    files = await uploads(request, max_files=2)
    if len(files) > 1:
        raise ApiError(400, "Only one file allowed per request")
    field, _, data = files[0]
    if field not in CONTENT_TYPES:
        raise ApiError(400, f"no such content_type: '{field[:100]}' (name the file field photo or video)")
    return await record_of_bytes(data)


# ----- /h ------------------------------------------------------------------------------------
@endpoint("hasher")
async def hash_get(request: Request, worker: Worker) -> Response:
    """GET /h/hash?url=: fetch the media (allow-listed hosts only) and return {signal_type: hash}."""
    url = request.query_params.get("url")
    if not url:
        raise ApiError(400, "url is required")
    record = await _hash_url(request, worker, url)
    return JSONResponse(_signal_types(request, signals_of(record)))


@endpoint("hasher")
async def hash_post(request: Request, worker: Worker) -> Response:
    """POST /h/hash: one uploaded file (field photo or video) -> {signal_type: hash}."""
    record = await _hash_upload(request)
    return JSONResponse(_signal_types(request, signals_of(record)))


# ----- /m ------------------------------------------------------------------------------------
@endpoint("matcher")
async def raw_lookup(request: Request, worker: Worker) -> Response:
    """GET /m/raw_lookup: {"matches": [content ids]} or, with include_distance, [{bank_content_id, distance}]."""
    value = require_param(request, "signal")
    signal = signal_named(require_param(request, "signal_type"))
    include = bool_param(request, "include_distance")
    banks = list_param(request.query_params.get("banks"))
    by_bank = lookup_by_bank(worker.db(), signal, parse_value(signal, value), banks)
    matches = [m for group in by_bank.values() for m in group]
    if not include:
        return JSONResponse({"matches": [m["bank_content_id"] for m in matches]})
    return JSONResponse({"matches": matches})


@endpoint("matcher")
async def lookup_get(request: Request, worker: Worker) -> Response:
    """GET /m/lookup: by signal and signal_type ({bank: [...]}) or by url ({signal_type: {bank: [...]}})."""
    banks = list_param(request.query_params.get("banks"))
    url = request.query_params.get("url")
    if url:
        record = await _hash_url(request, worker, url)
        hashes = _signal_types(request, signals_of(record))
        resp = _lookup_all(worker.db(), hashes, banks)
        selected = request.query_params.get("signal_type")
        return JSONResponse(resp.get(selected, {}) if selected else resp)
    value, name = request.query_params.get("signal"), request.query_params.get("signal_type")
    if not value or not name:
        raise ApiError(400, "Either url or both signal and signal_type are required")
    signal = signal_named(name)
    return JSONResponse(lookup_by_bank(worker.db(), signal, parse_value(signal, value), banks))


@endpoint("matcher")
async def lookup_post(request: Request, worker: Worker) -> Response:
    """POST /m/lookup: an uploaded file, hashed, each hash looked up: {signal_type: {bank: [...]}}."""
    banks = list_param(request.query_params.get("banks"))
    record = await _hash_upload(request)
    return JSONResponse(_lookup_all(worker.db(), _signal_types(request, signals_of(record)), banks))


def _lookup_all(db: HashDB, hashes: Dict[str, str], banks: Optional[List[str]]) -> Dict[str, Any]:
    out = {}
    for name, text in hashes.items():
        signal = signals.get(name)
        if signal.index is None or not signal.matchable:
            continue
        out[name] = lookup_by_bank(db, signal, parse_value(signal, text), banks)
    return out


@endpoint("matcher")
async def compare(request: Request, worker: Worker) -> Response:
    """POST /m/compare: {signal_type: [a, b]} -> {signal_type: [is_match, {"distance": d}]}."""
    body = json_object(await json_body(request), "Request input")
    out = {}
    for name, pair in body.items():
        if not isinstance(pair, list):
            raise ApiError(400, f"Comparison hashes for {str(name)[:100]} was not a list")
        if len(pair) != 2:
            raise ApiError(400, "Comparison hash list length must be exactly 2")
        signal = signal_named(name)
        if not signal.matchable:
            raise ApiError(400, f"{name} does not support hash comparison")
        a, b = parse_value(signal, pair[0]), parse_value(signal, pair[1])
        d = signal.distance(a, b)
        info = {} if signal.index is not None and signal.index.kind == "exact" else {"distance": d}
        out[name] = [bool(signal.is_match(a, b, None)), info]
    return JSONResponse(out)


def _indexed_signals() -> List[signals.SignalType]:
    return [s for s in signals.all_signals() if s.index is not None and s.matchable]


def _wanted_signals(request: Request) -> List[str]:
    names = [s.name for s in _indexed_signals()]
    wanted = request.query_params.get("signal_type")
    if wanted is not None:
        if wanted not in names:
            raise ApiError(400, f"No such signal type '{wanted[:100]}'")
        names = [wanted]
    return names


_COUNTS: Dict[str, Any] = {"at": 0.0, "counts": {}}
COUNTS_SECONDS = 30.0


def _count_rows(where: str) -> Dict[str, int]:
    # Its own read-only connection, in a thread: counting ten million rows takes seconds, and the
    # worker's connection belongs to the event loop, which must keep answering lookups meanwhile.
    backend = open_backend(where, create=False, read_only=True)
    try:
        return dict(backend.execute("SELECT f.format, COUNT(*) FROM fingerprints f JOIN entries e"
                                    " ON e.id = f.entry_id WHERE e.deleted = 0 GROUP BY f.format").fetchall())
    finally:
        backend.close()


async def _counts(db: HashDB) -> Dict[str, int]:
    """Live fingerprints per format, counted at most every COUNTS_SECONDS."""
    if time.monotonic() - _COUNTS["at"] > COUNTS_SECONDS:
        where = str(db.path)
        _COUNTS["counts"] = await asyncio.get_running_loop().run_in_executor(None, _count_rows, where)
        _COUNTS["at"] = time.monotonic()
    return _COUNTS["counts"]


def _newest(db: HashDB) -> int:
    row = db.sql.execute("SELECT MAX(at) FROM changes").fetchone()
    return int(row[0] or 0)


@endpoint("matcher")
async def index_status(request: Request, worker: Worker) -> Response:
    """GET /m/index/status: {signal_type: {present, built_to, size}}."""
    db = worker.db()
    names = _wanted_signals(request)
    counts, built = await _counts(db), _newest(db)
    return JSONResponse({n: {"present": True, "built_to": built, "size": int(counts.get(n, 0))} for n in names})


# ----- /c: banks ------------------------------------------------------------------------------
def _hma_name(name: Any) -> str:
    if not isinstance(name, str) or not HMA_BANK_NAME.match(name):
        raise ApiError(400, "Bank names must be UPPER_WITH_UNDERSCORE and not start with a digit")
    return name


def _ratio(body: Dict[str, Any]) -> Optional[float]:
    ratio = body.get("enabled_ratio")
    if ratio is None:
        return None
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= float(ratio) <= 1.0:
        raise ApiError(400, f"enabled_ratio must be a number in [0, 1], got {str(ratio)[:50]!r}")
    return float(ratio)


@endpoint("curator")
async def banks_index(request: Request, worker: Worker) -> Response:
    """GET /c/banks: every bank as [{name, matching_enabled_ratio}]."""
    return JSONResponse([bank_json(b) for b in worker.db().banks() if not PARKED.search(b.name)])


@endpoint("curator")
async def bank_create(request: Request, worker: Worker) -> Response:
    """POST /c/banks {name, enabled_ratio?, enabled?}: 201 with the bank; 403 if it exists."""
    body = json_object(await json_body(request))
    name = _hma_name(body.get("name"))
    ratio = _ratio(body)
    if ratio is None:
        enabled = body.get("enabled")
        ratio = 1.0 if enabled is None or bool(enabled) else 0.0
    db = worker.db()
    if bank_exists(db, name):
        raise ApiError(403, "Bank already exists")
    bank = db.create_bank(name, enabled_ratio=ratio)
    return JSONResponse(bank_json(bank), status_code=201)


def _bank(db: HashDB, name: str) -> Any:
    try:
        return db.bank(name)
    except KeyError:
        raise ApiError(404, f"bank '{name[:100]}' not found") from None


@endpoint("curator")
async def bank_get(request: Request, worker: Worker) -> Response:
    """GET /c/bank/<name>: the bank, 404 if there is none."""
    return JSONResponse(bank_json(_bank(worker.db(), request.path_params["bank_name"])))


@endpoint("curator")
async def bank_update(request: Request, worker: Worker) -> Response:
    """PUT /c/bank/<name> {name?, enabled?, enabled_ratio?}: rename and switch a bank."""
    db = worker.db()
    name = request.path_params["bank_name"]
    _bank(db, name)
    body = json_object(await json_body(request))
    fields: Dict[str, Any] = {}
    if body.get("name") is not None and body["name"] != name:
        fields["name"] = _hma_name(body["name"])
        if bank_exists(db, fields["name"]):
            raise ApiError(403, "Bank name already exists")
    if body.get("enabled") is not None:
        fields["enabled"] = bool(body["enabled"])
        fields["enabled_ratio"] = 1.0 if body["enabled"] else 0.0
    ratio = _ratio(body)
    if ratio is not None:
        fields["enabled_ratio"] = ratio
        fields["enabled"] = ratio > 0.0
    bank = db.update_bank(name, **fields) if fields else db.bank(name)
    return JSONResponse(bank_json(bank))


@endpoint("curator")
async def bank_delete(request: Request, worker: Worker) -> Response:
    """DELETE /c/bank/<name>: the bank and its content (deleting a missing bank succeeds, as in HMA)."""
    db = worker.db()
    name = request.path_params["bank_name"]
    if bank_exists(db, name):
        db.delete_bank(name, with_entries=True)
    return JSONResponse({"message": "Done"})


# ----- /c: content ----------------------------------------------------------------------------
def _content(db: HashDB, bank: str, content_id: str) -> Record:
    if not content_id.isdigit() or len(content_id) > 18:
        raise ApiError(404, f"content '{content_id[:30]}' not found")
    try:
        record = db.get(int(content_id))
    except KeyError:
        raise ApiError(404, f"content '{content_id}' not found") from None
    if record.deleted or record.bank != bank:
        raise ApiError(404, f"content '{content_id}' not found")
    return record


async def _metadata(request: Request) -> Dict[str, Any]:
    if "json" not in request.headers.get("content-type", "").lower():
        return {}
    body = await json_body(request, required=False)
    if not isinstance(body, dict) or body.get("metadata") is None:
        return {}
    meta = body["metadata"]
    if not isinstance(meta, dict):
        raise ApiError(400, "metadata should be a json object")
    unknown = set(meta) - {"content_id", "content_uri", "json"}
    if unknown:
        raise ApiError(400, f"Invalid metadata: unknown field(s) {sorted(unknown)}")
    for key in ("content_id", "content_uri"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise ApiError(400, f"Invalid metadata: {key} must be a string")
    if meta.get("json") is not None and not isinstance(meta["json"], dict):
        raise ApiError(400, "Invalid metadata: json must be an object")
    return meta


def _store_record(db: HashDB, bank: str, record: Record, meta: Dict[str, Any]) -> Dict[str, Any]:
    record.bank = bank
    record.external_id = meta.get("content_id")
    record.content_uri = meta.get("content_uri")
    record.metadata = dict(meta.get("json") or {})
    entry_id = db.add_records([record])[0]
    return {"id": entry_id, "signals": signals_of(record)}


@endpoint("curator")
async def content_add(request: Request, worker: Worker) -> Response:
    """POST /c/bank/<name>/content: add media by ?url= or upload; {"id", "signals"}."""
    db = worker.db()
    bank = _bank(db, request.path_params["bank_name"]).name
    url = request.query_params.get("url")
    if url:
        meta = await _metadata(request)
        record = await _hash_url(request, worker, url)
    elif request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        meta = {}
        record = await _hash_upload(request)
    else:
        raise ApiError(400, "Neither `url` nor multipart file upload was received")
    wanted = _signal_types(request, {fp.format: fp.format for fp in record.fingerprints})
    record.fingerprints = [fp for fp in record.fingerprints if fp.format in wanted]
    return JSONResponse(_store_record(worker.db(), bank, record, meta))


@endpoint("curator")
async def signal_add(request: Request, worker: Worker) -> Response:
    """POST /c/bank/<name>/signal {signal_type: hash, ...}: add content as hashes; {"id", "signals"}."""
    db = worker.db()
    bank = _bank(db, request.path_params["bank_name"]).name
    body = json_object(await json_body(request))
    if not body:
        raise ApiError(400, "No signals given")
    fps, media = [], "image"
    for name, text in body.items():
        signal = signal_named(name)
        value = parse_value(signal, text)
        fps.append(fingerprint(signal, value))
        if signal.media_type == "video":
            media = "video"
    return JSONResponse(_store_record(db, bank, Record(media, fps), {}))


@endpoint("curator")
async def content_get(request: Request, worker: Worker) -> Response:
    """GET /c/bank/<name>/content/<id>[?include_signals=true]: the content's config."""
    db = worker.db()
    bank = _bank(db, request.path_params["bank_name"]).name
    record = _content(db, bank, request.path_params["content_id"])
    return JSONResponse(content_json(db, record, bool_param(request, "include_signals")))


@endpoint("curator")
async def content_update(request: Request, worker: Worker) -> Response:
    """PUT /c/bank/<name>/content/<id> {disable_until_ts}: 0 disables, 1 enables, else disabled until then."""
    db = worker.db()
    bank = _bank(db, request.path_params["bank_name"]).name
    record = _content(db, bank, request.path_params["content_id"])
    body = json_object(await json_body(request))
    if "disable_until_ts" in body:
        raw = body["disable_until_ts"]
        try:
            ts = int(raw) if not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            ts = None
        if ts is None:
            raise ApiError(400, f"Invalid int: '{str(raw)[:50]}'")
        if ts < 0:
            raise ApiError(400, "disable_until_ts must be a non-negative integer")
        if ts > time.time() + FIVE_YEARS:
            raise ApiError(400, "disable_until_ts must be less than 5 years in the future")
        if ts == 1:
            db.enable(record.id)
        else:
            db.disable(record.id, None if ts == 0 else float(ts))
    return JSONResponse(content_json(db, db.get(record.id)))


@endpoint("curator")
async def content_delete(request: Request, worker: Worker) -> Response:
    """DELETE /c/bank/<name>/content/<id>: {"deleted": count}."""
    db = worker.db()
    bank = _bank(db, request.path_params["bank_name"]).name
    try:
        record = _content(db, bank, request.path_params["content_id"])
    except ApiError:
        return JSONResponse({"deleted": 0})
    return JSONResponse({"deleted": db.remove([record.id])})


# ----- /c: configuration ----------------------------------------------------------------------
@endpoint("curator")
async def signal_types(request: Request, worker: Worker) -> Response:
    """GET /c/signal_type: [{name, enabled_ratio}] of every signal type hashmatch matches."""
    return JSONResponse([{"name": s.name, "enabled_ratio": 1.0} for s in _indexed_signals()])


@endpoint("curator")
async def signal_type_update(request: Request, worker: Worker) -> Response:
    """PUT /c/signal_type/<name>: not supported (signal types are always on; banks have ratios)."""
    signal_named(request.path_params["name"])
    raise ApiError(501, "signal types cannot be switched off here: use a bank's enabled_ratio or thresholds")


@endpoint("curator")
async def signal_type_index(request: Request, worker: Worker) -> Response:
    """GET /c/signal_type/index: {signal_type: {db_size, index_size, index_out_of_date, newest_db_item, index_built_to}}."""
    db = worker.db()
    worker.refresh()
    counts, newest = await _counts(db), _newest(db)
    names = _wanted_signals(request)
    return JSONResponse({n: {"db_size": int(counts.get(n, 0)), "index_size": int(counts.get(n, 0)),
                             "index_out_of_date": False, "newest_db_item": newest, "index_built_to": newest}
                         for n in names})


@endpoint("curator")
async def content_types(request: Request, worker: Worker) -> Response:
    """GET /c/content_type: [{name, enabled}] (photo and video)."""
    return JSONResponse([{"name": n, "enabled": True} for n in CONTENT_TYPES])


# ----- health ---------------------------------------------------------------------------------
@endpoint(None)
async def status(request: Request, worker: Worker) -> Response:
    """GET /status: 200 I-AM-ALIVE once the index is loaded, 503 INDEX-NOT-LOADED before."""
    if not worker.ready:
        return PlainTextResponse("INDEX-NOT-LOADED" if worker.failed is None else "STORE-FAILED", status_code=503)
    return PlainTextResponse("I-AM-ALIVE")


@endpoint(None)
async def live(request: Request, worker: Worker) -> Response:
    """GET /status/live (and /livez): 200 while the process serves HTTP."""
    return PlainTextResponse("OK")


@endpoint(None)
async def readyz(request: Request, worker: Worker) -> Response:
    """GET /readyz: 200 READY once the index is loaded, else 503."""
    return PlainTextResponse("READY") if worker.ready else PlainTextResponse("INDEX-NOT-LOADED", status_code=503)


ROUTES = [
    Route("/status", status, methods=["GET"]),
    Route("/status/live", live, methods=["GET"]),
    Route("/livez", live, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/h/hash", hash_get, methods=["GET"]),
    Route("/h/hash", hash_post, methods=["POST"]),
    Route("/m/raw_lookup", raw_lookup, methods=["GET"]),
    Route("/m/lookup", lookup_get, methods=["GET"]),
    Route("/m/lookup", lookup_post, methods=["POST"]),
    Route("/m/compare", compare, methods=["POST"]),
    Route("/m/index/status", index_status, methods=["GET"]),
    Route("/c/banks", banks_index, methods=["GET"]),
    Route("/c/banks", bank_create, methods=["POST"]),
    Route("/c/bank/{bank_name}", bank_get, methods=["GET"]),
    Route("/c/bank/{bank_name}", bank_update, methods=["PUT"]),
    Route("/c/bank/{bank_name}", bank_delete, methods=["DELETE"]),
    Route("/c/bank/{bank_name}/content", content_add, methods=["POST"]),
    Route("/c/bank/{bank_name}/content/{content_id}", content_get, methods=["GET"]),
    Route("/c/bank/{bank_name}/content/{content_id}", content_update, methods=["PUT"]),
    Route("/c/bank/{bank_name}/content/{content_id}", content_delete, methods=["DELETE"]),
    Route("/c/bank/{bank_name}/signal", signal_add, methods=["POST"]),
    Route("/c/signal_type", signal_types, methods=["GET"]),
    Route("/c/signal_type/index", signal_type_index, methods=["GET"]),
    Route("/c/signal_type/{name}", signal_type_update, methods=["PUT"]),
    Route("/c/content_type", content_types, methods=["GET"]),
]
