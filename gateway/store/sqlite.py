"""SQLite engine: WAL, foreign keys, busy timeout, one writer, `BEGIN IMMEDIATE` writes.

A deferred transaction that reads and then writes fails at once with SQLITE_BUSY_SNAPSHOT
when another connection committed in between, whatever the busy timeout; `BEGIN IMMEDIATE`
takes the write lock first, so it waits instead. All writes in a process share one
connection behind a lock; reads use one connection per thread.

Waiting for the write lock is done here, not by SQLite's busy handler: that one sleeps ever
longer between tries (up to 100 ms), so a process committing batch after batch (a catalogue
load) takes the lock again in the short gap between two batches while a kiosk's checkout
sleeps, and the checkout waited seconds behind a load of 500-record batches. Trying again
every `WRITE_LOCK_POLL_SECONDS` catches those gaps.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.store.engine import (
    IntegrityViolation,
    Row,
    Store,
    StoreError,
    Transaction,
)

WRITE_LOCK_POLL_SECONDS = 0.002


def sqlite_path(url: str) -> str:
    """Path from a URL written as SQLAlchemy writes it.

    `sqlite:///var/x.db` is relative to the working directory, `sqlite:////srv/x.db` absolute.
    """
    if not url.startswith("sqlite:///"):
        raise StoreError(f"storage url {url!r}: write sqlite:///relative.db or sqlite:////abs.db")
    path = url[len("sqlite:///") :]
    if not path or path == ":memory:":
        raise StoreError(
            "storage url: an in-memory SQLite database cannot be shared by the gateway's"
            " connections; give a file path"
        )
    return path


class SqliteTransaction(Transaction):
    dialect = "sqlite"
    for_update = ""  # the IMMEDIATE lock already serialises writers

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            return self._connection.execute(sql, params).fetchall()
        except sqlite3.IntegrityError as error:
            raise IntegrityViolation(str(error)) from error

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self._connection.executemany(sql, rows)
        except sqlite3.IntegrityError as error:
            raise IntegrityViolation(str(error)) from error

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            cursor = self._connection.execute(sql, params)
        except sqlite3.IntegrityError as error:
            raise IntegrityViolation(str(error)) from error
        assert cursor.lastrowid is not None
        return cursor.lastrowid


class SqliteStore(Store):
    dialect = "sqlite"

    def __init__(self, path: str, *, busy_timeout_ms: int = 10000) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._busy_timeout_ms = busy_timeout_ms
        parent = Path(path).parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create the directory for {path}: {error}") from error
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._writer = self._connect()
        mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(f"{path}: SQLite refused WAL mode (got {mode})")
        # Only BEGIN IMMEDIATE ever waits on the writer; `_begin_immediate` does the waiting.
        self._writer.execute("PRAGMA busy_timeout=0")

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=0
            )
            connection.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as error:
            raise StoreError(f"cannot open SQLite database {self.path}: {error}") from error
        with self._connections_lock:
            self._connections.append(connection)
        return connection

    def _reader(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        with self._write_lock:
            connection = self._writer
            self._begin_immediate(connection)
            try:
                yield SqliteTransaction(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _begin_immediate(self, connection: sqlite3.Connection) -> None:
        """Take the write lock, trying every few milliseconds for up to the busy timeout;
        then "database is locked", as SQLite's own waiting would say."""
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                busy = error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise
            time.sleep(WRITE_LOCK_POLL_SECONDS)

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        connection = self._reader()
        connection.execute("BEGIN")
        try:
            yield SqliteTransaction(connection)
        finally:
            connection.execute("COMMIT")

    @contextmanager
    def read_statement(self) -> Iterator[Transaction]:
        """The thread's reader connection in autocommit: its one statement is its own
        transaction (and snapshot), with no BEGIN or COMMIT."""
        yield SqliteTransaction(self._reader())

    def limit_waits(self, seconds: float) -> None:
        # Read by `_begin_immediate` at each write; readers in WAL mode do not wait.
        self._busy_timeout_ms = min(self._busy_timeout_ms, max(0, int(seconds * 1000)))

    def close(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
