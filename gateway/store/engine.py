"""The storage interface every query runs through.

SQL in libgate is written once, with `?` placeholders; each engine adapts it (psycopg wants
`%s`). A `Transaction` is the only way to run SQL: `store.write()` for anything that changes
data (SQLite: `BEGIN IMMEDIATE` on the single writer connection; PostgreSQL: a pooled
connection, with `FOR UPDATE` row locks via `tx.for_update`), `store.read()` for a consistent
read. Rows come back as tuples; repositories turn them into typed objects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

Row = tuple[Any, ...]


class StoreError(Exception):
    """The database could not be opened or used; the message says which and why."""


class IntegrityViolation(StoreError):
    """A constraint refused a write (unique barcode, one open loan per copy, ...)."""


class DataRefused(StoreError):
    """The engine refused a value (e.g. PostgreSQL and a NUL character in text)."""


class RetryableConflict(StoreError):
    """The database gave up a transaction because a concurrent one conflicted with it
    (PostgreSQL: a deadlock or a serialisation failure). Nothing of it was committed, and
    running the same work again from the start can succeed."""


class Transaction(ABC):
    """One open transaction. `for_update` is appended to SELECTs whose rows a decision writes."""

    dialect: str
    for_update: str

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; returns all result rows (empty for writes)."""

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows."""

    @abstractmethod
    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT into a table with an `id` primary key; returns the new id."""

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.execute(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(sql, params)
        return row[0] if row else None


class Store(ABC):
    dialect: str
    url: str
    search_index_dir: str = ""  # where the search index lives; "" = its default place

    @abstractmethod
    def write(self) -> AbstractContextManager[Transaction]:
        """A read-write transaction; commits on success, rolls back on any exception."""

    @abstractmethod
    def read(self) -> AbstractContextManager[Transaction]:
        """A read-only transaction: one consistent snapshot on SQLite; on PostgreSQL, at READ
        COMMITTED, each statement sees its own (as it did inside BEGIN...COMMIT)."""

    def ping(self, timeout: float) -> None:
        """Raise StoreError unless the store answers a trivial query within about `timeout`
        seconds (a health check must not wait as long as a kiosk's read would)."""
        with self.read() as tx:
            tx.one("SELECT 1")

    def read_statement(self) -> AbstractContextManager[Transaction]:
        """For a read of exactly one statement, which is its own snapshot on every engine:
        no BEGIN and no COMMIT around it (on SQLite each is one more release of the GIL, on
        PostgreSQL one more round trip). Engines that can skip them override this."""
        return self.read()

    def limit_waits(self, seconds: float) -> None:
        """From now on, wait at most `seconds` for a connection or the write lock (a stopping
        process must not wait past its bound; gateway/draining.py). Waits already begun keep
        their own limit. An engine whose waits are bounded anyway leaves this as it is."""
        return None

    def pool_stats(self) -> dict[str, int] | None:
        """The connection pool's statistics as psycopg_pool's get_stats() names them (gauges
        such as pool_size and requests_waiting, counters since it opened such as
        requests_errors), for /metrics; None for an engine without a pool (SQLite opens one
        connection per thread and has nothing to wait for but its write lock)."""
        return None

    @abstractmethod
    def close(self) -> None: ...

    def analyze(self, tables: tuple[str, ...]) -> None:
        """Refresh the query planner's statistics after a bulk change. Without them SQLite
        assumes an equality on an index's first column matches ~10 rows and, on a 100k-record
        catalogue, scans a whole database instead of looking up one ISBN (25 ms vs 0.5 ms).
        One transaction per table: on SQLite each holds the only write lock, and a kiosk's
        checkout waits between them for less time."""
        for table in tables:
            with self.write() as tx:
                tx.execute(f"ANALYZE {table}")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def split_statements(script: str) -> Iterator[str]:
    """Statements of a schema file: each ends with `;` at the end of a line."""
    statement: list[str] = []
    for line in script.splitlines():
        if line.strip().startswith("--") and not statement:
            continue
        statement.append(line)
        if line.rstrip().endswith(";"):
            text = "\n".join(statement).strip()
            if text.rstrip(";").strip():
                yield text
            statement = []
    rest = "\n".join(statement).strip()
    if rest and not all(line.strip().startswith("--") for line in rest.splitlines()):
        yield rest
