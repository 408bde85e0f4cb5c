"""How one `hashmatch serve` runs: its database, address, workers, fetch policy and bounds.

The command line builds a ServeConfig; it reaches each worker process as JSON in one environment
variable, so every worker of a multi-process server runs with exactly the same settings.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Tuple

from ..config import (EXCHANGE_FETCH_INTERVAL, SERVE_HOST, SERVE_MAX_BODY_BYTES, SERVE_PORT, SERVE_REFRESH_SECONDS,
                      SERVE_REQUEST_TIMEOUT, FETCH_MAX_BYTES, FETCH_TIMEOUT)
from ..errors import InvalidInputError
from .fetch import FetchPolicy

#: The environment variable that carries the settings to the worker processes.
CONFIG_ENV = "HASHMATCH_SERVE_CONFIG"


@dataclass(frozen=True)
class ServeConfig:
    """The settings of one server (every worker shares them)."""

    db: str
    host: str = SERVE_HOST
    port: int = SERVE_PORT
    workers: int = 1
    fetch_allow: Tuple[str, ...] = ()
    fetch_allow_private: Tuple[str, ...] = ()  # ip:port pairs exempt from the public-address rule (tests)
    fetch_max_bytes: int = FETCH_MAX_BYTES
    fetch_timeout: float = FETCH_TIMEOUT
    max_body_bytes: int = SERVE_MAX_BODY_BYTES
    request_timeout: float = SERVE_REQUEST_TIMEOUT
    refresh_seconds: float = SERVE_REFRESH_SECONDS
    exchange_interval: float = EXCHANGE_FETCH_INTERVAL  # seconds between exchange passes; 0: no fetching
    access_log: bool = True
    log_level: str = "info"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.db, str) or not self.db:
            raise InvalidInputError("--db must name the hash database (a SQLite path or a postgresql:// URL)")
        if not 0 < int(self.port) < 65536:
            raise InvalidInputError(f"--port must be in 1..65535, got {self.port}")
        if int(self.workers) < 1:
            raise InvalidInputError(f"--workers must be at least 1, got {self.workers}")
        for name in ("max_body_bytes", "fetch_max_bytes"):
            if int(getattr(self, name)) < 1:
                raise InvalidInputError(f"{name} must be a positive number of bytes")
        if not float(self.exchange_interval) >= 0:
            raise InvalidInputError("--exchange-interval must be 0 (off) or a positive number of seconds")
        for name in ("request_timeout", "fetch_timeout", "refresh_seconds"):
            if not float(getattr(self, name)) > 0:
                raise InvalidInputError(f"{name} must be a positive number of seconds")

    def fetch_policy(self) -> FetchPolicy:
        """The fetch policy these settings make."""
        return FetchPolicy(allow_hosts=tuple(self.fetch_allow), allow_private=tuple(self.fetch_allow_private),
                           max_bytes=int(self.fetch_max_bytes), timeout=float(self.fetch_timeout))

    def to_json(self) -> str:
        """The settings as JSON (what the workers read)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeConfig":
        """Settings from their JSON."""
        d = json.loads(text)
        d["fetch_allow"] = tuple(d.get("fetch_allow", ()))
        d["fetch_allow_private"] = tuple(d.get("fetch_allow_private", ()))
        return cls(**d)

    @classmethod
    def from_env(cls) -> "ServeConfig":
        """The settings the parent process put in the environment."""
        text = os.environ.get(CONFIG_ENV)
        if not text:
            raise InvalidInputError(f"${CONFIG_ENV} is not set: start the server with `hashmatch serve --db DB`")
        return cls.from_json(text)
