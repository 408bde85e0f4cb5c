"""Structured logs: one JSON object per line on stderr, never a token or a request body."""

from __future__ import annotations

import json
import logging
import os
import time

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line: time, level, logger, message, pid and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        out = {"ts": round(record.created, 3), "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
               "pid": os.getpid()}
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key != "color_message":
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def log_config(level: str = "info") -> dict:
    """A logging.config dict sending hashmatch's and uvicorn's logs as JSON lines to stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    lvl = level.upper()
    return {"version": 1, "disable_existing_loggers": False,
            "formatters": {"json": {"()": JsonFormatter}},
            "handlers": {"stderr": handler},
            "loggers": {"hashmatch": {"handlers": ["stderr"], "level": lvl, "propagate": False},
                        "uvicorn": {"handlers": ["stderr"], "level": lvl, "propagate": False},
                        "uvicorn.error": {"handlers": ["stderr"], "level": lvl, "propagate": False},
                        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False}}}


