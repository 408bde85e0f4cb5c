"""The database's schema (SQLite and PostgreSQL), its upgrades from older releases, and shared SQL.

Every entry belongs to a bank. Every perceptual hash is indexed by its signal's ``IndexSpec``:
binary codes (a PDQ, each frame of a vPDQ) are rows of ``code_rows`` in their Hamming space,
float vectors (a TMK's pure average) rows of ``vector_rows`` in their vector space; both are
derived from ``fingerprints``, and the in-memory indexes from them. ``changes`` is the change
log: one generation per change, so that every process holding an index applies only what
changed since its snapshot. ``{ID}``, ``{BIGINT}``, ``{BLOB}`` and ``{REAL}`` are filled in
by the backend.
"""

from __future__ import annotations

from typing import Iterator, List

SCHEMA_VERSION = 4
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS banks (
    id {ID},
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL DEFAULT 'match',
    enabled INTEGER NOT NULL DEFAULT 1,
    enabled_ratio {REAL} NOT NULL DEFAULT 1.0,
    seed {BIGINT} NOT NULL,
    thresholds TEXT NOT NULL DEFAULT '{}',
    notes TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created {REAL} NOT NULL,
    updated {REAL} NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    id {ID},
    uid TEXT NOT NULL UNIQUE,
    media_type TEXT NOT NULL,
    source TEXT,
    external_id TEXT,
    labels TEXT NOT NULL DEFAULT '[]',
    classification TEXT,
    media_uri TEXT,
    created {REAL} NOT NULL,
    updated {REAL} NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    bank_id {BIGINT} NOT NULL REFERENCES banks(id),
    content_uri TEXT,
    notes TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    disabled_until {REAL}
);
CREATE TABLE IF NOT EXISTS fingerprints (
    id {ID},
    entry_id {BIGINT} NOT NULL REFERENCES entries(id),
    format TEXT NOT NULL,
    value TEXT NOT NULL,
    quality INTEGER,
    algorithm_version TEXT,
    params TEXT NOT NULL DEFAULT '{}',
    data {BLOB}
);
CREATE TABLE IF NOT EXISTS code_rows (
    id {ID},
    fingerprint_id {BIGINT} NOT NULL REFERENCES fingerprints(id),
    entry_id {BIGINT} NOT NULL REFERENCES entries(id),
    bits {BLOB} NOT NULL,
    quality INTEGER,
    frame_number INTEGER,
    timestamp {REAL},
    space TEXT NOT NULL DEFAULT 'pdq'
);
CREATE TABLE IF NOT EXISTS vector_rows (
    fingerprint_id {ID} REFERENCES fingerprints(id),
    entry_id {BIGINT} NOT NULL REFERENCES entries(id),
    vector {BLOB} NOT NULL,
    space TEXT NOT NULL DEFAULT 'tmk_pdqf'
);
CREATE TABLE IF NOT EXISTS changes (
    generation {ID},
    op TEXT NOT NULL,
    entry_id {BIGINT},
    at {REAL} NOT NULL
);
CREATE INDEX IF NOT EXISTS fingerprints_by_entry ON fingerprints(entry_id);
CREATE INDEX IF NOT EXISTS digests_by_value ON fingerprints(format, value) WHERE format IN {DIGESTS};
CREATE INDEX IF NOT EXISTS entries_by_external_id ON entries(source, external_id);
CREATE INDEX IF NOT EXISTS entries_by_bank ON entries(bank_id);
CREATE INDEX IF NOT EXISTS code_rows_by_entry ON code_rows(entry_id);
CREATE INDEX IF NOT EXISTS code_rows_by_fingerprint ON code_rows(fingerprint_id);
"""

# ----- schema 4: the service's API tokens (issue 18), one self-contained block ---------------
# Only a SHA-256 of each token is kept, never the token; created on opening (IF NOT EXISTS), so
# the 3 -> 4 upgrade below has nothing else to do on either backend.
API_TOKENS_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_tokens (
    id {ID},
    digest TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    name TEXT,
    created {REAL} NOT NULL,
    revoked {REAL}
);
"""
SCHEMA += API_TOKENS_SCHEMA
# ----- end of schema 4 ------------------------------------------------------------------------

# Exact-match formats are looked up by value; perceptual ones through the in-memory indexes,
# so only digests pay for a B-tree (a 64-character PDQ value per row would slow bulk adds).
# A plugin's exact signal is looked up without this index (a scan of its fingerprints).
DIGEST_FORMATS = ("md5", "sha1", "sha256", "video_md5", "video_sha1", "video_sha256")
DIGESTS_SQL = "(" + ", ".join(f"'{f}'" for f in DIGEST_FORMATS) + ")"
SCHEMA = SCHEMA.replace("{DIGESTS}", DIGESTS_SQL)

