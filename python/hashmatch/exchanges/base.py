"""What every exchange adapter shares: a page of changes with its checkpoint, retries, an HTTP session.

An adapter turns one API's pages into store records keyed by (exchange name, the exchange's
own id): upserts carry every fingerprint and the provenance; deletions and withdrawals are
records with ``deleted=True``. The fetch loop (exchanges.fetch) commits each page together
with the checkpoint that follows it, so an adapter's pages must be resumable from any
checkpoint it has yielded.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, TypeVar

from .. import config
from ..errors import CredentialsError, ExchangeConfigError, ExchangeError, ExchangeUnavailableError
from ..errors import MissingDependencyError
from ..store import Record

log = logging.getLogger("hashmatch.exchanges")
T = TypeVar("T")

#: The verdicts a reviewer gives a match, as `exchange feedback` takes them.
VERDICTS = ("true_positive", "false_positive")


def require_threatexchange() -> None:
    """Raise MissingDependencyError unless python-threatexchange (the exchange clients) is importable."""
    try:
        import threatexchange  # noqa: F401
    except ImportError:
        raise MissingDependencyError("live exchanges use python-threatexchange's clients: "
                                     "pip install 'hashmatch[exchanges]'") from None


@dataclass
class Page:
    """One page of an exchange's changes and the checkpoint to resume after it."""

    records: List[Record]
    checkpoint: Dict[str, Any]
    done: bool = False  # the pass has reached the end of what the exchange has now


@dataclass
class Settings:
    """An exchange as configured: its name, API, bank and settings (never its credentials)."""

    name: str
    api: str
    bank: str
    config: Dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    created: Optional[float] = None
    updated: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        """The settings as a JSON-ready dict."""
        return {"name": self.name, "api": self.api, "bank": self.bank, "config": self.config,
                "enabled": self.enabled, "created": self.created, "updated": self.updated}


class Adapter:
    """One exchange API. Subclasses set ``api``, ``credential_env`` and ``credential_file`` and implement pages()."""

    api = ""
    #: python-threatexchange's environment variable and file for this API's credentials.
    credential_env = ""
    credential_file = ""
    #: Settings keys this adapter takes (anything else in --config is refused).
    config_keys: tuple = ()
    #: Whether fetch() runs pages() in a child process one page ahead (HTTP adapters; not those reading the store).
    prefetch = True
    #: What feedback this API takes; None when it takes none.
    feedback_kind: Optional[str] = None

    def __init__(self, settings: Settings, credentials: Optional[str]) -> None:
        self.settings = settings
        self.name = settings.name
        self.config = settings.config
        self.credentials = credentials
        self.retry = Retrier(self.name, self.config)
        self.store: Any = None  # set by the fetch loop for adapters that compare with what is stored (file)

    @classmethod
    def check_config(cls, cfg: Dict[str, Any]) -> Dict[str, Any]:
        """The settings checked: only known keys (credentials are refused here: they never go in the database)."""
        common = ("timeout", "attempts", "backoff", "credentials_file")
        for key in cfg:
            if re.search(r"pass|secret|token|key|credential", key) and key != "credentials_file":
                raise ExchangeConfigError(f"--config {key!r}: credentials never go in the database; set them in "
                                          f"${cls.credential_env} or an owner-only file (credentials_file)")
            if key not in cls.config_keys + common:
                raise ExchangeConfigError(f"--config: unknown setting {key!r} for {cls.api}; known: "
                                          f"{', '.join(sorted(cls.config_keys + common))}")
        return dict(cfg)

    def pages(self, checkpoint: Optional[Dict[str, Any]]) -> Iterator[Page]:
        """The changes since `checkpoint` (None: from the beginning), page by page."""
        raise NotImplementedError

    def send_feedback(self, record: Record, verdict: str) -> None:
        """Tell the exchange a reviewer's verdict on one of its entries."""
        raise ExchangeError(f"exchange {self.name!r} ({self.api}) takes no feedback")

    def provenance(self, exchange_id: str, **fields: Any) -> Dict[str, Any]:
        """An entry's metadata: where it came from, under key "exchange" (lists/ exports carry it)."""
        prov = {"name": self.name, "api": self.api, "id": exchange_id}
        prov.update({k: v for k, v in fields.items() if v is not None and v != {} and v != []})
        return {"exchange": prov}

    def record(self, exchange_id: str, media_type: str, fingerprints: list, *, deleted: bool = False,
               classification: Optional[str] = None, labels: Optional[List[str]] = None,
               updated: Optional[float] = None, **provenance: Any) -> Record:
        """A store record keyed by (this exchange, its id), in this exchange's bank."""
        return Record(media_type, fingerprints, source=self.name, external_id=exchange_id,
                      labels=sorted(set(labels or [])), classification=classification, bank=self.settings.bank,
                      deleted=deleted, updated=updated,
                      metadata={} if deleted else self.provenance(exchange_id, **provenance))


