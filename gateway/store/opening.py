"""Opening a store: the engine a URL names (`open_store`), and the store the configuration
names, for every entry point (the CLI commands and `serve`), so none of them has to reach into
another to get a store."""

from __future__ import annotations

from pathlib import Path

from gateway.config import StorageSettings
from gateway.store.engine import Store, StoreError
from gateway.store.migrate import migrate
from gateway.store.sqlite import SqliteStore, sqlite_path

# What a read-only command says when the SQLite file the config names is not there.
NO_DATABASE = "no database at {path}; use --config"


def open_store(
    url: str, *, busy_timeout_ms: int = 10000, pool_size: int = 8, search_index_dir: str = ""
) -> Store:
    """Open the store a URL names (`sqlite:///path.db`, `postgresql://...`); its search index
    lives in `search_index_dir` ("" = the default place, see gateway.catalogue.textindex)."""
    store: Store
    if url.startswith("sqlite:"):
        store = SqliteStore(sqlite_path(url), busy_timeout_ms=busy_timeout_ms)
    elif url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        # Imported here on purpose: psycopg and its pool take ~0.2 s to import (python -X
        # importtime), which every SQLite site would otherwise pay on each `libgate` command.
        from gateway.store.postgres import PostgresStore

        store = PostgresStore(url, pool_size=pool_size)
    else:
        raise StoreError(f"storage url {url!r}: use sqlite:///path.db or postgresql://...")
    store.search_index_dir = search_index_dir
    return store


def open_configured_store(storage: StorageSettings) -> Store:
    """The store `[storage]` names, as it is (no schema change)."""
    return open_store(
        storage.url,
        busy_timeout_ms=storage.busy_timeout_ms,
        pool_size=storage.pool_size,
        search_index_dir=storage.search_index_dir,
    )


def open_migrated_store(storage: StorageSettings) -> Store:
    """The store `[storage]` names with its schema brought up to date; closed again if the
    schema cannot be applied."""
    store = open_configured_store(storage)
    try:
        migrate(store)
    except BaseException:
        store.close()
        raise
    return store


def open_existing_store(storage: StorageSettings) -> Store:
    """The store `[storage]` names, for a command that only reads: a SQLite file that does
    not exist is an error, not a new empty library (run from the wrong directory, `libgate
    search` used to create `./var/libgate.db` and answer "0 hits"). Nothing is created.
    PostgreSQL reports a missing database itself; an existing store's schema is brought up to
    date, as `open_migrated_store` does."""
    if storage.url.startswith("sqlite:"):
        path = Path(sqlite_path(storage.url))
        if not path.is_file():
            raise StoreError(NO_DATABASE.format(path=path))
    return open_migrated_store(storage)
