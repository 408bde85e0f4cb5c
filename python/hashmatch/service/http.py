"""What every route shares: errors as JSON, reading bodies within bounds, parameters, roles.

Every failure a client can cause is an ApiError with a 4xx status and a JSON body
``{"message": ..., "error": ...}`` (HMA's ``message`` key); hashmatch's typed errors map to
400 (413 for a resource bound), an unknown bank or entry to 404, the store not open yet to
503. A route is wrapped by ``endpoint``, which checks the token's role before anything else.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from ..config import SERVE_MAX_BATCH, SERVE_MAX_JSON_BYTES, SERVE_MAX_JSON_DEPTH
from ..errors import DatabaseNotFoundError, HashmatchError, ResourceLimitError
from .worker import NotReady, Worker

log = logging.getLogger("hashmatch.serve")

#: Which roles may call each group of routes; admin may call all of them.
ROLE_GROUPS = {"hasher": {"hasher", "admin"}, "matcher": {"matcher", "admin"}, "curator": {"curator", "admin"},
               "admin": {"admin"}}


class ApiError(Exception):
    """An answer other than 200: its status and a message for the client."""

    def __init__(self, status: int, message: str, error: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.error = int(status), message, error or _reason(int(status))


class BodyTooLarge(Exception):
    """The request body passed the server's limit (raised while reading it)."""


def _reason(status: int) -> str:
    return {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
            409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "unprocessable",
            501: "not_implemented", 503: "not_ready", 504: "timeout"}.get(status, "error")


def error_response(status: int, message: str, error: str = "") -> JSONResponse:
    """The JSON body of an error answer."""
    return JSONResponse({"message": message, "error": error or _reason(status)}, status_code=status)


def as_api_error(e: BaseException) -> ApiError:
    """The ApiError a raised exception means for the client."""
    if isinstance(e, ApiError):
        return e
    if isinstance(e, NotReady):
        return ApiError(503, str(e))
    if isinstance(e, BodyTooLarge):
        return ApiError(413, str(e) or "request body too large")
    if isinstance(e, HTTPException):  # Starlette's own: a malformed multipart body, ...
        return ApiError(e.status_code, str(e.detail))
    if isinstance(e, ClientDisconnect):
        return ApiError(400, "the client went away before sending the whole body")
    if isinstance(e, DatabaseNotFoundError):
        return ApiError(503, str(e), type(e).__name__)
    if isinstance(e, ResourceLimitError):
        return ApiError(413, str(e), type(e).__name__)
    if isinstance(e, HashmatchError):
        return ApiError(400, str(e), type(e).__name__)
    if isinstance(e, KeyError):
        return ApiError(404, str(e.args[0]) if e.args else "not found")
    if isinstance(e, (UnicodeError, RecursionError)):
        return ApiError(400, f"malformed input: {type(e).__name__}")
    raise e


Handler = Callable[[Request, Worker], Awaitable[Response]]


def endpoint(group: Optional[str]) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a route: the caller's token must have a role of `group` (None: open), errors become JSON."""
    allowed = ROLE_GROUPS[group] if group else None

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def route(request: Request) -> Response:
            worker: Worker = request.app.state.worker
            try:
                if allowed is not None:
                    role = authenticate(request, worker)
                    if role not in allowed:
                        raise ApiError(403, f"this route needs a token with role {' or '.join(sorted(allowed))}; "
                                            f"yours is {role}")
                return await handler(request, worker)
            except Exception as e:
                err = as_api_error(e)
                return error_response(err.status, err.message, err.error)
        route.group = group  # type: ignore[attr-defined]
        return route
    return wrap


def authenticate(request: Request, worker: Worker) -> str:
    """The role of the request's bearer token; 401 when there is none or it is not valid."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing API token: send 'Authorization: Bearer TOKEN' (create one with "
                            "`hashmatch token create --role ROLE --db DB`)")
    role = worker.token_role(token.strip())
    if role is None:
        raise ApiError(401, "invalid or revoked API token")
    return role


# ----- parameters -------------------------------------------------------------------------
def require_param(request: Request, name: str) -> str:
    """A query parameter that must be there (HMA: '<name> is required')."""
    value = request.query_params.get(name)
    if value is None or value == "":
        raise ApiError(400, f"{name} is required")
    return value


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    """A true/false query parameter (also 1/0)."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, f"{name} must be true or false, got {value[:50]!r}")


def list_param(value: Optional[str]) -> Optional[List[str]]:
    """A comma-separated list (None when absent or empty)."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def number(value: Any, name: str, lo: float, hi: float, integer: bool = False) -> float:
    """A number in [lo, hi] from a query parameter or JSON value; 400 otherwise."""
    if isinstance(value, bool):
        raise ApiError(400, f"{name} must be a number, got {value!r}")
    try:
        out = int(value) if integer else float(value)
    except (TypeError, ValueError, OverflowError):
        raise ApiError(400, f"{name} must be {'an integer' if integer else 'a number'}, got {str(value)[:50]!r}"
                       ) from None
    if integer and isinstance(value, float) and value != int(value):
        raise ApiError(400, f"{name} must be an integer, got {value!r}")
    if not lo <= out <= hi:
        raise ApiError(400, f"{name} must be in {lo:g}..{hi:g}, got {out}")
    return out


# ----- bodies -----------------------------------------------------------------------------
async def json_body(request: Request, *, required: bool = True) -> Any:
    """The request's JSON body (bounded in size and depth); None when there is none and it is optional."""
    body = await request.body()
    if not body.strip():
        if required:
            raise ApiError(400, "a JSON body is required")
        return None
    if len(body) > SERVE_MAX_JSON_BYTES:
        raise ApiError(413, f"JSON body above {SERVE_MAX_JSON_BYTES} bytes")
    if _depth_exceeds(body, SERVE_MAX_JSON_DEPTH):
        raise ApiError(400, f"JSON nested deeper than {SERVE_MAX_JSON_DEPTH} levels")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise ApiError(400, f"the body is not valid JSON: {str(e)[:200]}") from None


def _depth_exceeds(body: bytes, limit: int) -> bool:
    # Brackets outside strings, counted before parsing: a deep document never reaches the parser.
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def json_object(value: Any, what: str = "the body") -> Dict[str, Any]:
    """A JSON value that must be an object."""
    if not isinstance(value, dict):
        raise ApiError(400, f"{what} must be a JSON object")
    return value


async def uploads(request: Request, *, max_files: int = SERVE_MAX_BATCH) -> List[Any]:
    """(field name, filename, bytes) of each file of a multipart/form-data body; 400 when there is none."""
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise ApiError(400, "Missing multipart/form-data file upload")
    form = await request.form(max_files=max_files, max_fields=max_files)
    out = []
    try:
        for field, value in form.multi_items():
            if hasattr(value, "read"):
                data = await value.read()
                out.append((field, value.filename or field, data))
    finally:
        await form.close()
    if not out:
        raise ApiError(400, "Missing multipart/form-data file upload")
    return out


def check_batch(items: Iterable[Any], what: str) -> List[Any]:
    """A batch as a list of at most SERVE_MAX_BATCH items."""
    out = list(items)
    if len(out) > SERVE_MAX_BATCH:
        raise ApiError(413, f"at most {SERVE_MAX_BATCH} {what} per request, got {len(out)}")
    return out
