"""The tables of a store as the schema files made them, read from the database itself (so a
table a future migration adds is backed up, moved and counted without anyone listing it), in
an order where every table comes after the tables its foreign keys point to; and the counts an
operator reads after a backup, a restore or a move."""

from __future__ import annotations

from gateway.store.engine import Transaction

# What an operator checks after a backup, a restore or a move: (label, table).
SUMMARY = (
    ("records", "bib_records"),
    ("copies", "items"),
    ("readers", "patrons"),
    ("loans", "loans"),
    ("holds", "holds"),
    ("fees", "fees"),
    ("notices", "notices"),
    ("ILL requests", "ill_requests"),
    ("batches", "batches"),
)


def table_names(tx: Transaction) -> list[str]:
    """Every table of the store's schema, parents before the tables that reference them."""
    if tx.dialect == "sqlite":
        names = [
            str(row[0])
            for row in tx.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        parents = {
            name: {str(row[2]) for row in tx.execute(f'PRAGMA foreign_key_list("{name}")')}
            for name in names
        }
    else:
        names = [
            str(row[0])
            for row in tx.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                " ORDER BY tablename"
            )
        ]
        parents = {name: set() for name in names}
        for child, parent in tx.execute(
            "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text"
            " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
            " WHERE c.contype = 'f' AND n.nspname = current_schema()"
        ):
            parents[_bare(str(child))].add(_bare(str(parent)))
    return _parents_first(names, parents)


def _bare(name: str) -> str:
    """A regclass as text, without the schema or quotes it carries when not on search_path."""
    return name.rsplit(".", 1)[-1].strip('"')


def _parents_first(names: list[str], parents: dict[str, set[str]]) -> list[str]:
    """Names ordered so each follows its parents (a table referencing itself is its own
    business: its rows go in id order); alphabetical where the order is free."""
    ordered: list[str] = []
    placed: set[str] = set()
    remaining = list(names)
    while remaining:
        ready = [
            name
            for name in remaining
            if all(p in placed or p == name or p not in parents for p in parents[name])
        ]
        if not ready:  # a cycle between tables: no order satisfies it, keep the rest as listed
            ready = remaining
        for name in ready:
            ordered.append(name)
            placed.add(name)
        remaining = [name for name in remaining if name not in placed]
    return ordered


def row_counts(tx: Transaction, tables: list[str]) -> dict[str, int]:
    return {table: int(tx.scalar(f'SELECT count(*) FROM "{table}"')) for table in tables}


def summary_counts(tx: Transaction) -> list[tuple[str, int]]:
    """(label, rows) of the tables in SUMMARY that this schema has."""
    present = set(table_names(tx))
    return [
        (label, int(tx.scalar(f"SELECT count(*) FROM {table}")))
        for label, table in SUMMARY
        if table in present
    ]


def format_counts(counts: list[tuple[str, int]]) -> str:
    return ", ".join(f"{label} {count}" for label, count in counts)
