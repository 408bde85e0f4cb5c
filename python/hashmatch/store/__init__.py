"""The hash database: entries with fingerprints in SQLite, and the indexes derived from them.

Hashes in, matches out: the store never sees media (``hashmatch.pipeline.HashDB`` adds that).
"""

from .database import Store
from .matching import check_radius
from .records import Fingerprint, Match, Matches, Query, Record
from .schema import SCHEMA_VERSION

__all__ = ["Fingerprint", "Match", "Matches", "Query", "Record", "SCHEMA_VERSION", "Store", "check_radius"]