# ----- schema 4: live exchanges (hashmatch.exchanges) -------------------------------------------
#: One row per configured exchange (its settings without secrets: credentials come from the
#: environment or an owner-only file), its checkpoint (opaque JSON, written in the same transaction
#: as the page it follows), its last fetch's status, and the feedback waiting to be sent.
EXCHANGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS exchanges (
    name TEXT PRIMARY KEY,
    api TEXT NOT NULL,
    bank_id {BIGINT} NOT NULL REFERENCES banks(id),
    config TEXT NOT NULL DEFAULT '{}',
    enabled INTEGER NOT NULL DEFAULT 1,
    created {REAL} NOT NULL,
    updated {REAL} NOT NULL
);
CREATE TABLE IF NOT EXISTS exchange_checkpoints (
    exchange TEXT PRIMARY KEY REFERENCES exchanges(name) ON DELETE CASCADE,
    checkpoint TEXT NOT NULL,
    updated {REAL} NOT NULL
);
CREATE TABLE IF NOT EXISTS exchange_status (
    exchange TEXT PRIMARY KEY REFERENCES exchanges(name) ON DELETE CASCADE,
    state TEXT NOT NULL DEFAULT 'never',
    started {REAL},
    finished {REAL},
    succeeded {REAL},
    last_error TEXT,
    pages {BIGINT} NOT NULL DEFAULT 0,
    upserts {BIGINT} NOT NULL DEFAULT 0,
    deletes {BIGINT} NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS exchange_feedback (
    id {ID},
    exchange TEXT NOT NULL REFERENCES exchanges(name) ON DELETE CASCADE,
    entry_uid TEXT NOT NULL,
    verdict TEXT NOT NULL,
    queued {REAL} NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt {REAL},
    last_error TEXT,
    sent {REAL}
);
"""
SCHEMA += EXCHANGES_SCHEMA

#: The bank entries without one go to: the upgrade's home for entries that had no source.
DEFAULT_BANK = "default"

#: Each upgrade takes a SQLite database from the version before it to this one, inside the open's
#: transaction (PostgreSQL databases start at version 3). Entries of new columns come after.
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
    # 2 -> 3: banks (one per source; entries without a source go to the default bank), entry fields,
    # and the change log, which starts at the database's generation.
    3: """
CREATE TABLE banks (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL DEFAULT 'match',
    enabled INTEGER NOT NULL DEFAULT 1, enabled_ratio REAL NOT NULL DEFAULT 1.0, seed INTEGER NOT NULL,
    thresholds TEXT NOT NULL DEFAULT '{}', notes TEXT, metadata TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL, updated REAL NOT NULL
);
INSERT INTO banks (name, seed, created, updated)
    SELECT DISTINCT COALESCE(source, 'default'), ABS(RANDOM() % 2147483647), MIN(created), MAX(updated)
    FROM entries GROUP BY COALESCE(source, 'default');
ALTER TABLE entries ADD COLUMN bank_id INTEGER REFERENCES banks(id);
UPDATE entries SET bank_id = (SELECT b.id FROM banks b WHERE b.name = COALESCE(entries.source, 'default'));
ALTER TABLE entries ADD COLUMN content_uri TEXT;
ALTER TABLE entries ADD COLUMN notes TEXT;
ALTER TABLE entries ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE entries ADD COLUMN disabled_until REAL;
CREATE TABLE changes (generation INTEGER PRIMARY KEY, op TEXT NOT NULL, entry_id INTEGER, at REAL NOT NULL);
INSERT INTO changes (generation, op, entry_id, at)
    SELECT CAST(value AS INTEGER) + 1, 'upgrade', NULL, 0 FROM meta WHERE key = 'generation';
DELETE FROM meta WHERE key IN ('generation', 'removals');
""",
    # 3 -> 4 (SQLite and PostgreSQL alike): the api_tokens and exchanges tables, made by SCHEMA's
    # CREATE TABLE IF NOT EXISTS when the database is opened.
    4: "",
}

INSERT_ENTRY = ("entries", ("id", "uid", "media_type", "source", "external_id", "labels", "classification",
                            "media_uri", "created", "updated", "deleted", "bank_id", "content_uri", "notes",
                            "metadata", "disabled_until"))
INSERT_FINGERPRINT = ("fingerprints", ("id", "entry_id", "format", "value", "quality", "algorithm_version",
                                       "params", "data"))
INSERT_CODE_ROW = ("code_rows", ("id", "fingerprint_id", "entry_id", "bits", "quality", "frame_number", "timestamp",
                                 "space"))
INSERT_VECTOR_ROW = ("vector_rows", ("fingerprint_id", "entry_id", "vector", "space"))

#: Entry columns a Record is read from, in order.
ENTRY_COLUMNS = ("id, uid, media_type, source, external_id, labels, classification, created, updated, deleted,"
                 " media_uri, bank_id, content_uri, notes, metadata, disabled_until")


def statements(script: str) -> List[str]:
    """The statements of a script, one each."""
    return [s.strip() for s in script.split(";") if s.strip()]


def chunks(items: List[int], size: int = 900) -> Iterator[List[int]]:
    """Items in runs of `size`: SQLite limits the number of bound parameters per statement."""
    for i in range(0, len(items), size):
        yield items[i:i + size]
