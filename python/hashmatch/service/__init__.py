"""`hashmatch serve`: the matching service (HMA-compatible routes and native /v1 routes) on uvicorn.

A layer above the store, pipeline and lists: it parses requests, checks tokens and bounds, and
shapes answers; matching itself is the store's. ``serve(config)`` runs it; ``create_app``
builds one worker's ASGI application. Needs the ``serve`` extra: ``pip install "hashmatch[serve]"``.
"""

from __future__ import annotations

from typing import Any

from ..errors import HashmatchError

#: The modules the service needs beyond hashmatch's own dependencies, and their packages.
REQUIRED = (("starlette", "starlette"), ("uvicorn", "uvicorn"), ("multipart", "python-multipart"),
            ("prometheus_client", "prometheus_client"))


class ServeDependencyError(HashmatchError, ImportError):
    """A package `hashmatch serve` needs is not installed."""


def require_deps() -> None:
    """Raise ServeDependencyError naming what to install when a serve dependency is missing."""
    import importlib.util

    missing = [package for module, package in REQUIRED if importlib.util.find_spec(module) is None]
    if missing:
        raise ServeDependencyError(f"hashmatch serve needs {', '.join(missing)}: pip install \"hashmatch[serve]\"")


def serve(config: Any) -> None:
    """Run the server until it is stopped (SIGINT or SIGTERM: in-flight requests finish first)."""
    require_deps()
    from .server import run

    run(config)


__all__ = ["ServeDependencyError", "require_deps", "serve"]
