"""HMA's exchange routes (/c/exchanges, /c/exchange/<name>) over hashmatch.exchanges.

Shapes follow HMA's curation blueprint: an exchange is named after the bank it fills (HMA's
``bank`` field, UPPER_WITH_UNDERSCORE), its settings are ``api_json``, and its fetch status is
HMA's FetchStatus object. Two differences, both for safety: credentials are never taken over
HTTP (HMA stores what ``POST /c/exchanges/api/<api>`` sends in its database; hashmatch reads them
from the environment or an owner-only file, see exchanges.credentials), and creating, changing
or deleting an exchange needs the admin role, since its settings say where the server fetches from.
"""

from __future__ import annotations

import os
from typing import Any, Dict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import exchanges
from ..errors import ExchangeConfigError
from .hma import HMA_BANK_NAME
from .http import ApiError, endpoint, json_body, json_object
from .worker import Worker


def _settings_json(s: exchanges.Settings) -> Dict[str, Any]:
    """An exchange as HMA shows one: name, api, enabled and the API's own settings (never credentials)."""
    return {**s.config, "name": s.name, "api": s.api, "enabled": bool(s.enabled), "bank": s.bank}


def _get(worker: Worker, name: str) -> exchanges.Settings:
    try:
        return exchanges.get(worker.db(), name)
    except ExchangeConfigError:
        raise ApiError(404, f"Exchange '{name[:100]}' not found") from None


def _api(request: Request) -> Any:
    name = request.path_params["api_name"]
    cls = exchanges.APIS.get(name)
    if cls is None:
        raise ApiError(400, f"no such Exchange API '{name[:100]}'")
    return cls


def _ts(value: Any) -> Any:
    return None if value is None else int(value)


def fetch_status(row: Dict[str, Any]) -> Dict[str, Any]:
    """HMA's FetchStatus from one row of exchanges.status()."""
    running = row.get("state") == "running"
    checkpoint = row.get("checkpoint") or {}
    stamp = checkpoint.get("start")  # the adapters that fetch by time window resume from its start
    if not isinstance(stamp, (int, float)) or isinstance(stamp, bool):
        stamp = None
    return {"checkpoint_ts": _ts(stamp if stamp is not None else row.get("succeeded")),
            "running_fetch_start_ts": _ts(row.get("started")) if running else None,
            "last_fetch_complete_ts": _ts(row.get("finished")),
            "last_fetch_succeeded": None if row.get("finished") is None else row.get("state") == "ok",
            "up_to_date": row.get("state") == "ok",
            "fetched_items": int(row.get("entries") or 0),
            # hashmatch's own, beside HMA's fields
            "last_error": row.get("last_error"), "feedback_pending": row.get("feedback_pending", 0)}


@endpoint("curator")
async def api_list(request: Request, worker: Worker) -> Response:
    """GET /c/exchanges/apis: the exchange APIs this server can fetch from."""
    return JSONResponse(sorted(exchanges.APIS))


@endpoint("curator")
async def api_config(request: Request, worker: Worker) -> Response:
    """GET /c/exchanges/api/<api>: whether it takes credentials and whether the server has them."""
    cls = _api(request)
    env = getattr(cls, "credential_env", "") or ""
    file = getattr(cls, "credential_file", "") or ""
    has = bool(env and os.environ.get(env, "").strip()) or bool(file and os.path.isfile(os.path.expanduser(file)))
    return JSONResponse({"supports_authentification": bool(env or file), "has_set_authentification": has})


@endpoint("admin")
async def api_config_update(request: Request, worker: Worker) -> Response:
    """POST /c/exchanges/api/<api>: refused: credentials never travel over HTTP nor go in the database."""
    env = getattr(_api(request), "credential_env", "") or "HASHMATCH_<NAME>_CREDENTIALS"
    raise ApiError(400, f"hashmatch does not take credentials over HTTP or keep them in its database: set ${env}"
                        " (or a chmod-600 file named by the exchange's credentials_file setting) where the server runs")


