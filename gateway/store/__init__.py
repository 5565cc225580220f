"""Storage: one interface (`Store`, `Transaction`) and two engines, SQLite and PostgreSQL."""

from gateway.store.engine import Store, StoreError, Transaction
from gateway.store.opening import (
    open_configured_store,
    open_existing_store,
    open_migrated_store,
    open_store,
)

__all__ = [
    "Store",
    "StoreError",
    "Transaction",
    "open_configured_store",
    "open_existing_store",
    "open_migrated_store",
    "open_store",
]
