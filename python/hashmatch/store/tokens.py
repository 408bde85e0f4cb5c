"""API tokens of `hashmatch serve`: random secrets shown once, kept only as their SHA-256, each with a role.

A token is 32 random bytes (``hm_`` + URL-safe base64). Its SHA-256 is what the database holds,
so a copy of the database gives no working token. A lookup finds the row by digest and checks it
with a constant-time comparison; revoking keeps the row (who had access, and until when).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any, Dict, List, Optional

from ..errors import InvalidInputError

#: The roles a token may have; admin may call every route.
ROLES = ("hasher", "matcher", "curator", "admin")
PREFIX = "hm_"


def digest(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(store: Any, role: str, name: Optional[str] = None) -> str:
    """A new token with this role, stored hashed; the token itself is returned once and kept nowhere."""
    if role not in ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if store.read_only:
        raise InvalidInputError(f"{store.where} was opened read-only; open it without read_only to add tokens")
    token = PREFIX + secrets.token_urlsafe(32)
    with store.sql.write():
        tid = int(store.sql.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM api_tokens").fetchone()[0])
        store.sql.execute("INSERT INTO api_tokens (id, digest, role, name, created, revoked) VALUES (?, ?, ?, ?, ?, NULL)",
                          (tid, digest(token), role, name, time.time()))
    return token


def list_tokens(store: Any) -> List[Dict[str, Any]]:
    """Every token's id, role, name, creation and revocation time (never the token or its digest)."""
    rows = store.sql.execute("SELECT id, role, name, created, revoked FROM api_tokens ORDER BY id").fetchall()
    return [{"id": int(i), "role": r, "name": n, "created": c, "revoked": v} for i, r, n, c, v in rows]


def revoke_token(store: Any, token_id: int) -> bool:
    """Revoke a token by id; False when there is no such live token."""
    with store.sql.write():
        n = store.sql.execute("UPDATE api_tokens SET revoked = ? WHERE id = ? AND revoked IS NULL",
                              (time.time(), int(token_id))).rowcount
    return bool(n)


def token_role(store: Any, token: str) -> Optional[str]:
    """The role of a live token, or None for an unknown or revoked one."""
    if not isinstance(token, str) or not token.startswith(PREFIX) or len(token) > 200:
        return None
    wanted = digest(token)
    row = store.sql.execute("SELECT digest, role FROM api_tokens WHERE digest = ? AND revoked IS NULL",
                            (wanted,)).fetchone()
    if row is None or not hmac.compare_digest(row[0], wanted):
        return None
    return row[1]