# ----- retries -----------------------------------------------------------------------------------
class Retryable(Exception):
    """A failure worth another attempt (5xx, 429, a timeout, a truncated or unparsable body)."""

    def __init__(self, message: str, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def redact(text: str) -> str:
    """A message without secrets: access tokens in URLs, basic-auth passwords, bearer tokens."""
    text = re.sub(r"(access_token=)[^&\s'\"]+", r"\1***", str(text))
    text = re.sub(r"://([^:/@\s]+):[^@/\s]+@", r"://\1:***@", text)
    return re.sub(r"(Bearer\s+)[A-Za-z0-9._\-]+", r"\1***", text)


class Retrier:
    """Runs one request until it succeeds, waiting with exponential backoff (or Retry-After) between tries."""

    def __init__(self, name: str, cfg: Dict[str, Any], sleep: Callable[[float], None] = time.sleep) -> None:
        self.name = name
        self.attempts = int(cfg.get("attempts", config.EXCHANGE_ATTEMPTS))
        self.backoff = float(cfg.get("backoff", config.EXCHANGE_BACKOFF))
        self.sleep = sleep
        self.retries = 0  # over this adapter's life, for reports

    def __call__(self, what: str, fn: Callable[[], T]) -> T:
        """fn() until it returns; ExchangeUnavailableError after the last attempt, ExchangeError at once on a 4xx."""
        wait = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except Exception as e:  # noqa: BLE001 - classified below: retried, or raised as ours
                failure = classify(e)
                if failure is None:
                    raise
                if not isinstance(failure, Retryable):
                    raise failure from None
                if attempt == self.attempts:
                    raise ExchangeUnavailableError(f"{self.name}: {what} failed {attempt} times; last: "
                                                   f"{redact(str(failure))}") from None
                delay = min(wait, config.EXCHANGE_MAX_BACKOFF) * (0.5 + random.random() / 2)
                if failure.retry_after is not None:
                    delay = max(delay, min(failure.retry_after, config.EXCHANGE_MAX_RETRY_AFTER))
                log.warning("%s: %s: %s; attempt %d of %d in %.1fs", self.name, what, redact(str(failure)),
                            attempt + 1, self.attempts, delay)
                self.retries += 1
                self.sleep(delay)
                wait *= 2
        raise AssertionError("unreachable")


def classify(e: BaseException) -> Optional[Exception]:
    """A Retryable, an ExchangeError to raise at once, or None for an error that is not the exchange's."""
    import requests

    if isinstance(e, (Retryable, ExchangeError)):
        return e
    if isinstance(e, requests.HTTPError) and e.response is not None:
        status = e.response.status_code
        if status == 429 or status >= 500:
            return Retryable(f"HTTP {status}", _retry_after(e.response.headers.get("Retry-After")))
        if status in (401, 403):
            return CredentialsError(f"the exchange refused our credentials (HTTP {status}); check them")
        return ExchangeError(f"the exchange refused the request: HTTP {status} {redact(e.response.text[:200])}")
    if isinstance(e, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                      requests.exceptions.ContentDecodingError, requests.exceptions.RetryError)):
        return Retryable(f"{type(e).__name__}: {redact(str(e))[:300]}")
    if isinstance(e, (ET.ParseError, json.JSONDecodeError)):
        return Retryable(f"unparsable (truncated?) body: {e}")
    if isinstance(e, requests.RequestException):
        return Retryable(f"{type(e).__name__}: {redact(str(e))[:300]}")
    return None


def _retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our backoff


def http_adapter(timeout: float) -> Any:
    """A requests transport adapter whose requests time out after `timeout` and are never retried by
    urllib3: our Retrier does every retry, so Retry-After, truncated bodies and timeouts are handled alike
    (python-threatexchange's clients mount urllib3 retries of 60 s timeouts that never see a truncated body)."""
    from requests.adapters import HTTPAdapter

    class _Adapter(HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout
            return super().send(request, **kwargs)

    return _Adapter(max_retries=0)


def session(timeout: float) -> Any:
    """A requests session with http_adapter(timeout) for every URL."""
    import requests

    s = requests.Session()
    adapter = http_adapter(timeout)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


def timeout_of(cfg: Dict[str, Any]) -> float:
    """The request timeout an exchange's settings give (default config.EXCHANGE_TIMEOUT)."""
    value = cfg.get("timeout", config.EXCHANGE_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ExchangeConfigError(f"--config timeout must be a positive number of seconds, got {value!r}")
    return float(value)
