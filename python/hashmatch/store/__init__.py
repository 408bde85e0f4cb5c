"""The hash database: entries with fingerprints in SQLite, and a derived Hamming index.

SQLite (one file, WAL mode) is the source of truth. Every PDQ hash it holds, an image's or
one frame of a video's vPDQ, is a row of ``pdq_rows``; the Hamming index over those rows is
derived data, saved next to the database as ``<db>.pdq-index`` and trusted only when its
tag (this database's random instance id and its write generation) is current; otherwise it
is rebuilt from the rows. Every write is one transaction, so a process killed mid-write
leaves the previous consistent state.
"""

from ..records import PDQ_ALGORITHM_VERSION, Fingerprint, Match, Matches, Record
from .database import HashDB, match, open_db

__all__ = ["HashDB", "Match", "Matches", "Record", "Fingerprint", "PDQ_ALGORITHM_VERSION", "open_db", "match"]
