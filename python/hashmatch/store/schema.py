"""The database's schema, its upgrades from older releases, and the SQL the store's modules share.

Every perceptual hash the database holds is indexed by its signal's ``IndexSpec``: binary codes
(a PDQ, each frame of a vPDQ) are rows of ``code_rows`` in their Hamming space, float vectors
(a TMK's pure average) rows of ``vector_rows`` in their vector space. Both are derived from
``fingerprints``; the in-memory indexes are derived from them.
"""

from __future__ import annotations

import sqlite3
from typing import Iterator, List

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    media_type TEXT NOT NULL,
    source TEXT,
    external_id TEXT,
    labels TEXT NOT NULL DEFAULT '[]',
    classification TEXT,
    media_uri TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS fingerprints (
    id INTEGER PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES entries(id),
    format TEXT NOT NULL,
    value TEXT NOT NULL,
    quality INTEGER,
    algorithm_version TEXT,
    params TEXT NOT NULL DEFAULT '{}',
    data BLOB
);
CREATE TABLE IF NOT EXISTS code_rows (
    id INTEGER PRIMARY KEY,
    fingerprint_id INTEGER NOT NULL REFERENCES fingerprints(id),
    entry_id INTEGER NOT NULL REFERENCES entries(id),
    bits BLOB NOT NULL,
    quality INTEGER,
    frame_number INTEGER,
    timestamp REAL,
    space TEXT NOT NULL DEFAULT 'pdq'
);
CREATE TABLE IF NOT EXISTS vector_rows (
    fingerprint_id INTEGER PRIMARY KEY REFERENCES fingerprints(id),
    entry_id INTEGER NOT NULL REFERENCES entries(id),
    vector BLOB NOT NULL,
    space TEXT NOT NULL DEFAULT 'tmk_pdqf'
);
CREATE INDEX IF NOT EXISTS fingerprints_by_entry ON fingerprints(entry_id);
CREATE INDEX IF NOT EXISTS digests_by_value ON fingerprints(format, value) WHERE format IN {DIGESTS};
CREATE INDEX IF NOT EXISTS entries_by_external_id ON entries(source, external_id);
CREATE INDEX IF NOT EXISTS code_rows_by_entry ON code_rows(entry_id);
CREATE INDEX IF NOT EXISTS code_rows_by_fingerprint ON code_rows(fingerprint_id);
"""

# Exact-match formats are looked up by value; perceptual ones through the in-memory indexes,
# so only digests pay for a B-tree (a 64-character PDQ value per row would slow bulk adds).
# A plugin's exact signal is looked up without this index (a scan of its fingerprints).
DIGEST_FORMATS = ("md5", "sha1", "sha256", "video_md5", "video_sha1", "video_sha256")
DIGESTS_SQL = "(" + ", ".join(f"'{f}'" for f in DIGEST_FORMATS) + ")"
SCHEMA = SCHEMA.replace("{DIGESTS}", DIGESTS_SQL)

#: Each upgrade takes a database from the version before it to this one, inside the open's transaction.
UPGRADES = {
    # 1 -> 2: PDQ rows become the "pdq" Hamming space's code rows, TMK rows the "tmk_pdqf" vector space's.
    2: """
ALTER TABLE pdq_rows RENAME TO code_rows;
ALTER TABLE code_rows ADD COLUMN space TEXT NOT NULL DEFAULT 'pdq';
DROP INDEX IF EXISTS pdq_rows_by_entry;
DROP INDEX IF EXISTS pdq_rows_by_fingerprint;
ALTER TABLE tmk_rows RENAME TO vector_rows;
ALTER TABLE vector_rows RENAME COLUMN average TO vector;
ALTER TABLE vector_rows ADD COLUMN space TEXT NOT NULL DEFAULT 'tmk_pdqf';
""",
}

INSERT_ENTRY = ("INSERT INTO entries (id, uid, media_type, source, external_id, labels, classification, media_uri,"
                " created, updated, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_FINGERPRINT = ("INSERT INTO fingerprints (id, entry_id, format, value, quality, algorithm_version, params,"
                      " data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_CODE_ROW = ("INSERT INTO code_rows (id, fingerprint_id, entry_id, bits, quality, frame_number, timestamp,"
                   " space) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_VECTOR_ROW = "INSERT INTO vector_rows (fingerprint_id, entry_id, vector, space) VALUES (?, ?, ?, ?)"


def statements(script: str) -> List[str]:
    """The statements of a script, one each."""
    return [s.strip() for s in script.split(";") if s.strip()]


def upgrade(conn: sqlite3.Connection, version: int) -> int:
    """Bring a database at `version` to SCHEMA_VERSION (the caller holds the write transaction)."""
    for target in range(version + 1, SCHEMA_VERSION + 1):
        for statement in statements(UPGRADES[target]):
            conn.execute(statement)
    return SCHEMA_VERSION


def chunks(items: List[int], size: int = 900) -> Iterator[List[int]]:
    """Items in runs of `size`: SQLite limits the number of bound parameters per statement."""
    for i in range(0, len(items), size):
        yield items[i:i + size]