@endpoint("admin")
async def exchange_create(request: Request, worker: Worker) -> Response:
    """POST /c/exchanges {bank, api, api_json}: 201; the exchange is named after the bank it fills."""
    body = json_object(await json_body(request))
    bank = body.get("bank")
    if not isinstance(bank, str) or not HMA_BANK_NAME.match(bank):
        raise ApiError(400, "Field `bank` must match /^[A-Z0-9_]+$/")
    api = body.get("api", body.get("api_type"))
    if not isinstance(api, str) or not api:
        raise ApiError(400, "Field `api` is required")
    if api not in exchanges.APIS:
        raise ApiError(400, f"No such exchange type '{api[:100]}'")
    settings = body.get("api_json", {})
    if not isinstance(settings, dict):
        raise ApiError(400, "Field `api_json` must be object")
    settings = {k: v for k, v in settings.items() if k not in ("name", "api", "enabled")}
    enabled = body.get("api_json", {}).get("enabled", True)
    db = worker.db()
    if any(s.name == bank for s in exchanges.list_exchanges(db)):
        raise ApiError(403, "Exchange already exists")
    exchanges.add(db, bank, api, bank, settings, enabled=bool(enabled))
    return JSONResponse({"message": "Created successfully"}, status_code=201)


@endpoint("curator")
async def exchange_list(request: Request, worker: Worker) -> Response:
    """GET /c/exchanges: every exchange's name."""
    return JSONResponse([s.name for s in exchanges.list_exchanges(worker.db())])


@endpoint("curator")
async def exchange_get(request: Request, worker: Worker) -> Response:
    """GET /c/exchange/<name>: its settings {name, api, enabled, ...}."""
    return JSONResponse(_settings_json(_get(worker, request.path_params["exchange_name"])))


@endpoint("curator")
async def exchange_status(request: Request, worker: Worker) -> Response:
    """GET /c/exchange/<name>/status: HMA's FetchStatus (checkpoint, running fetch, last result, items)."""
    name = _get(worker, request.path_params["exchange_name"]).name
    return JSONResponse(fetch_status(exchanges.status(worker.db(), name)[0]))


@endpoint("admin")
async def exchange_update(request: Request, worker: Worker) -> Response:
    """PUT /c/exchange/<name> {enabled}: switch it on or off; its settings."""
    name = _get(worker, request.path_params["exchange_name"]).name
    body = json_object(await json_body(request))
    if "enabled" in body:
        if not isinstance(body["enabled"], (bool, int)):
            raise ApiError(400, "Field `enabled` must be true or false")
        exchanges.set_enabled(worker.db(), name, bool(body["enabled"]))
    return JSONResponse(_settings_json(_get(worker, name)))


@endpoint("admin")
async def exchange_delete(request: Request, worker: Worker) -> Response:
    """DELETE /c/exchange/<name>: forget the exchange (its bank and entries stay); success if there is none."""
    db = worker.db()
    name = request.path_params["exchange_name"]
    if any(s.name == name for s in exchanges.list_exchanges(db)):
        exchanges.remove(db, name)
    return JSONResponse({"message": "success"})


ROUTES = [
    Route("/c/exchanges/apis", api_list, methods=["GET"]),
    Route("/c/exchanges/api/{api_name}", api_config, methods=["GET"]),
    Route("/c/exchanges/api/{api_name}", api_config_update, methods=["POST"]),
    Route("/c/exchanges", exchange_create, methods=["POST"]),
    Route("/c/exchanges", exchange_list, methods=["GET"]),
    Route("/c/exchange/{exchange_name}", exchange_get, methods=["GET"]),
    Route("/c/exchange/{exchange_name}/status", exchange_status, methods=["GET"]),
    Route("/c/exchange/{exchange_name}", exchange_update, methods=["PUT"]),
    Route("/c/exchange/{exchange_name}", exchange_delete, methods=["DELETE"]),
]
