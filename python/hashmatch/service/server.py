"""Starting the server: check the database once, then uvicorn with N worker processes.

The parent checks the database before any worker starts: a missing or unreadable database is an
error at the command line, not N crashing workers. It does not load the index: each worker opens
its own store (its own connection) and the saved index beside the database, so the time to the
first answer is one index load, not two. An older schema is upgraded by the first worker to open
it (inside the write lock; the others then find it current). Settings reach the
workers as JSON in $HASHMATCH_SERVE_CONFIG; metrics go to a fresh multiprocess directory. The
parent also schedules the exchanges' passes (service.fetcher), each in a process of its own.
"""

from __future__ import annotations

import importlib.util
import logging.config
import os
import shutil
import tempfile

from ..errors import InvalidInputError
from ..store.backends import open_backend
from .fetcher import ExchangeFetcher
from .logs import log_config
from .settings import CONFIG_ENV, ServeConfig


def prepare_database(config: ServeConfig) -> None:
    """Check that the database exists and is a hash database, without loading its index (the workers do)."""
    backend = open_backend(config.db, create=False, read_only=True)
    try:
        if not backend.table_exists("meta"):
            raise InvalidInputError(f"{backend.where} is not a hashmatch database (no meta table)")
    finally:
        backend.close()


def run(config: ServeConfig) -> None:
    """Serve until stopped."""
    import uvicorn

    logging.config.dictConfig(log_config(config.log_level))
    prepare_database(config)
    metrics_dir = tempfile.mkdtemp(prefix="hashmatch-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    os.environ[CONFIG_ENV] = config.to_json()
    fast = importlib.util.find_spec("httptools") is not None
    fetcher = ExchangeFetcher(config.db, config.exchange_interval, config.log_level).start() \
        if config.exchange_interval > 0 else None
    try:
        uvicorn.run("hashmatch.service.app:app_from_env", factory=True, host=config.host, port=int(config.port),
                    workers=int(config.workers), log_config=log_config(config.log_level), access_log=False,
                    http="httptools" if fast else "h11",
                    loop="uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio",
                    timeout_graceful_shutdown=10, timeout_keep_alive=5, server_header=False,
                    h11_max_incomplete_event_size=64 * 1024, limit_concurrency=2048, backlog=2048)
    finally:
        if fetcher is not None:
            fetcher.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
