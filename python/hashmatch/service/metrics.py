"""Prometheus metrics of every worker, summed over the workers when /metrics is scraped.

prometheus_client's multiprocess mode: each worker writes its samples to files in one
directory (``PROMETHEUS_MULTIPROC_DIR``, made by ``hashmatch serve`` for each run), and
whichever worker answers /metrics reads them all. Paths are recorded by their route template
(``/c/bank/{bank_name}``), never the raw URL, so the label set stays bounded.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST, multiprocess

REQUESTS = Counter("hashmatch_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram("hashmatch_request_seconds", "Time to answer a request", ["route"],
                    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120))
LOOKUPS = Counter("hashmatch_lookups_total", "Lookups answered (by route)", ["route"])
ERRORS = Counter("hashmatch_errors_total", "Answers with status >= 400", ["status"])
INDEX_SIZE = Gauge("hashmatch_index_size", "Codes in the Hamming indexes", multiprocess_mode="mostrecent")
INDEX_GENERATION = Gauge("hashmatch_index_generation", "Change-log generation the index is at",
                         multiprocess_mode="min")
INDEX_AGE = Gauge("hashmatch_index_age_seconds", "Seconds since a worker last checked the change log (the stalest)",
                  multiprocess_mode="max")
INDEX_CHANGED = Gauge("hashmatch_index_changed_timestamp_seconds", "When a worker last applied a change",
                      multiprocess_mode="max")

LOOKUP_ROUTES = {"/m/raw_lookup", "/m/lookup", "/v1/lookup", "/v1/lookup/media"}


_CHILDREN: dict = {}


def observe(route: str, method: str, status: int, seconds: float) -> None:
    """Record one answered request."""
    key = (route, method, status)
    found = _CHILDREN.get(key)
    if found is None:  # label lookups once per (route, method, status): this runs on every request
        found = (REQUESTS.labels(route, method, str(status)), LATENCY.labels(route),
                 ERRORS.labels(str(status)) if status >= 400 else LOOKUPS.labels(route) if route in LOOKUP_ROUTES
                 else None)
        _CHILDREN[key] = found
    found[0].inc()
    found[1].observe(seconds)
    if found[2] is not None:
        found[2].inc()


def index_state(stats: Any) -> None:
    """Record a worker's index state."""
    if stats.get("ready"):
        INDEX_SIZE.set(stats["size"])
        INDEX_GENERATION.set(stats["generation"])
        INDEX_AGE.set(stats["age"])
        INDEX_CHANGED.set(stats["changed_at"])


def exposition() -> bytes:
    """Every worker's metrics in the Prometheus text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


CONTENT_TYPE = CONTENT_TYPE_LATEST
