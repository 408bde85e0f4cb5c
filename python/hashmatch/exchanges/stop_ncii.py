"""StopNCII (``--api stop_ncii``) through python-threatexchange's StopNCIIAPI.

Where we differ from HMA's StopNCII adapter (threatexchange.exchanges.impl.stop_ncii_api):
withdrawals are applied (a record whose ``hashStatus`` is Withdrawn or Deleted tombstones its
entry; HMA's delta compares ``hashValue`` where it means ``hashStatus``, so it never deletes),
``VideoTMK`` is kept (as TMK+PDQF when it parses, else exactly as sent), and a record the
client's dataclass conversion drops (an unknown signalType or status) is still kept, exactly,
from the raw page. A page token that has expired restarts the window from its start timestamp
(upserts are idempotent), never from the beginning.

Settings: ``url`` (base URL instead of https://api.stopncii.org/v1), ``start`` (Unix time),
``page_size`` (default config.STOPNCII_PAGE_SIZE). Credentials: ``fetch_function_key,subscription_key``
(python-threatexchange's form) or a JSON object with those keys and ``feedback_function_key``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Optional, Tuple

from .. import config
from ..errors import CredentialsError, ExchangeError
from ..store import Record
from . import values
from .base import Adapter, Page, http_adapter, require_threatexchange, timeout_of

_MEDIA = {"ImagePDQ": "image", "VideoMD5": "video", "VideoTMK": "video"}


def _client_class() -> Any:
    require_threatexchange()
    from threatexchange.exchanges.clients.stopncii import api

    class Client(api.StopNCIIAPI):
        """StopNCIIAPI with our transport, keeping each FetchHashes page's raw JSON as well."""

        def __init__(self, *args: Any, timeout: float, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.timeout = timeout
            self.last_raw: Dict[str, Any] = {}

        def _get_session(self, endpoint: Any) -> Any:
            s = super()._get_session(endpoint)
            s.mount(self._base_url, http_adapter(self.timeout))
            return s

        def _get(self, endpoint: Any, **params: Any) -> Any:
            # fetch_hashes drops records its dataclasses cannot convert: keep the raw page to recover them.
            self.last_raw = super()._get(endpoint, **params)
            return self.last_raw

    return Client


def parse_credentials(text: str) -> Tuple[str, str, Optional[str]]:
    """(fetch function key, subscription key, feedback function key or None)."""
    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
            return obj["fetch_function_key"], obj["subscription_key"], obj.get("feedback_function_key")
        except (ValueError, KeyError, TypeError):
            raise CredentialsError("StopNCII credentials JSON needs fetch_function_key and subscription_key"
                                   ) from None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise CredentialsError("StopNCII credentials must be fetch_function_key,subscription_key")
    return parts[0], parts[1], None


class StopNCII(Adapter):
    """StopNCII's FetchHashes: JSON pages with page tokens from a start timestamp."""

    api = "stop_ncii"
    credential_env = "TX_STOPNCII_KEYS"
    credential_file = "~/.tx_stopncii_keys"
    config_keys = ("url", "start", "page_size")
    feedback_kind = "SubmitFeedback: Blocked (true positive) or NotBlocked (false positive)"

    def client(self) -> Any:
        """The StopNCII client for these settings and credentials."""
        from threatexchange.exchanges.clients.stopncii.api import StopNCIIEndpoint
        fetch_key, sub_key, feedback_key = parse_credentials(self.credentials or "")
        extra = {StopNCIIEndpoint.SubmitFeedback: feedback_key} if feedback_key else {}
        return _client_class()(sub_key, fetch_key, extra, self.config.get("url"), timeout=timeout_of(self.config))

    def pages(self, checkpoint: Optional[Dict[str, Any]]) -> Iterator[Page]:
        """Each FetchHashes page since the checkpoint's start timestamp."""
        client = self.client()
        cp = dict(checkpoint or {})
        start = int(cp.get("start", self.config.get("start", 10)))
        token = cp.get("next", "")
        size = int(self.config.get("page_size", config.STOPNCII_PAGE_SIZE))
        while True:
            try:
                resp = self.retry(f"FetchHashes from {start}", lambda: client.fetch_hashes(
                    page_size=size, start_timestamp=start, next_page=token))
            except ExchangeError:
                if not token:
                    raise
                token = ""  # an expired page token: this window again from its start
                continue
            records = self.page_records(resp, client.last_raw)
            if resp.hasMoreRecords and resp.nextPageToken:
                token = resp.nextPageToken
                yield Page(records, {"start": start, "next": token})
            else:
                yield Page(records, {"start": max(start, int(resp.nextSetTimestamp or start)), "next": ""}, done=True)
                return

    def page_records(self, resp: Any, raw: Dict[str, Any]) -> List[Record]:
        """Records of one page: those the client parsed, then any raw record it dropped."""
        out = [self.hash_record(r) for r in resp.hashRecords]
        seen = {(r.signalType.value, r.hashValue) for r in resp.hashRecords}
        for r in raw.get("hashRecords", []):
            key = (str(r.get("signalType")), str(r.get("hashValue")))
            if key not in seen:
                out.append(self.record(f"{key[0]}:{key[1]}", "image", [], status=r.get("hashStatus"),
                                       last_modified=r.get("lastModtimestamp"), unparsed={key[0]: key[1]}))
        return out

    def hash_record(self, r: Any) -> Record:
        """A store record of one StopNCIIHashRecord (a tombstone when withdrawn or deleted)."""
        kind = r.signalType.value
        ext = f"{kind}:{r.hashValue}"
        media = _MEDIA.get(kind, "image")
        if r.hashStatus.value in ("Withdrawn", "Deleted"):
            return self.record(ext, media, [], deleted=True)
        fps, unparsed = values.fingerprints("stopncii", {kind: r.hashValue}, media)
        feedbacks = [{"value": f.feedbackValue.value, "tags": sorted(f.tags), "source": f.source}
                     for f in r.CSPFeedbacks]
        return self.record(ext, media, fps, status=r.hashStatus.value, last_modified=r.lastModtimestamp,
                           cases={k: v.value for k, v in r.caseNumbers.items()}, feedback=feedbacks,
                           signal_type=kind, unparsed=unparsed)

    def send_feedback(self, record: Record, verdict: str) -> None:
        """SubmitFeedback on the entry's hash: Blocked for a true positive, NotBlocked for a false one."""
        from threatexchange.exchanges.clients.stopncii.api import StopNCIICSPFeedbackValue, StopNCIISignalType

        if parse_credentials(self.credentials or "")[2] is None:
            raise CredentialsError("StopNCII feedback needs a feedback_function_key in the credentials (JSON form)")
        kind, _, value = (record.external_id or "").partition(":")
        value_of = {"true_positive": StopNCIICSPFeedbackValue.Blocked,
                    "false_positive": StopNCIICSPFeedbackValue.NotBlocked}[verdict]
        client = self.client()
        self.retry(f"SubmitFeedback on {kind}", lambda: client.submit_feedback(
            StopNCIISignalType(kind), value, value_of))
