"""Tech Against Terrorism's TCAP hash list (``--api tat``) through python-threatexchange's TATHashListAPI.

Each page is fetched with a fresh JWT from ``token-auth/tcap/`` (the client's way) and read
``after`` the checkpoint the previous page gave (``"<timestamp>,<id>"``), so a resume needs no
page URL. ``deleted`` entries become tombstones. Algorithms: PDQ, MD5 (video_md5 for video
files), SHA1, SHA256; any other is kept exactly in the entry's metadata, with the ideology and
file type. The client's BASE_URL is a class constant: ours sets it per client.

Settings: ``url`` (a base URL instead of app.terrorismanalytics.org). Credentials: ``user:password``.
TCAP takes no feedback through this API.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, Optional

from ..store import Record
from . import values
from .base import Adapter, Page, require_threatexchange, session, timeout_of
from .credentials import split_pair

_VIDEO_TYPES = ("mp4", "webm", "mov", "avi", "mkv", "video", "gif")


def _client_class() -> Any:
    require_threatexchange()
    from threatexchange.exchanges.clients.techagainstterrorism.api import TATHashListAPI

    class Client(TATHashListAPI):
        """TATHashListAPI at any base URL, with our transport."""

        def __init__(self, username: str, password: str, url: Optional[str], timeout: float) -> None:
            super().__init__(username, password)
            if url:
                self.BASE_URL = url.rstrip("/") + "/"
            self.timeout = timeout

        @contextlib.contextmanager
        def _get_session(self, auth_token: Optional[str] = None) -> Iterator[Any]:
            s = session(self.timeout)
            if auth_token:
                s.headers.update({"Authorization": f"Bearer {auth_token}"})
            try:
                yield s
            finally:
                s.close()

    return Client


class TAT(Adapter):
    """The TCAP hash list, oldest change first."""

    api = "tat"
    credential_env = "PYTX_TAT_CREDENTIALS"
    credential_file = "~/.pytx_tat_credentials"
    config_keys = ("url",)

    def pages(self, checkpoint: Optional[Dict[str, Any]]) -> Iterator[Page]:
        """Each page after the checkpoint."""
        user, password = split_pair(self.credentials or "", ":", "user:password (TCAP)")
        client = _client_class()(user, password, self.config.get("url"), timeout_of(self.config))
        after = str((checkpoint or {}).get("after", ""))
        while True:
            resp = self.retry(f"hash list after {after or 'the start'}",
                              lambda: client.fetch_hashes(next_page="", after=after))
            records = [self.entry(e) for e in resp.results]
            more = bool(resp.next) and bool(resp.results)
            after = resp.checkpoint or after
            yield Page(records, {"after": after}, done=not more)
            if not more:
                return

    def entry(self, e: Any) -> Record:
        """A store record of one TATHashListEntry."""
        ext = str(e.id)
        media = "video" if str(e.file_type).lower() in _VIDEO_TYPES else "image"
        if e.deleted:
            return self.record(ext, media, [], deleted=True)
        algorithm = str(e.algorithm).upper()
        names = {"PDQ": "pdq", "MD5": "video_md5" if media == "video" else "md5",
                 "SHA1": "video_sha1" if media == "video" else "sha1",
                 "SHA256": "video_sha256" if media == "video" else "sha256"}
        fps, unparsed = values.fingerprints(None, {algorithm: e.hash_digest}, media, names=names)
        ideology = getattr(e.ideology, "value", e.ideology)
        return self.record(ext, media, fps, classification=str(ideology), ideology=ideology, file_type=e.file_type,
                           created=str(e.created_on), last_updated=e.updated_on, algorithm=algorithm,
                           unparsed=unparsed)
