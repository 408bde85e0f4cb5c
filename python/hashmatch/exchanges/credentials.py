"""Exchange credentials: from the environment or a file only its owner can read; never the database or logs.

For an exchange named NAME, the first of these that is set wins:
  1. ``$HASHMATCH_<NAME>_CREDENTIALS`` (the name upper-cased, other characters as ``_``);
  2. the file named by the exchange's ``credentials_file`` setting (a path, not a secret);
  3. python-threatexchange's variable for the API (``TX_NCMEC_CREDENTIALS``, ``TX_STOPNCII_KEYS``,
     ``TX_ACCESS_TOKEN``, ``PYTX_TAT_CREDENTIALS``) and then its file (``~/.tx_ncmec_credentials``,
     ``~/.tx_stopncii_keys``, ``~/.txtoken``, ``~/.pytx_tat_credentials``).
The text is in python-threatexchange's form for the API (``user:password``, ``fetch_key,subscription_key``,
an app token). A file that its group or others may read is refused, as ssh refuses a private key.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Optional, Tuple

from .. import config
from ..errors import CredentialsError


def env_name(exchange: str) -> str:
    """The environment variable holding one exchange's credentials."""
    return config.EXCHANGE_CREDENTIALS_ENV.format(NAME=re.sub(r"[^A-Za-z0-9]", "_", exchange).upper())


def read_file(path: Path) -> str:
    """The credentials in a file, refused unless only its owner may read it."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise CredentialsError(f"credentials file {path} does not exist") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(f"credentials file {path} can be read by its group or others (mode "
                               f"{stat.S_IMODE(mode):03o}); run: chmod 600 {path}")
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise CredentialsError(f"credentials file {path} is empty")
    return text


def find(exchange: str, credentials_file: Optional[str], pytx_env: str, pytx_file: str) -> Tuple[str, str]:
    """(credentials text, where it came from, for messages) for one exchange; CredentialsError naming every place."""
    ours = env_name(exchange)
    if os.environ.get(ours, "").strip():
        return os.environ[ours].strip(), f"${ours}"
    if credentials_file:
        return read_file(Path(credentials_file)), str(credentials_file)
    if pytx_env and os.environ.get(pytx_env, "").strip():
        return os.environ[pytx_env].strip(), f"${pytx_env}"
    if pytx_file and Path(pytx_file).expanduser().is_file():
        return read_file(Path(pytx_file)), pytx_file
    places = [f"${ours}", "a credentials_file setting"] + [p for p in (f"${pytx_env}" if pytx_env else "",
                                                                      pytx_file) if p]
    raise CredentialsError(f"no credentials for exchange {exchange!r}: set one of {', '.join(places)} "
                           "(a file must be chmod 600)")


def split_pair(text: str, sep: str, what: str) -> Tuple[str, str]:
    """Two non-empty parts of a credentials text (``user:password``); CredentialsError naming the form otherwise."""
    a, found, b = text.partition(sep)
    if not found or not a.strip() or not b.strip():
        raise CredentialsError(f"credentials must be {what}")
    return a.strip(), b.strip()
