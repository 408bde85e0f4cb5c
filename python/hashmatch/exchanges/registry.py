"""The exchange APIs by name, and the adapter for an exchange's settings with its credentials."""

from __future__ import annotations

from typing import Dict, Type

from ..errors import ExchangeConfigError
from . import credentials
from .base import Adapter, Settings
from .fb_threatexchange import FBThreatExchange
from .file import File
from .ncmec import NCMEC
from .stop_ncii import StopNCII
from .tat import TAT

APIS: Dict[str, Type[Adapter]] = {a.api: a for a in (NCMEC, StopNCII, FBThreatExchange, TAT, File)}


def adapter_class(api: str) -> Type[Adapter]:
    """The adapter class of an API name; ExchangeConfigError naming the known ones."""
    try:
        return APIS[api]
    except KeyError:
        raise ExchangeConfigError(f"unknown exchange API {api!r}; known: {', '.join(APIS)}") from None


def adapter_for(settings: Settings) -> Adapter:
    """The adapter of a configured exchange, its credentials found (CredentialsError if none)."""
    cls = adapter_class(settings.api)
    secret = None
    if cls.credential_env or settings.config.get("credentials_file"):
        secret, _ = credentials.find(settings.name, settings.config.get("credentials_file"), cls.credential_env,
                                     cls.credential_file)
    return cls(settings, secret)
