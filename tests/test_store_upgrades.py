"""Schema upgrades from every earlier version (issue 18, "Backup and move"), on both engines.

For each version k before the latest, a database is built as that release left it (the
schema files 1..k, by the migrator itself), and filled with a working library's rows: the
rows `make_library` writes today, each with the columns that existed at version k (so a row
is valid for that version, and every table that existed then has rows). Opened by this
libgate, every value is still there, and the schema is exactly a fresh database's."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from gateway.config import StorageSettings
from gateway.store import Store, open_migrated_store, open_store
from gateway.store.migrate import latest_version, migrate
from gateway.store.tables import table_names
from tests.conftest import fresh_schema_url
from tests.store_dump_support import columns, ill_config, make_library, plain, sort_key

LATEST = latest_version("sqlite")
assert latest_version("postgresql") == LATEST

Rows = dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def library_rows(tmp_path_factory: pytest.TempPathFactory) -> Rows:
    """Every row of a working library, table by table, as {column: value}."""
    home = tmp_path_factory.mktemp("library")
    url = f"sqlite:///{home / 'library.db'}"
    config = home / "libgate.toml"
    config.write_text(f'[storage]\nurl = "{url}"\n', encoding="utf-8")
    ill_config(config)
    make_library(config)
    found: Rows = {}
    with open_store(url) as store:
        with store.read() as tx:
            tables = table_names(tx)
        for table in tables:
            names = columns(store, table)
            with store.read() as tx:
                rows = tx.execute(f'SELECT {", ".join(names)} FROM "{table}"')
            found[table] = [dict(zip(names, map(plain, row), strict=True)) for row in rows]
    return found


def fill(store: Store, rows: Rows) -> dict[str, list[dict[str, Any]]]:
    """The library's rows, as far as this schema version has their tables and columns, put in;
    returns what went in. Rows the schema files seeded (counters) are replaced."""
    inserted: dict[str, list[dict[str, Any]]] = {}
    with store.read() as tx:
        tables = [t for t in table_names(tx) if t != "schema_version" and t in rows]
    for table in tables:
        present = set(columns(store, table))
        kept = [{c: v for c, v in row.items() if c in present} for row in rows[table]]
        with store.write() as tx:
            tx.execute(f'DELETE FROM "{table}"')
            if kept:
                names = ", ".join(f'"{c}"' for c in kept[0])
                marks = ", ".join("?" * len(kept[0]))
                tx.executemany(
                    f'INSERT INTO "{table}" ({names}) VALUES ({marks})',
                    [tuple(row.values()) for row in kept],
                )
        inserted[table] = kept
    return inserted


def schema_of(store: Store) -> list[tuple[Any, ...]]:
    """The schema as the database describes it: for SQLite every object's SQL; for PostgreSQL
    columns, constraints, indexes and triggers (names of the schema left out)."""
    with store.read() as tx:
        if store.dialect == "sqlite":
            return sorted(
                tx.execute(
                    "SELECT type, name, tbl_name, sql FROM sqlite_master"
                    " WHERE name NOT LIKE 'sqlite_%'"
                )
            )
        schema = str(tx.scalar("SELECT current_schema()"))
        described = [
            ("column", *row)
            for row in tx.execute(
                "SELECT table_name, column_name, ordinal_position, data_type, is_nullable,"
                " coalesce(column_default, ''), is_identity FROM information_schema.columns"
                " WHERE table_schema = current_schema()"
            )
        ]
        described += [
            ("constraint", *row)
            for row in tx.execute(
                "SELECT c.conrelid::regclass::text, c.conname, c.contype,"
                " pg_get_constraintdef(c.oid) FROM pg_constraint c"
                " JOIN pg_namespace n ON n.oid = c.connamespace"
                " WHERE n.nspname = current_schema()"
            )
        ]
        described += [
            ("index", *row)
            for row in tx.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes"
                " WHERE schemaname = current_schema()"
            )
        ]
        described += [
            ("trigger", *row)
            for row in tx.execute(
                "SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid)"
                " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND NOT t.tgisinternal"
            )
        ]
    return sorted(tuple(str(v).replace(f"{schema}.", "") for v in row) for row in described)


_fresh_schemas: dict[str, list[tuple[Any, ...]]] = {}


def fresh_schema(request: pytest.FixtureRequest, store_url: str, tmp_path: Path) -> list[Any]:
    """The schema of a new, empty store on the engine of `store_url` (made once per engine)."""
    engine = "sqlite" if store_url.startswith("sqlite:") else "postgresql"
    if engine in _fresh_schemas:
        return _fresh_schemas[engine]
    if engine == "sqlite":
        with open_migrated_store(StorageSettings(url=f"sqlite:///{tmp_path / 'fresh.db'}")) as s:
            found = schema_of(s)
    else:
        admin = request.getfixturevalue("postgres_admin")
        with (
            fresh_schema_url(admin, "t_" + uuid.uuid4().hex[:12]) as url,
            open_migrated_store(StorageSettings(url=url)) as s,
        ):
            found = schema_of(s)
    _fresh_schemas[engine] = found
    return found


@pytest.mark.parametrize("version", range(1, LATEST))
def test_a_database_of_every_earlier_version_upgrades_with_its_data(
    version: int,
    store_url: str,
    library_rows: Rows,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    with open_store(store_url) as old:
        assert migrate(old, up_to=version) == list(range(1, version + 1))
        inserted = fill(old, library_rows)
    expected = {"bib_records", "items"} | ({"patrons", "loans", "holds"} if version >= 3 else set())
    assert expected <= {table for table, rows in inserted.items() if rows}

    with open_migrated_store(StorageSettings(url=store_url)) as upgraded:
        with upgraded.read() as tx:
            assert tx.scalar("SELECT max(version) FROM schema_version") == LATEST
        for table, rows in inserted.items():
            if not rows or table not in library_rows:
                continue
            names = sorted(set(rows[0]) & set(columns(upgraded, table)))
            with upgraded.read() as tx:
                now = tx.execute(f'SELECT {", ".join(names)} FROM "{table}"')
            kept = sorted((tuple(plain(v) for v in row) for row in now), key=sort_key)
            wrote = sorted((tuple(row[c] for c in names) for row in rows), key=sort_key)
            assert kept == wrote, table
        upgraded_schema = schema_of(upgraded)

    assert upgraded_schema == fresh_schema(request, store_url, tmp_path)
