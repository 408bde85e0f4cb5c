"""A local hash-list file as an exchange (``--api file``): any list hashmatch.lists reads, kept in sync.

Each fetch reads the file again when its SHA-256 changed: every entry is upserted (keyed by its
external_id, else its uid, else its first fingerprint) and the entries of this exchange the file
no longer lists become tombstones, all in one transaction with the new checkpoint.

Settings: ``path`` (required), ``format`` (the lists/ format when the suffix does not say it).
No credentials, no feedback.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from .. import lists
from ..errors import ExchangeConfigError
from ..store import Record
from .base import Adapter, Page


class File(Adapter):
    """A hash-list file on this machine."""

    api = "file"
    config_keys = ("path", "format")
    prefetch = False  # it reads the store's keys

    @classmethod
    def check_config(cls, cfg: Dict[str, Any]) -> Dict[str, Any]:
        """path is required."""
        out = super().check_config(cfg)
        if not out.get("path"):
            raise ExchangeConfigError("the file exchange needs --config '{\"path\": \"list.csv\"}'")
        out["path"] = str(Path(out["path"]).expanduser().resolve())
        return out

    def pages(self, checkpoint: Optional[Dict[str, Any]]) -> Iterator[Page]:
        """One page: the whole file, when it changed since the checkpoint."""
        path = Path(self.config["path"])
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if (checkpoint or {}).get("sha256") == digest:
            yield Page([], dict(checkpoint or {}), done=True)
            return
        records = [self.keyed(r) for r in lists.read_file(path, fmt=self.config.get("format"))]
        keep = {r.external_id for r in records}
        gone = [self.record(ext, "image", [], deleted=True) for ext in self.store_keys() if ext not in keep]
        yield Page(records + gone, {"sha256": digest}, done=True)

    def keyed(self, r: Record) -> Record:
        """A list record as this exchange's entry: keyed, in its bank, its provenance added to its metadata."""
        key = r.external_id or r.uid or (f"{r.fingerprints[0].format}:{r.fingerprints[0].value}"
                                         if r.fingerprints else "")
        if not key:
            raise ExchangeConfigError(f"{self.config['path']}: an entry has no id and no fingerprint")
        metadata = dict(r.metadata)
        metadata.update(self.provenance(key, file=self.config["path"], source=r.source))
        return dataclasses.replace(r, source=self.name, external_id=key, bank=self.settings.bank, uid=None,
                                   metadata=metadata, id=None)

    def store_keys(self) -> List[str]:
        """The ids of this exchange's live entries in the store."""
        if self.store is None:
            return []
        return [row[0] for row in self.store.sql.execute(
            "SELECT external_id FROM entries WHERE source = ? AND deleted = 0", (self.name,)).fetchall()]
