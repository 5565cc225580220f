"""Versioned schema: `schema/<dialect>/NNNN_name.sql`, applied in order, recorded in
`schema_version`. Run by `libgate init` and at every start; applying twice changes nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from importlib import resources

from gateway.store.engine import Store, StoreError, Transaction, split_statements

SCHEMA_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
PG_MIGRATION_LOCK = 7413001  # any constant: serialises concurrent starts on one database


def schema_files(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for every schema file of an engine, in version order."""
    folder = resources.files("gateway.store").joinpath("schema", dialect)
    found = []
    for entry in folder.iterdir():
        match = SCHEMA_FILE.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(f"schema files for {dialect} are not numbered 1..n: {versions}")
    return found


def current_version(store: Store) -> int:
    with store.read() as tx:
        if store.dialect == "sqlite":
            exists = tx.scalar(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='schema_version'"
            )
        else:
            exists = tx.scalar(
                "SELECT count(*) FROM pg_tables WHERE tablename='schema_version'"
                " AND schemaname = current_schema()"
            )
        if not exists:
            return 0
        return int(tx.scalar("SELECT coalesce(max(version), 0) FROM schema_version"))


def latest_version(dialect: str) -> int:
    """The schema version this libgate brings a database to."""
    return len(schema_files(dialect))


def migrate(store: Store, *, up_to: int | None = None) -> list[int]:
    """Apply the missing schema versions (all, or those up to `up_to`: the upgrade tests build
    databases as earlier releases left them); returns the versions applied now."""
    with store.write() as tx:
        return migrate_in(tx, store.dialect, up_to=up_to)


def migrate_in(tx: Transaction, dialect: str, *, up_to: int | None = None) -> list[int]:
    """`migrate` inside a transaction the caller holds (`migrate-store` creates the schema and
    copies the data in one transaction on the target)."""
    files = schema_files(dialect)
    if up_to is not None and not 0 <= up_to <= len(files):
        raise StoreError(f"schema version {up_to} does not exist (1..{len(files)})")
    applied: list[int] = []
    if dialect == "postgresql":
        tx.execute(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})")
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL)"
    )
    current = int(tx.scalar("SELECT coalesce(max(version), 0) FROM schema_version"))
    if current > len(files):
        raise StoreError(
            f"the database has schema version {current}, newer than this libgate"
            f" ({len(files)}); upgrade libgate"
        )
    for version, name, sql in files:
        if version <= current or (up_to is not None and version > up_to):
            continue
        for statement in split_statements(sql):
            tx.execute(statement)
        tx.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
            (version, name, _now()),
        )
        applied.append(version)
    return applied


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
