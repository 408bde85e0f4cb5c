"""The native routes, under /v1: what HMA lacks.

Video lookups by vPDQ, TMK+PDQF or video_md5 (as an upload, a URL, or hash values), an image's
PDQ found in video frames (with the stored timestamps that matched), batch lookups of many
hashes or files in one request, per-request thresholds that only narrow a bank's, numeric
distances, and the dihedral and trim_borders options. All matching is the store's
(``HashDB.match_query`` semantics through its Matcher): this module only parses and shapes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Dict, List, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import signals
from ..config import SERVE_MAX_BATCH
from ..pipeline import HashDB
from ..store import Matches, Query
from . import fetch as fetching
from .http import (ApiError, bool_param, check_batch, endpoint, json_body, json_object, list_param, number,
                   uploads)
from .media import parse_value, query_of_bytes, record_of_bytes, signal_named, signals_of
from .worker import Worker


def match_json(m: Any) -> Dict[str, Any]:
    """One match with numeric distances and its bank (entry_id is HMA's bank_content_id)."""
    d = m.to_dict()
    d.pop("bank_id", None)
    d["bank_content_id"] = m.entry_id
    return {k: v for k, v in d.items() if v is not None and v != []}


def matches_json(found: Matches) -> Dict[str, Any]:
    """A query's matches, with why it was not looked up and the allow-bank matches that suppressed it."""
    out: Dict[str, Any] = {"matches": [match_json(m) for m in found], "media_type": found.media_type}
    if found.skipped:
        out["skipped"] = found.skipped
    if found.allowed:
        out["allowed"] = [match_json(m) for m in found.allowed]
    return out


class Options:
    """A lookup's options: banks, narrowed thresholds, dihedral, trim_borders (query string, then JSON body)."""

    def __init__(self, request: Request, body: Optional[Dict[str, Any]] = None) -> None:
        body = body or {}
        q = request.query_params

        def pick(name: str) -> Any:
            return body[name] if name in body else q.get(name)

        banks = body.get("banks") if "banks" in body else list_param(q.get("banks"))
        if banks is not None and (not isinstance(banks, list) or not all(isinstance(b, str) for b in banks)):
            raise ApiError(400, "banks must be a list of bank names (or a comma-separated query parameter)")
        self.banks: Optional[List[str]] = banks
        narrow: Dict[str, float] = {}
        if pick("max_distance") is not None:
            narrow["max_distance"] = number(pick("max_distance"), "max_distance", 0, 256, integer=True)
        if pick("min_quality") is not None:
            narrow["min_quality"] = number(pick("min_quality"), "min_quality", 0, 100, integer=True)
        self.narrow = narrow
        self.dihedral = _flag(body, request, "dihedral")
        self.trim_borders = _flag(body, request, "trim_borders")

    def match(self, db: HashDB, query: Query) -> Matches:
        """The store's answer for a query under these options (thresholds only ever narrowed)."""
        th = dataclasses.replace(db.thresholds(), narrow=dict(self.narrow))
        return db.matcher.match(query, th, banks=self.banks)


def _flag(body: Dict[str, Any], request: Request, name: str) -> bool:
    if name in body:
        if not isinstance(body[name], bool):
            raise ApiError(400, f"{name} must be true or false")
        return body[name]
    return bool_param(request, name)


def _hash_query(item: Any, i: int) -> Query:
    if not isinstance(item, dict):
        raise ApiError(400, f"hashes[{i}] must be an object {{signal_type, signal}}")
    signal = signal_named(item.get("signal_type"))
    if signal.index is None or not signal.matchable:
        raise ApiError(400, f"hashes[{i}]: {signal.name} is kept but never matched")
    value = parse_value(signal, item.get("signal"))
    media = "video" if signal.media_type == "video" else "image"
    return Query(media_type=media).add(signal.name, value)


@endpoint("matcher")
async def lookup_hashes(request: Request, worker: Worker) -> Response:
    """POST /v1/lookup {hashes: [{signal_type, signal}], banks?, max_distance?, min_quality?}: one result each."""
    body = json_object(await json_body(request))
    items = body.get("hashes")
    if items is None and "signal_type" in body:
        items = [{"signal_type": body.get("signal_type"), "signal": body.get("signal")}]
    if not isinstance(items, list) or not items:
        raise ApiError(400, "hashes must be a non-empty list of {signal_type, signal}")
    items = check_batch(items, "hashes")
    options = Options(request, body)
    if options.dihedral or options.trim_borders:
        raise ApiError(400, "dihedral and trim_borders need the media, not its hash: upload the file")
    queries = [_hash_query(item, i) for i, item in enumerate(items)]  # every hash checked before any lookup
    db = worker.db()
    results = []
    for i, query in enumerate(queries):
        results.append({"index": i, "signal_type": next(iter(query.values)), **matches_json(options.match(db, query))})
    return JSONResponse({"results": results})


async def _named_media(request: Request, worker: Worker) -> List[Any]:
    """(field, name, bytes) of the media of a request: the ?url= fetched (allow-listed hosts only), else the uploads."""
    url = request.query_params.get("url")
    if url:
        got = await asyncio.get_running_loop().run_in_executor(None, fetching.fetch, url, worker.fetch_policy)
        return [("url", got.url, got.body)]
    return await uploads(request, max_files=SERVE_MAX_BATCH)


@endpoint("matcher")
async def lookup_media(request: Request, worker: Worker) -> Response:
    """POST /v1/lookup/media: uploaded files (multipart, any number up to the batch limit) or ?url=."""
    options = Options(request)
    named = await _named_media(request, worker)
    results = []
    for i, (field, filename, data) in enumerate(named):
        try:
            query = await query_of_bytes(data, options.dihedral, options.trim_borders)
            entry: Dict[str, Any] = {"index": i, "name": filename, **matches_json(options.match(worker.db(), query))}
        except ApiError as e:
            if len(named) == 1:
                raise
            entry = {"index": i, "name": filename, "error": {"status": e.status, "message": e.message}}
        except Exception as e:  # one bad file in a batch is reported and the rest go on
            from .http import as_api_error
            err = as_api_error(e)
            if len(named) == 1:
                raise err from None
            entry = {"index": i, "name": filename, "error": {"status": err.status, "message": err.message}}
        results.append(entry)
    return JSONResponse({"results": results})


@endpoint("hasher")
async def hash_media(request: Request, worker: Worker) -> Response:
    """POST /v1/hash: every default signal of each uploaded file (binary formats base64) with its media type."""
    named = await _named_media(request, worker)
    out = []
    for i, (_, filename, data) in enumerate(named):
        record = await record_of_bytes(data)
        quality = {fp.format: fp.quality for fp in record.fingerprints if fp.quality is not None}
        out.append({"index": i, "name": filename, "media_type": record.media_type, "hashes": signals_of(record),
                    "quality": quality})
    return JSONResponse({"results": out})


@endpoint("matcher")
async def compare(request: Request, worker: Worker) -> Response:
    """POST /v1/compare {signal_type, a, b}: the numeric distance (or similarity) and whether it is a match."""
    body = json_object(await json_body(request))
    signal = signal_named(body.get("signal_type"))
    if not signal.matchable:
        raise ApiError(400, f"{signal.name} cannot be compared")
    a, b = parse_value(signal, body.get("a")), parse_value(signal, body.get("b"))
    threshold = body.get("threshold")
    if threshold is not None:
        threshold = number(threshold, "threshold", -1e9, 1e9)
    d = signal.distance(a, b)
    return JSONResponse({"signal_type": signal.name, "distance": d, "similarity": bool(signal.similarity),
                         "match": bool(signal.is_match(a, b, threshold))})


@endpoint("matcher")
async def signal_list(request: Request, worker: Worker) -> Response:
    """GET /v1/signals: every signal type, its media type, default threshold and index kind."""
    return JSONResponse([{"name": s.name, "media_type": s.media_type, "threshold": s.threshold,
                          "similarity": bool(s.similarity), "binary": bool(s.binary), "matchable": bool(s.matchable),
                          "index": getattr(s.index, "kind", None)} for s in signals.all_signals()])


@endpoint("matcher")
async def index_info(request: Request, worker: Worker) -> Response:
    """GET /v1/index: this worker's index size, generation and staleness."""
    worker.db()
    return JSONResponse(worker.stats())


ROUTES = [
    Route("/v1/lookup", lookup_hashes, methods=["POST"]),
    Route("/v1/lookup/media", lookup_media, methods=["POST"]),
    Route("/v1/hash", hash_media, methods=["POST"]),
    Route("/v1/compare", compare, methods=["POST"]),
    Route("/v1/signals", signal_list, methods=["GET"]),
    Route("/v1/index", index_info, methods=["GET"]),
]
