"""The database's SQLite schema, and the SQL the reading, writing and matching code share."""

from __future__ import annotations

from typing import Iterator, List

SCHEMA_VERSION = 1
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
CREATE TABLE IF NOT EXISTS pdq_rows (
    id INTEGER PRIMARY KEY,
    fingerprint_id INTEGER NOT NULL REFERENCES fingerprints(id),
    entry_id INTEGER NOT NULL REFERENCES entries(id),
    bits BLOB NOT NULL,
    quality INTEGER,
    frame_number INTEGER,
    timestamp REAL
);
CREATE TABLE IF NOT EXISTS tmk_rows (
    fingerprint_id INTEGER PRIMARY KEY REFERENCES fingerprints(id),
    entry_id INTEGER NOT NULL REFERENCES entries(id),
    average BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS fingerprints_by_entry ON fingerprints(entry_id);
CREATE INDEX IF NOT EXISTS digests_by_value ON fingerprints(format, value) WHERE format IN {DIGESTS};
CREATE INDEX IF NOT EXISTS entries_by_external_id ON entries(source, external_id);
CREATE INDEX IF NOT EXISTS pdq_rows_by_entry ON pdq_rows(entry_id);
CREATE INDEX IF NOT EXISTS pdq_rows_by_fingerprint ON pdq_rows(fingerprint_id);
"""

# Exact-match formats are looked up by value; perceptual ones through the in-memory indexes,
# so only digests pay for a B-tree (a 64-character PDQ value per row would slow bulk adds).
DIGEST_FORMATS = ("md5", "sha1", "sha256", "video_md5", "video_sha1", "video_sha256")
DIGESTS_SQL = "(" + ", ".join(f"'{f}'" for f in DIGEST_FORMATS) + ")"
SCHEMA = SCHEMA.replace("{DIGESTS}", DIGESTS_SQL)

INSERT_ENTRY = ("INSERT INTO entries (id, uid, media_type, source, external_id, labels, classification, media_uri,"
                " created, updated, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_FINGERPRINT = ("INSERT INTO fingerprints (id, entry_id, format, value, quality, algorithm_version, params,"
                      " data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_PDQ_ROW = ("INSERT INTO pdq_rows (id, fingerprint_id, entry_id, bits, quality, frame_number, timestamp)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?)")
INSERT_TMK_ROW = "INSERT INTO tmk_rows (fingerprint_id, entry_id, average) VALUES (?, ?, ?)"


def chunks(items: List[int], size: int = 900) -> Iterator[List[int]]:
    """Items in runs of `size`: SQLite limits the number of bound parameters per statement."""
    for i in range(0, len(items), size):
        yield items[i:i + size]
