"""Opening the store the configuration names, for every entry point (the CLI commands and
`serve`), so none of them has to reach into another to get a store."""

from __future__ import annotations

from gateway.config import StorageSettings
from gateway.store.engine import Store, open_store
from gateway.store.migrate import migrate


def open_configured_store(storage: StorageSettings) -> Store:
    """The store `[storage]` names, as it is (no schema change)."""
    return open_store(
        storage.url, busy_timeout_ms=storage.busy_timeout_ms, pool_size=storage.pool_size
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
