"""Storage: one interface (`Store`, `Transaction`) and two engines, SQLite and PostgreSQL."""

from gateway.store.engine import Store, StoreError, Transaction, open_store

__all__ = ["Store", "StoreError", "Transaction", "open_store"]
