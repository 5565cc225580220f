"""What the batch tests share: a load with options, and a dump of everything a batch may touch
(records, identifiers, browse entries, copies, loans, holds, and what searches find)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway.catalogue.loading.loader import Loader, LoadOptions
from gateway.catalogue.loading.report import LoadReport
from gateway.catalogue.query import SortKey
from gateway.catalogue.search import search
from gateway.circulation.policy import Policy
from gateway.config import BUILTIN_PROFILES, DatabaseSettings, Settings
from gateway.cql.free_text import read_query
from gateway.store import Store

PROFILES = {p.name: p for p in BUILTIN_PROFILES}
MAIN = DatabaseSettings(name="main")
AVAILABILITY = Policy.from_settings(Settings()).availability


def load(
    store: Store,
    *paths: Path,
    database: DatabaseSettings = MAIN,
    profile: str = "libgate",
    batch_size: int = 50,
    **options: Any,
) -> LoadReport:
    settings = LoadOptions(
        database=database, profile=PROFILES[profile], batch_size=batch_size, **options
    )
    return Loader(store, settings).load(list(paths))


def _plain(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)


def dump(store: Store, queries: tuple[str, ...] = (), database: str = "main") -> dict[str, Any]:
    """The catalogue as an undo must leave it: every row by id, and each query's hits."""
    with store.read() as tx:
        tables = {
            "records": tx.execute(
                "SELECT id, database, record_id, format, marc, bib, title, author, year, digest,"
                " sort_title, sort_author FROM bib_records ORDER BY id"
            ),
            "identifiers": tx.execute(
                "SELECT record_pk, kind, value FROM bib_identifiers ORDER BY 1, 2, 3"
            ),
            "browse": tx.execute(
                "SELECT e.record_pk, h.database, h.field, h.sort_key, h.heading"
                " FROM browse_entries e JOIN browse_headings h ON h.id = e.heading_id"
                " ORDER BY 1, 2, 3, 4"
            ),
            "items": tx.execute(
                "SELECT id, barcode, record_pk, library, location, call_number, item_type,"
                " status, source, properties FROM items ORDER BY id"
            ),
            "loans": tx.execute("SELECT * FROM loans ORDER BY id"),
            "holds": tx.execute("SELECT * FROM holds ORDER BY id"),
        }
    found: dict[str, Any] = {
        name: [_plain(tuple(r)) for r in rows] for name, rows in tables.items()
    }
    hits = {}
    for text in queries:
        # Sorted by title (the sort key with the record's id appended: a total order). Ranked
        # by relevance, equal scores come in index order, which any re-indexing of a record
        # changes (an overlay as much as an undo).
        query = replace(read_query(text).query, sort=(SortKey("title"),))
        result = search(store, query, database, availability=AVAILABILITY, limit=50)
        hits[text] = (result.total, [(h.record_id, h.copies, h.available) for h in result.hits])
    found["searches"] = hits
    return found
