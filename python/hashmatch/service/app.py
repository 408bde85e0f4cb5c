"""The ASGI application: HMA's routes, the /v1 routes, health, metrics and OpenAPI, behind one guard.

The guard (outermost) bounds every request: a body above the limit is refused (413) from its
Content-Length or as soon as it passes the limit while streaming, a request that takes longer
than the timeout is answered 504, and anything unexpected becomes a JSON 500 with the worker
still running. It also records each answer's metrics and its access-log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, AsyncIterator, Dict, List

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..config import SERVE_MAX_HEADER_BYTES, SERVE_MAX_HEADERS
from . import exchange_routes, hma, metrics, v1
from .http import ROLE_GROUPS, BodyTooLarge, endpoint, error_response
from .settings import ServeConfig
from .worker import Worker

log = logging.getLogger("hashmatch.serve")

#: Where the OpenAPI document is (HMA's path, and the common one).
OPENAPI_PATHS = ("/openapi/openapi.json", "/openapi.json")


@endpoint(None)
async def metrics_route(request: Request, worker: Worker) -> Response:
    """GET /metrics: Prometheus text format, every worker's samples."""
    metrics.index_state(worker.stats())
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)


@endpoint(None)
async def openapi_route(request: Request, worker: Worker) -> Response:
    """GET /openapi/openapi.json: this API's OpenAPI 3 document."""
    return JSONResponse(request.app.state.openapi)


def openapi_spec(routes: List[Route]) -> Dict[str, Any]:
    """An OpenAPI 3 document of the routes: each operation's summary and the roles that may call it."""
    paths: Dict[str, Dict[str, Any]] = {}
    for route in routes:
        group = getattr(route.endpoint, "group", None)
        doc = (route.endpoint.__doc__ or "").strip().splitlines()[0] if route.endpoint.__doc__ else ""
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                  for p in route.param_convertors]
        for method in sorted(route.methods - {"HEAD"}):
            op: Dict[str, Any] = {"summary": doc, "operationId": f"{method.lower()}_{route.endpoint.__name__}",
                                  "parameters": params, "responses": {"200": {"description": "OK"},
                                                                      "400": {"description": "bad input (JSON)"}}}
            if group:
                op["security"] = [{"bearer": []}]
                op["x-roles"] = sorted(ROLE_GROUPS[group])
                op["responses"].update({"401": {"description": "no valid token"},
                                        "403": {"description": "the token's role may not call this"}})
            paths.setdefault(route.path, {})[method.lower()] = op
    return {"openapi": "3.0.3", "info": {"title": "hashmatch serve", "version": "1",
                                         "description": "HMA-compatible routes and hashmatch's /v1 routes"},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}, "paths": paths}


class Guard:
    """Bounds, timeouts, last-resort errors, metrics and access logs for every HTTP request."""

    def __init__(self, app: Any, config: ServeConfig, templates: Dict[Any, str]) -> None:
        self.app = app
        self.starlette = app
        #: GET routes answered without Starlette's router: short, bodiless, and the bulk of the traffic.
        self.hot = {"/m/raw_lookup": hma.raw_lookup}
        self.max_body = int(config.max_body_bytes)
        self.timeout = float(config.request_timeout)
        self.access_log = bool(config.access_log)
        self.templates = templates

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = {"status": 0, "received": 0}
        headers = scope.get("headers", ())
        if len(headers) > SERVE_MAX_HEADERS or sum(len(n) + len(v) for n, v in headers) > SERVE_MAX_HEADER_BYTES:
            await _send_error(send, 431, f"request headers above {SERVE_MAX_HEADERS} fields or "
                                         f"{SERVE_MAX_HEADER_BYTES} bytes")
            self._done(scope, 431, started)
            return
        for name, value in headers:
            if name == b"content-length":
                if not value.isdigit():
                    await _send_error(send, 400, "Content-Length is not a number")
                    return
                if int(value) > self.max_body:
                    await _send_error(send, 413, f"request body above the {self.max_body}-byte limit")
                    self._done(scope, 413, started)
                    return

        async def limited_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_body:
                    raise BodyTooLarge(f"request body above the {self.max_body}-byte limit")
            return message

        async def tracked_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            await send(message)

        try:
            hot = self.hot.get(scope["path"]) if scope.get("method") == "GET" else None
            if hot is not None:  # the lookup every upload makes: its endpoint without routing or middleware
                scope["app"], scope["endpoint"] = self.starlette, hot
                response = await hot(Request(scope))
                await response(scope, limited_receive, tracked_send)
            else:
                await _within(self.timeout, self.app(scope, limited_receive, tracked_send))
        except (TimeoutError, asyncio.TimeoutError):
            if not state["status"]:
                state["status"] = 504
                await _send_error(send, 504, f"the request took longer than {self.timeout:g} s")
        except BodyTooLarge as e:
            if not state["status"]:
                state["status"] = 413
                await _send_error(send, 413, str(e))
        except Exception:
            log.exception("unexpected error", extra={"event": "error", "path": scope.get("path", "")[:200]})
            if not state["status"]:
                state["status"] = 500
                await _send_error(send, 500, "internal error (logged)")
        self._done(scope, state["status"], started)

    def _done(self, scope: Dict[str, Any], status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        route = self.templates.get(scope.get("endpoint"), "other")
        method = scope.get("method", "")
        metrics.observe(route, method, status, seconds)
        if self.access_log:
            log.info("request", extra={"event": "request", "method": method, "route": route,
                                       "path": scope.get("path", "")[:200], "status": status,
                                       "ms": round(seconds * 1000, 3)})


async def _within(seconds: float, work: Any) -> None:
    if hasattr(asyncio, "timeout"):  # Python >= 3.11: no extra task per request
        async with asyncio.timeout(seconds):
            await work
    else:
        await asyncio.wait_for(work, seconds)


async def _send_error(send: Any, status: int, message: str) -> None:
    body = json.dumps({"message": message, "error": {413: "too_large", 504: "timeout", 500: "internal",
                                                     400: "bad_request", 431: "headers_too_large"}.get(status, "error")}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "") or {404: "Not Found", 405: "Method Not Allowed"}.get(status, "error")
    return error_response(status, str(detail))


def create_app(config: ServeConfig) -> Any:
    """The application for one worker process."""
    worker = Worker(config)
    routes = hma.ROUTES + exchange_routes.ROUTES + v1.ROUTES + [Route("/metrics", metrics_route, methods=["GET"])] + \
        [Route(p, openapi_route, methods=["GET"]) for p in OPENAPI_PATHS]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await worker.start()

        async def gauges() -> None:
            while True:
                await asyncio.sleep(1.0)
                metrics.index_state(worker.stats())

        task = asyncio.get_running_loop().create_task(gauges())
        try:
            yield
        finally:
            task.cancel()
            await worker.stop()
            log.info("stopped", extra={"event": "stopped"})

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error, 404: _http_error, 405: _http_error})
    app.state.worker = worker
    app.state.openapi = openapi_spec(routes)
    templates = {r.endpoint: r.path for r in routes}
    return Guard(app, config, templates)


def app_from_env() -> Any:
    """The application factory uvicorn's workers call: settings from the environment."""
    return create_app(ServeConfig.from_env())
