"""NCMEC hash sharing (``--api ncmec``) through python-threatexchange's NCMECHashAPI.

Where we differ from HMA's NCMEC adapter (threatexchange.exchanges.impl.ncmec_api): every
fingerprint of every entry is kept (HMA keeps only PDQ and MD5): PhotoDNA, NetClean,
Videntifier, SHA1, TMK+PDQF and the SSVH types become their signals' fingerprints, and a type
no signal names is kept exactly in the entry's metadata; a killed fetch resumes inside its time
window from the saved ``next`` link with the same from/to (the client's warning in
get_entries_iter), never from the beginning.

Settings: ``environment`` (an NCMECEnvironment name: Industry, NGO, Exploitative, ...; default
Industry), ``url`` (a base URL instead, for a proxy or a test server), ``start`` (Unix time to
begin from, default 0), ``negative_reason`` (the feedback reason GUID for false positives when the
API offers more than one). Credentials: ``user:password``.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterator, List, Optional

from ..errors import ExchangeConfigError, ExchangeError
from ..signals import to_external
from ..store import Record
from . import values
from .base import Adapter, Page, http_adapter, require_threatexchange, timeout_of
from .credentials import split_pair


def _client_class() -> Any:
    require_threatexchange()
    from threatexchange.exchanges.clients.ncmec import hash_api

    class Client(hash_api.NCMECHashAPI):
        """NCMECHashAPI at any base URL, with our transport (timeouts; retries done by our Retrier)."""

        def __init__(self, username: str, password: str, base_url: str, timeout: float) -> None:
            super().__init__(username, password, hash_api.NCMECEnvironment.Industry)
            self._base_url = base_url.rstrip("/")  # the client has no constructor argument for it
            self.timeout = timeout

        def _get_session(self) -> Any:
            s = super()._get_session()
            s.mount(self._base_url, http_adapter(self.timeout))
            return s

    return Client


class NCMEC(Adapter):
    """NCMEC's hash sharing API: XML ``entries`` pages with ``next`` links over a from/to time window."""

    api = "ncmec"
    credential_env = "TX_NCMEC_CREDENTIALS"
    credential_file = "~/.tx_ncmec_credentials"
    config_keys = ("environment", "url", "start", "negative_reason")
    feedback_kind = "upvote (true positive) or downvote (false positive) of each fingerprint of the entry"

    @classmethod
    def check_config(cls, cfg: Dict[str, Any]) -> Dict[str, Any]:
        """Known keys; the environment must be one python-threatexchange names."""
        out = super().check_config(cfg)
        if "environment" in out and "url" not in out:
            require_threatexchange()
            from threatexchange.exchanges.clients.ncmec.hash_api import NCMECEnvironment
            if out["environment"] not in NCMECEnvironment.__members__:
                raise ExchangeConfigError(f"--config environment {out['environment']!r}: one of "
                                          f"{', '.join(NCMECEnvironment.__members__)}")
        return out

    def client(self) -> Any:
        """The NCMEC client for these settings and credentials."""
        cls = _client_class()
        from threatexchange.exchanges.clients.ncmec.hash_api import NCMECEnvironment
        url = self.config.get("url") or NCMECEnvironment[self.config.get("environment", "Industry")].value
        user, password = split_pair(self.credentials or "", ":", "user:password (NCMEC)")
        return cls(user, password, url, timeout_of(self.config))

    def pages(self, checkpoint: Optional[Dict[str, Any]]) -> Iterator[Page]:
        """Each entries page of the window from the checkpoint's start to the time this window began."""
        client = self.client()
        cp = dict(checkpoint or {})
        start = int(cp.get("start", self.config.get("start", 0)))
        end = cp.get("end") or int(time.time())
        next_ = cp.get("next", "")
        while True:
            resp = self.retry(f"entries {start}..{end}",
                              lambda: client.get_entries(start_timestamp=start, end_timestamp=end, next_=next_))
            records = [self.entry(u) for u in resp.updates]
            next_ = resp.next or ""
            if next_:
                yield Page(records, {"start": start, "end": end, "next": next_})
            else:
                # The next window starts where this one ended (inclusive: an entry changed in that second is
                # fetched again, an idempotent upsert, rather than missed).
                yield Page(records, {"start": end, "end": None, "next": ""}, done=True)
                return

    def entry(self, u: Any) -> Record:
        """A store record of one NCMECEntryUpdate."""
        ext = f"{u.member_id}-{u.id}"
        media = u.entry_type.value
        if u.deleted:
            return self.record(ext, media, [], deleted=True)
        fps, unparsed = values.fingerprints("ncmec", dict(u.fingerprints), media)
        feedback = {kind: [{"vote": f.feedback_type.value, "member": f.member.esp_id,
                            "member_name": f.member.esp_name, **({"reason": f.reason} if f.reason else {})}
                           for f in fbs] for kind, fbs in u.feedback.items()}
        return self.record(ext, media, fps, classification=u.classification, member=u.member_id,
                           entry_id=u.id, entry_type=media, feedback=feedback, unparsed=unparsed)

    def send_feedback(self, record: Record, verdict: str) -> None:
        """An upvote or a downvote of each of the entry's fingerprint types NCMEC takes feedback on."""
        from threatexchange.exchanges.clients.ncmec.hash_api import FeedbackType, FingerprintType

        prov = record.metadata.get("exchange", {})
        if "member" not in prov or "entry_id" not in prov:
            raise ExchangeError(f"entry {record.uid} has no NCMEC member and entry id in its metadata")
        kinds: List[Any] = []
        for fp in record.fingerprints:
            try:
                kinds.append(FingerprintType(to_external("ncmec", fp.format)))
            except Exception:  # noqa: BLE001 - a format NCMEC takes no feedback on
                continue
        if not kinds:
            raise ExchangeError(f"entry {record.uid} holds no fingerprint NCMEC takes feedback on")
        client = self.client()
        vote = FeedbackType.upvote if verdict == "true_positive" else FeedbackType.downvote
        for kind in dict.fromkeys(kinds):
            self.retry(f"feedback {kind.value} on {prov['entry_id']}", lambda: client.submit_feedback(
                int(prov["member"]), str(prov["entry_id"]), kind, vote, self.config.get("negative_reason")))
