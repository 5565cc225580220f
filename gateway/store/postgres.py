"""PostgreSQL engine: psycopg 3 with a connection pool, for sites running several gateways.

Decisions that read and then write lock the rows they read (`SELECT ... FOR UPDATE`, via
`tx.for_update`), so correctness never depends on a single process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from functools import lru_cache
from typing import Any

import psycopg
import psycopg_pool
from psycopg import pq

from gateway.store.engine import (
    DataRefused,
    IntegrityViolation,
    RetryableConflict,
    Row,
    Store,
    StoreError,
    Transaction,
)

# The errors after which PostgreSQL has rolled the transaction back and a fresh attempt can
# succeed: SQLSTATE 40P01 and 40001.
CONFLICTS = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


@lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """Our `?` placeholders as psycopg's `%s` (a literal `%` is doubled first); the engine's
    statements are a few hundred fixed strings, so each is rewritten once."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresTransaction(Transaction):
    dialect = "postgresql"
    for_update = " FOR UPDATE"

    def __init__(self, connection: psycopg.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            if params:
                cursor = self._connection.execute(to_pyformat(sql), params)
            else:
                cursor = self._connection.execute(sql.encode())  # no placeholders to adapt
        except psycopg.errors.IntegrityError as error:
            raise IntegrityViolation(str(error)) from error
        except psycopg.DataError as error:
            raise DataRefused(str(error)) from error
        except CONFLICTS as error:
            raise RetryableConflict(str(error)) from error
        # The result status, not cursor.description: description builds column objects on
        # every statement (13% of a SIP2 handler's time in bench/sip2_bench.py).
        result = cursor.pgresult
        return cursor.fetchall() if result is not None and result.status == TUPLES_OK else []

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with self._connection.cursor() as cursor:
                cursor.executemany(to_pyformat(sql), list(rows))
        except psycopg.errors.IntegrityError as error:
            raise IntegrityViolation(str(error)) from error
        except CONFLICTS as error:
            raise RetryableConflict(str(error)) from error

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        rows = self.execute(sql.rstrip().rstrip(";") + " RETURNING id", params)
        return int(rows[0][0])


TUPLES_OK = pq.ExecStatus.TUPLES_OK


class PostgresStore(Store):
    dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 8, search_path: str | None = None) -> None:
        self.url = url
        conninfo = url.replace("postgresql+psycopg:", "postgresql:", 1)
        kwargs: dict[str, Any] = {"autocommit": False}
        if search_path:
            kwargs["options"] = f"-c search_path={search_path}"
        try:
            # One direct connection first: a wrong host or database fails at once with
            # libpq's own words, instead of the pool retrying until its timeout.
            with psycopg.connect(conninfo, connect_timeout=5, **kwargs) as probe:
                encoding = probe.info.parameter_status("server_encoding")
            if encoding != "UTF8":
                raise StoreError(
                    f"PostgreSQL database at {redact(url)} has encoding {encoding}, not UTF8:"
                    " libgate keeps text of every script as UTF-8 (SQL_ASCII hands it back as"
                    " bytes, LATIN1 refuses Chinese); create it with `createdb -E UTF8 -T"
                    " template0 ...`"
                )
            self._pool = psycopg_pool.ConnectionPool(
                conninfo,
                min_size=1,
                max_size=max(1, pool_size),
                kwargs=kwargs,
                configure=_name_connection,
                open=False,
            )
            self._pool.open(wait=True, timeout=10)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
            raise StoreError(
                f"cannot connect to PostgreSQL at {redact(url)}: {one_line(error)}"
            ) from error

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        try:
            connection_context = self._pool.connection()
            connection = connection_context.__enter__()
        except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
            raise StoreError(
                f"PostgreSQL unavailable at {redact(self.url)}: {one_line(error)}"
            ) from error
        try:
            try:
                with connection.transaction():
                    yield PostgresTransaction(connection)
            except CONFLICTS as error:  # at COMMIT: statements raise RetryableConflict
                raise RetryableConflict(str(error)) from error
        except BaseException as error:
            connection_context.__exit__(type(error), error, error.__traceback__)
            raise
        connection_context.__exit__(None, None, None)

    def write(self) -> AbstractContextManager[Transaction]:
        return self._transaction()

    def ping(self, timeout: float) -> None:
        try:
            with self._pool.connection(timeout=timeout) as connection:
                connection.execute("SELECT 1")
        except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
            raise StoreError(
                f"PostgreSQL unavailable at {redact(self.url)}: {one_line(error)}"
            ) from error

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        """Statements on a pooled connection in autocommit: no BEGIN and no COMMIT round trip.
        Under READ COMMITTED (the default, and what every transaction here runs at) each
        statement of a transaction takes its own snapshot anyway, so a read inside
        BEGIN...COMMIT saw exactly what it sees now; a read of one statement (SIP2 17) is one
        round trip instead of three."""
        try:
            connection_context = self._pool.connection()
            connection = connection_context.__enter__()
        except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
            raise StoreError(
                f"PostgreSQL unavailable at {redact(self.url)}: {one_line(error)}"
            ) from error
        try:
            connection.autocommit = True
            try:
                yield PostgresTransaction(connection)
            finally:
                # A broken connection cannot be reset; the pool discards it on return.
                with suppress(psycopg.Error):
                    connection.autocommit = False
        except BaseException as error:
            connection_context.__exit__(type(error), error, error.__traceback__)
            raise
        connection_context.__exit__(None, None, None)

    def limit_waits(self, seconds: float) -> None:
        # The pool's default wait for a free (or new) connection, 30 s, used by every
        # `connection()` from now on.
        self._pool.timeout = min(self._pool.timeout, seconds)

    def pool_stats(self) -> dict[str, int] | None:
        return dict(self._pool.get_stats())

    def close(self) -> None:
        self._pool.close()


