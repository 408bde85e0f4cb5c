"""The two SQL databases the store runs on, behind one small interface: SQLite (a file) and PostgreSQL.

The store's SQL is written once, in the subset both speak (``?`` placeholders, ``ON CONFLICT DO
NOTHING``, partial indexes); this layer translates the rest: placeholders, column types in the
schema, how a write transaction takes the single-writer lock, bulk inserts (executemany on
SQLite, COPY on PostgreSQL), and how to tell a missing database. A thin layer of our own rather
than SQLAlchemy Core: the SQL is a few dozen statements, SQLite's default path stays on the
standard library with no per-statement overhead, and COPY is used directly.

Both backends serialise writers for the length of a write transaction (SQLite's BEGIN
IMMEDIATE, a PostgreSQL transaction-scoped advisory lock), so the store can assign ids itself
and row ids grow in commit order: a reader that has seen every row up to id N has seen every
commit up to the one that wrote N.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from pathlib import Path
from typing import Any, Iterator, List, Sequence, Union

from ..errors import DatabaseNotFoundError, InvalidInputError

PathLike = Union[str, "os.PathLike[str]"]

#: The advisory lock every PostgreSQL writer takes: one writer at a time, as SQLite has.
_PG_WRITE_LOCK = 0x6861_7368_6D61  # "hashma"


def is_url(db: Any) -> bool:
    """Whether `db` names a PostgreSQL database (``postgresql://`` or ``postgres://``) rather than a file."""
    return isinstance(db, str) and db.split("://", 1)[0].lower() in ("postgresql", "postgres")


class Backend:
    """One connection to the store's database; statements use ``?`` placeholders."""

    name = ""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns a cursor (fetchone, fetchall, fetchmany, rowcount)."""
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row."""
        raise NotImplementedError

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert many rows into a table (inside the caller's write transaction)."""
        marks = ", ".join("?" * len(columns))
        self.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """A write transaction holding the single-writer lock; rolled back on any error."""
        raise NotImplementedError
        yield  # pragma: no cover

    def table_exists(self, table: str) -> bool:
        """Whether the database has this table."""
        raise NotImplementedError

    def ddl(self, script: str) -> List[str]:
        """The schema script's statements in this database's types."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the connection."""
        raise NotImplementedError

    @property
    def where(self) -> str:
        """The database's name for messages and index files (a path, or a URL without its password)."""
        raise NotImplementedError


class SQLiteBackend(Backend):
    """One SQLite file in WAL mode; a read-only connection can never write it."""

    name = "sqlite"

    def __init__(self, path: PathLike, *, create: bool, read_only: bool) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise InvalidInputError(f"{self.path} is a directory; pass the database file's path")
        if not self.path.is_file() and (read_only or not create):
            raise DatabaseNotFoundError(f"no hash database at {self.path}; create one with `hashmatch db add` "
                                        "or `hashmatch db import`, or HashDB(path) in Python")
        try:
            if read_only:
                self.conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=60,
                                            isolation_level=None, check_same_thread=False)
                self.conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
            else:
                self.conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None,
                                            check_same_thread=False)
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as e:
            raise InvalidInputError(f"{self.path}: not a hashmatch database ({e})") from e

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement."""
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """executemany: about 5x faster than one statement a row."""
        self.conn.executemany(sql, rows)

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """BEGIN IMMEDIATE takes the write lock up front: concurrent writers queue instead of failing half-way."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def table_exists(self, table: str) -> bool:
        """Whether sqlite_master lists the table."""
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                 (table,)).fetchone() is not None

    def ddl(self, script: str) -> List[str]:
        """INTEGER PRIMARY KEY is the rowid; BLOB and REAL as written."""
        return _statements(script.replace("{ID}", "INTEGER PRIMARY KEY").replace("{BLOB}", "BLOB")
                           .replace("{REAL}", "REAL").replace("{BIGINT}", "INTEGER"))

    def close(self) -> None:
        """Close the file."""
        self.conn.close()

    @property
    def where(self) -> str:
        """The file's path."""
        return str(self.path)


class PostgresBackend(Backend):
    """A PostgreSQL database through psycopg 3, shared by every process and machine that opens it."""

    name = "postgresql"

    def __init__(self, url: str, *, create: bool, read_only: bool) -> None:
        try:
            import psycopg
        except ImportError as e:
            raise InvalidInputError("a postgresql:// database needs psycopg 3: pip install 'hashmatch[postgres]'"
                                    ) from e
        self._psycopg = psycopg
        self.url = url
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as e:
            if "does not exist" in str(e):
                raise DatabaseNotFoundError(f"no PostgreSQL database at {self.where}: {_first_line(e)}; "
                                            "create it with createdb first") from None
            raise InvalidInputError(f"cannot connect to {self.where}: {_first_line(e)}") from None
        if read_only:
            self.conn.execute("SET default_transaction_read_only = on")
        if not create and not self.table_exists("meta"):
            self.conn.close()
            raise DatabaseNotFoundError(f"no hash database in {self.where} (the database exists, its hashmatch "
                                        "tables do not); create one with `hashmatch db add` or HashDB(url)")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (``?`` become ``%s``)."""
        return self.conn.execute(_pg(sql), params) if params else self.conn.execute(sql)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """executemany in one pipeline."""
        with self.conn.cursor() as cur:
            cur.executemany(_pg(sql), rows)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """COPY: an order of magnitude faster than INSERTs for bulk imports."""
        if not rows:
            return
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """A transaction that first takes the writers' advisory lock (released at commit or rollback)."""
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_WRITE_LOCK,))
            yield

    def table_exists(self, table: str) -> bool:
        """Whether the current schema has the table."""
        return self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]

    def ddl(self, script: str) -> List[str]:
        """BIGINT keys, BYTEA, DOUBLE PRECISION."""
        return _statements(script.replace("{ID}", "BIGINT PRIMARY KEY").replace("{BLOB}", "BYTEA")
                           .replace("{REAL}", "DOUBLE PRECISION").replace("{BIGINT}", "BIGINT"))

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @property
    def where(self) -> str:
        """The URL without its password."""
        return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", self.url)


def open_backend(db: Union[PathLike, str], *, create: bool, read_only: bool) -> Backend:
    """The backend for a path (SQLite) or a ``postgresql://`` URL."""
    if is_url(db):
        return PostgresBackend(str(db), create=create, read_only=read_only)
    return SQLiteBackend(db, create=create, read_only=read_only)


def _pg(sql: str) -> str:
    # The store's SQL has no literal '?' or '%' of its own.
    return sql.replace("%", "%%").replace("?", "%s")


def _statements(script: str) -> List[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
