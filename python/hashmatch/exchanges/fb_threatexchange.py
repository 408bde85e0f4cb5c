"""Meta's ThreatExchange (``--api fb_threatexchange``) through python-threatexchange's ThreatExchangeAPI.

The Graph API's ``/{privacy group}/threat_updates`` over a start/stop window, page by page with
its cursors. The saved cursor URL has its ``access_token`` removed (credentials never reach the
database) and it is put back from the credentials on resume. ``should_delete`` tombstones an
entry. Hash types: HASH_PDQ (pdq), HASH_MD5 (video_md5, as python-threatexchange reads it),
HASH_TMK (tmk_pdqf when it parses); any other type is kept exactly in the entry's metadata.
Tags become the entry's labels; status and opinions go in its metadata. The client's
get_json_from_url has no timeout (and no retries): ours adds both.

Settings: ``privacy_group`` (required), ``url`` (a Graph API base URL instead of
graph.facebook.com), ``start`` (Unix time), ``page_size``. Credentials: an app access token.
"""

from __future__ import annotations

import re
import time
from typing import Any, Dict, Iterator, Optional

from .. import config
from ..errors import CredentialsError, ExchangeConfigError
from ..store import Record
from . import values
from .base import Adapter, Page, require_threatexchange, session, timeout_of

TYPES = {"HASH_PDQ": "pdq", "HASH_MD5": "video_md5", "HASH_TMK": "tmk_pdqf"}


def _client_class() -> Any:
    require_threatexchange()
    from threatexchange.exchanges.clients.fb_threatexchange.api import ThreatExchangeAPI

    class Client(ThreatExchangeAPI):
        """ThreatExchangeAPI whose GETs time out (the original's get_json_from_url waits forever)."""

        def __init__(self, token: str, url: Optional[str], timeout: float) -> None:
            super().__init__(token, endpoint_override=url)
            self.timeout = timeout

        def get_json_from_url(self, url: str, params: Any = None, *, json_obj_hook: Any = None) -> Any:
            with session(self.timeout) as s:
                response = s.get(url, params=params or {})
                response.raise_for_status()
                return response.json(object_hook=json_obj_hook)

    return Client


def without_token(url: Optional[str]) -> Optional[str]:
    """A cursor URL without its access_token parameter."""
    if url is None:
        return None
    return re.sub(r"([?&])access_token=[^&]*&?", r"\1", url).rstrip("&?")


class FBThreatExchange(Adapter):
    """ThreatExchange's threat_updates for one privacy group."""

    api = "fb_threatexchange"
    credential_env = "TX_ACCESS_TOKEN"
    credential_file = "~/.txtoken"
    config_keys = ("privacy_group", "url", "start", "page_size")

    @classmethod
    def check_config(cls, cfg: Dict[str, Any]) -> Dict[str, Any]:
        """privacy_group is required (an integer id)."""
        out = super().check_config(cfg)
        try:
            out["privacy_group"] = int(out["privacy_group"])
        except (KeyError, TypeError, ValueError):
            raise ExchangeConfigError("fb_threatexchange needs --config '{\"privacy_group\": ID}'") from None
        return out

    def pages(self, checkpoint: Optional[Dict[str, Any]]) -> Iterator[Page]:
        """Each threat_updates page of the window from the checkpoint's start to when the window began."""
        token = (self.credentials or "").strip()
        if not token:
            raise CredentialsError("ThreatExchange credentials must be an app access token")
        client = _client_class()(token, self.config.get("url"), timeout_of(self.config))
        cp = dict(checkpoint or {})
        start = int(cp.get("start", self.config.get("start", 0)))
        stop = cp.get("stop") or int(time.time())
        cursor = client.get_threat_updates(int(self.config["privacy_group"]), start_time=start, stop_time=stop,
                                           page_size=int(self.config.get("page_size",
                                                                         config.THREATEXCHANGE_PAGE_SIZE)))
        if cp.get("next"):
            cursor.next_url, cursor.params = cp["next"], {"access_token": token}
        while True:
            data = self.retry(f"threat_updates {start}..{stop}", cursor.next)
            records = [self.update(u) for u in data]
            if cursor.done:
                yield Page(records, {"start": stop, "stop": None, "next": None}, done=True)
                return
            yield Page(records, {"start": start, "stop": stop, "next": without_token(cursor.next_url)})

    def update(self, u: Dict[str, Any]) -> Record:
        """A store record of one threat_updates item."""
        ext = str(u["id"])
        kind = str(u.get("type", ""))
        fmt = TYPES.get(kind)
        media = "video" if fmt in ("video_md5", "tmk_pdqf") else "image"
        if u.get("should_delete") or "indicator" not in u:
            return self.record(ext, media, [], deleted=True)
        fps, unparsed = values.fingerprints(None, {kind: u["indicator"]}, media, names=TYPES)
        tags = u.get("tags") or []
        if isinstance(tags, dict):
            tags = [t["text"] for t in tags.get("data", [])]
        return self.record(ext, media, fps, labels=[str(t) for t in tags], type=kind, status=u.get("status"),
                           created=u.get("creation_time"), last_updated=u.get("last_updated"),
                           opinions=u.get("applications_with_opinions"),
                           privacy_group=int(self.config["privacy_group"]), unparsed=unparsed)