# What a gateway's connections call themselves in pg_stat_activity, so that `libgate restore`
# can refuse to replace a schema they use. The server makes the name: it keeps 63 bytes of
# printable ASCII (a schema named 馆藏 shows as "libgate ??????"), so the gateway and the
# restore both let the server spell it rather than spelling it in Python.
_APPLICATION_NAME = (
    "SELECT set_config('application_name', left('libgate ' || coalesce({schema}, ''), 63), {local})"
)


def application_name(connection: psycopg.Connection, schema: str) -> str:
    """The application_name of a gateway's connections to `schema`, as the server spells it;
    this connection's own name is set only for the statement's transaction."""
    sql = _APPLICATION_NAME.format(schema="%s", local="true")
    row = connection.execute(sql, (schema,)).fetchone()
    return str(row[0]) if row else ""


def _name_connection(connection: psycopg.Connection) -> None:
    """Name a new pooled connection after its schema (once per connection, not per query)."""
    connection.execute(_APPLICATION_NAME.format(schema="current_schema()", local="false").encode())
    connection.commit()


def one_line(error: BaseException) -> str:
    """A psycopg error as one line, for the CLI's one-line failures and the log: the message,
    with DETAIL and libpq's hint ("Is the server running ...?") kept, the statement excerpt
    (LINE n: ... and its caret) left out."""
    lines = (line.strip() for line in str(error).splitlines())
    kept = [line for line in lines if line and not line.startswith(("LINE ", "^"))]
    return " ".join(kept) or type(error).__name__


def redact(url: str) -> str:
    """The URL without its password (in the credentials or a `password=` parameter), for error
    messages, logs and the config line migrate-store prints."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    place, question, query = rest.partition("?")  # an "@" in the parameters is not a login
    if "@" in place:
        credentials, host = place.rsplit("@", 1)
        place = f"{credentials.split(':', 1)[0]}@{host}"
    kept = [p for p in query.split("&") if p.split("=", 1)[0].lower() != "password"]
    parameters = "&".join(p for p in kept if p)
    return f"{scheme}://{place}" + (f"?{parameters}" if question and parameters else "")
