"""``hashmatch.formats``: the signal registry under the name the hash-list API has always used."""

from ..signals import *  # noqa: F401,F403
from ..signals import __all__, __getattr__  # noqa: F401
