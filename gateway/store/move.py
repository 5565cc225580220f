"""`libgate migrate-store`: every row of a SQLite store into an empty PostgreSQL schema.

The tables come from the databases themselves (gateway.store.tables), parents first, so a
table a later migration adds moves without anyone listing it. The target's schema is created
and filled in one transaction: on any error, or when a table's count differs at the end,
nothing of it is left. Ids are copied as they are and each identity sequence then restarts
after the largest id, so the next reader or loan gets a fresh number. Values are converted by
the target column's type (SQLite keeps what it was given; PostgreSQL wants its type).

The source is read in one read transaction: one snapshot, even if a gateway is still writing
(what it writes after that moment is not moved: stop it first).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.store.engine import Row, Store, StoreError, Transaction
from gateway.store.migrate import migrate_in
from gateway.store.sqlite import SqliteTransaction
from gateway.store.tables import row_counts, table_names

BATCH_ROWS = 1000


@dataclass(frozen=True)
class TableMoved:
    table: str
    source_rows: int
    target_rows: int


def move(source: Store, target: Store) -> list[TableMoved]:
    """Copy every table of `source` (SQLite, schema up to date) into `target` (PostgreSQL)."""
    if source.dialect != "sqlite":
        raise StoreError("migrate-store moves a SQLite store; the configured store is not SQLite")
    if target.dialect != "postgresql":
        raise StoreError("migrate-store --to takes a postgresql:// URL")
    import psycopg  # loaded already: the target is a PostgresStore

    from gateway.store.postgres import one_line

    try:
        return _move(source, target)
    except psycopg.Error as error:
        raise StoreError(
            f"PostgreSQL refused the move, nothing moved: {one_line(error)}"
        ) from error


def _move(source: Store, target: Store) -> list[TableMoved]:
    fresh = _fresh_counts()
    with source.read() as read, target.write() as write:
        migrate_in(write, "postgresql")
        tables = table_names(read)
        _check_same_tables(tables, table_names(write))
        _check_empty(write, tables, fresh)
        source_counts = row_counts(read, tables)
        for table in tables:
            if fresh.get(table):  # rows a migration put there (counters): the source's replace them
                write.execute(f'DELETE FROM "{table}"')
            _copy_table(read, write, table)
        _restart_identities(write)
        target_counts = row_counts(write, tables)
        moved = [TableMoved(t, source_counts[t], target_counts[t]) for t in tables]
        wrong = [m for m in moved if m.source_rows != m.target_rows]
        if wrong:
            raise StoreError(
                "row counts differ, nothing moved: "
                + ", ".join(f"{m.table} {m.source_rows} != {m.target_rows}" for m in wrong)
            )
    return moved


def _fresh_counts() -> dict[str, int]:
    """Rows per table of a database just created by the schema files (their seed rows)."""
    connection = sqlite3.connect(":memory:", isolation_level=None)
    try:
        tx = SqliteTransaction(connection)
        migrate_in(tx, "sqlite")
        return row_counts(tx, table_names(tx))
    finally:
        connection.close()


def _check_same_tables(source: list[str], target: list[str]) -> None:
    if set(source) != set(target):
        only_source = sorted(set(source) - set(target))
        only_target = sorted(set(target) - set(source))
        raise StoreError(
            f"the schemas differ: only in SQLite {only_source}, only in PostgreSQL {only_target}"
        )


def _check_empty(tx: Transaction, tables: list[str], fresh: dict[str, int]) -> None:
    """A target holding more than the schema files put there is someone's data: refused."""
    counts = row_counts(tx, tables)
    full = [f"{t} ({n} rows)" for t, n in counts.items() if n > fresh.get(t, 0)]
    if full:
        raise StoreError(
            "the target is not empty: "
            + ", ".join(full[:5])
            + "; give an empty PostgreSQL database or schema"
        )


def _copy_table(read: Transaction, write: Transaction, table: str) -> None:
    types: dict[str, str] = dict(
        write.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
    )
    columns = [str(row[1]) for row in read.execute(f'PRAGMA table_info("{table}")')]
    missing = [c for c in columns if c not in types] + [c for c in types if c not in columns]
    if missing:
        raise StoreError(f"table {table}: the columns differ between the engines: {missing}")
    converters = [_converter(types[c]) for c in columns]
    names = ", ".join(f'"{c}"' for c in columns)
    insert = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'
    # In batches, in key order, each batch starting after the last key of the one before: a
    # 100k-record catalogue is never all in memory at once, and no batch steps again over the
    # rows before it (LIMIT ... OFFSET does, which makes a table of millions quadratic).
    info = read.execute(f'PRAGMA table_info("{table}")')
    primary = [f'"{r[1]}"' for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
    key_columns = primary if _without_rowid(read, table) else ["rowid"]
    keys, width = ", ".join(key_columns), len(key_columns)
    first = f'SELECT {keys}, {names} FROM "{table}" ORDER BY {keys} LIMIT ?'
    after = (
        f'SELECT {keys}, {names} FROM "{table}" WHERE ({keys}) > ({", ".join("?" * width)})'
        f" ORDER BY {keys} LIMIT ?"
    )
    rows = read.execute(first, (BATCH_ROWS,))
    while rows:
        try:
            write.executemany(insert, _converted([row[width:] for row in rows], converters))
        except (ValueError, TypeError) as error:  # SQLite keeps 'x' in an INTEGER column
            raise StoreError(
                f"table {table}: a value its PostgreSQL column cannot take, nothing moved: {error}"
            ) from error
        if len(rows) < BATCH_ROWS:
            return
        rows = read.execute(after, (*rows[-1][:width], BATCH_ROWS))


def _without_rowid(read: Transaction, table: str) -> bool:
    sql = read.scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    return "WITHOUT ROWID" in str(sql or "").upper()


def _converted(rows: Sequence[Row], converters: list[Callable[[Any], Any]]) -> Iterable[Row]:
    for row in rows:
        yield tuple(
            None if value is None else convert(value)
            for convert, value in zip(converters, row, strict=True)
        )


def _converter(data_type: str) -> Callable[[Any], Any]:
    if data_type == "bytea":
        return _to_bytes
    if data_type == "boolean":
        return lambda v: bool(int(v)) if not isinstance(v, str) else v.lower() in ("1", "t", "true")
    if data_type in ("smallint", "integer", "bigint"):
        return int
    if data_type in ("double precision", "real", "numeric"):
        return lambda v: v if isinstance(v, int | float) else float(v)
    if data_type == "text" or data_type.startswith(("character", "timestamp", "date", "time")):
        # SQLite hands back what it was given; PostgreSQL parses ISO 8601 into its time types.
        return lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v)
    return lambda v: v


def _to_bytes(value: Any) -> bytes:
    """A BLOB as it is, text as its UTF-8; never bytes(n) of an integer (n zero bytes)."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{value!r} is not bytes")


def _restart_identities(tx: Transaction) -> None:
    """Each identity (or serial) column's sequence continues after the largest id copied."""
    for table, column in tx.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema()"
        " AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')"
    ):
        tx.execute(
            f"SELECT setval(pg_get_serial_sequence(?, ?),"
            f' coalesce((SELECT max("{column}") FROM "{table}"), 0) + 1, false)',
            (f'"{table}"', column),
        )
