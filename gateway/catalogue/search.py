"""Catalogue search and browse: the service the CLI, SRU and Z39.50 call.

Synchronous over a `Store` and its search index: Twisted front-ends call it from their thread
pool. Keyword search, counting and ranking run in the store's Tantivy index (`textindex`,
caught up first if the store moved on); the records, copy counts and the availability limit
come from the store, read at query time, so a checkout made by any process is seen by the
next search in every other. Browse reads the store's heading lists (B-tree sorted tables).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import tantivy

from gateway.catalogue.indexes import INDEXES
from gateway.catalogue.normalise import sort_key
from gateway.catalogue.planner import TantivyPlan, validate, without_controls
from gateway.catalogue.planner import plan as plan_tantivy
from gateway.catalogue.query import Query, QueryError, SortKey
from gateway.catalogue.textindex import index_for, store_state
from gateway.circulation.availability import AvailabilityRule
from gateway.store import Store, Transaction
from gateway.store.engine import Row

MAX_PAGE = 1000
log = logging.getLogger("libgate.search")


@dataclass(frozen=True)
class Hit:
    record_pk: int
    record_id: str
    title: str
    author: str
    year: int | None
    copies: int
    available: int


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: tuple[Hit, ...]
    offset: int


@dataclass(frozen=True)
class BrowseEntry:
    heading: str
    count: int


MAX_RESULT_IDS = 100_000


def _hit_rows(tx: Transaction, keys: list[int]) -> list[Row]:
    if not keys:
        return []
    marks = ",".join("?" * len(keys))
    return tx.execute(
        f"SELECT id, record_id, title, author, year FROM bib_records WHERE id IN ({marks})", keys
    )


def _availability(
    tx: Transaction, record_pks: list[int], rule: AvailabilityRule
) -> dict[int, tuple[int, int]]:
    """(copies, available copies) per title, available as the engine decides it."""
    if not record_pks:
        return {}
    marks = ",".join("?" * len(record_pks))
    available, available_params = rule.sql_available("i")
    rows = tx.execute(
        f"SELECT i.record_pk, count(*), sum(CASE WHEN {available} THEN 1 ELSE 0 END)"
        f" FROM items i WHERE i.record_pk IN ({marks}) GROUP BY i.record_pk",
        [*available_params, *record_pks],
    )
    return {row[0]: (int(row[1]), int(row[2] or 0)) for row in rows}


def browse(
    store: Store, database: str, index: str, start: str, *, count: int = 20, position: int = 1
) -> list[BrowseEntry]:
    """Headings in filing order around `start`: `position` (1-based) is where the first heading
    at or after `start` appears in the returned list, as SRU scan's responsePosition."""
    spec = INDEXES.get(index)
    if spec is None or not spec.browse:
        browsable = ", ".join(n for n, s in INDEXES.items() if s.browse)
        raise QueryError(f"cannot browse {index!r}; browse lists: {browsable}", index=index)
    if count < 0 or count > MAX_PAGE or position < 0 or position > count + 1:
        raise QueryError("browse needs 0 <= count <= 1000 and 0 <= position <= count + 1")
    key = sort_key(start) if start.strip() else ""
    select = (
        "SELECT h.heading, (SELECT count(*) FROM browse_entries e WHERE e.heading_id = h.id) AS n"
        " FROM browse_headings h WHERE h.database = ? AND h.field = ? AND h.sort_key {op} ?"
        " AND EXISTS (SELECT 1 FROM browse_entries e WHERE e.heading_id = h.id)"
        " ORDER BY h.sort_key {direction} LIMIT ?"
    )
    before_count = max(position - 1, 0)
    with store.read() as tx:
        after = (
            tx.execute(
                # Position 0: the start term sits just before the list, so it is not in it.
                select.format(op=">" if position == 0 else ">=", direction="ASC"),
                (database, index, key, count - before_count),
            )
            if count > before_count
            else []
        )
        before = (
            tx.execute(
                select.format(op="<", direction="DESC"), (database, index, key, before_count)
            )
            if before_count
            else []
        )
    rows = list(reversed(before)) + list(after)
    return [BrowseEntry(row[0], int(row[1])) for row in rows]


def _barcode_lookup(store: Store) -> Callable[[str, bool], list[int]]:
    def lookup(value: str, prefix: bool) -> list[int]:
        with store.read() as tx:
            if prefix:
                rows = tx.execute(
                    "SELECT DISTINCT record_pk FROM items WHERE barcode >= ? AND barcode < ?",
                    (value, value + "\U0010ffff"),
                )
            else:
                rows = tx.execute("SELECT record_pk FROM items WHERE barcode = ?", (value,))
        return [int(row[0]) for row in rows]

    return lookup


def _current_searcher(store: Store) -> tantivy.Searcher:
    """The index's searcher, after catching the index up if the store moved on."""
    index = index_for(store)
    with store.read() as tx:
        current = store_state(tx)
    try:
        index.ensure_current(store, current)
    except Exception:  # a broken catch-up must not stop searching what is indexed
        log.exception("catching the search index up failed; searching it as it is")
    return index.searcher()


def _pks(searcher: tantivy.Searcher, hits: list[tuple[Any, tantivy.DocAddress]]) -> list[int]:
    values = searcher.fast_field_values("pk", [address for _, address in hits])
    return [int(v) for v in values if v is not None]


def _ordered_search(
    searcher: tantivy.Searcher, built: TantivyPlan, limit: int, offset: int = 0
) -> tuple[int, list[tuple[Any, tantivy.DocAddress]]]:
    order = built.order
    limit = max(limit, 1)  # Tantivy refuses (panics on) a limit of 0
    if order.kind == "field":
        result = searcher.search(
            built.query,
            limit,
            count=True,
            order_by_field=order.field,
            offset=offset,
            order=tantivy.Order.Desc if order.descending else tantivy.Order.Asc,
        )
    else:
        result = searcher.search(built.query, limit, count=True, offset=offset)
    count: int = result.count  # type: ignore[attr-defined]  # missing from tantivy's stub
    return int(count), list(result.hits)


def _sort_by_keys(
    tx: Transaction, pks: list[int], scores: dict[int, float], keys: tuple[SortKey, ...]
) -> list[int]:
    """Several sort keys: stable sorts by the store's sort columns, last key first."""
    columns: dict[int, tuple[str, str, int | None]] = {}
    for start in range(0, len(pks), 5000):
        chunk = pks[start : start + 5000]
        marks = ",".join("?" * len(chunk))
        for pk, title, author, year in tx.execute(
            f"SELECT id, sort_title, sort_author, year FROM bib_records WHERE id IN ({marks})",
            chunk,
        ):
            columns[int(pk)] = (title, author, year)
    ordered = sorted(p for p in pks if p in columns)
    for key in reversed(keys):
        if key.key == "relevance":
            ordered.sort(key=lambda p: -scores.get(p, 0.0))
        elif key.key == "record":
            ordered.sort(reverse=key.descending)
        elif key.key == "title":
            ordered.sort(key=lambda p: columns[p][0], reverse=key.descending)
        elif key.key == "author":
            ordered.sort(key=lambda p: columns[p][1], reverse=key.descending)
        else:  # date: no year last in either direction
            sign = -1 if key.descending else 1
            ordered.sort(key=lambda p: (columns[p][2] is None, sign * (columns[p][2] or 0)))
    return ordered


def _available_pks(tx: Transaction, pks: list[int], rule: AvailabilityRule) -> set[int]:
    """The titles among `pks` with a copy available now, from circulation state in the store
    (every process sees every checkout: nothing of it is in the search index)."""
    condition, params = rule.sql_available("i")
    found: set[int] = set()
    for start in range(0, len(pks), 5000):
        chunk = pks[start : start + 5000]
        marks = ",".join("?" * len(chunk))
        for (pk,) in tx.execute(
            f"SELECT DISTINCT i.record_pk FROM items i WHERE i.record_pk IN ({marks})"
            f" AND {condition}",
            [*chunk, *params],
        ):
            found.add(int(pk))
    return found


def _execute(
    store: Store,
    query: Query,
    database: str,
    availability: AvailabilityRule,
    available_only: bool,
    limit: int,
    offset: int,
) -> tuple[int, list[int]]:
    """The exact hit count and the keys of hits offset+1 … offset+limit, in result order."""
    query = replace(query, root=without_controls(query.root))
    validate(query)
    searcher = _current_searcher(store)
    built = plan_tantivy(query, database, searcher, _barcode_lookup(store))
    if not available_only and built.order.kind != "keys":
        if offset:
            # Tantivy sizes its collector to offset + limit: count first, so a far offset
            # (SRU's startRecord is the client's) costs nothing.
            total, _ = _ordered_search(searcher, built, 1)
            if offset >= total:
                return total, []
        total, hits = _ordered_search(searcher, built, limit, offset)
        return total, _pks(searcher, hits)[: max(limit, 0)] if limit else []
    total, _ = _ordered_search(searcher, built, 1)
    if total == 0:
        return 0, []
    _, hits = _ordered_search(searcher, built, total)
    pks = _pks(searcher, hits)
    with store.read() as tx:
        if built.order.kind == "keys":
            scores = {pk: float(score) for pk, (score, _) in zip(pks, hits, strict=True)}
            pks = _sort_by_keys(tx, pks, scores, built.order.keys)
        if available_only:
            available = _available_pks(tx, pks, availability)
            pks = [pk for pk in pks if pk in available]
    return len(pks), pks[offset : offset + limit]


def search(
    store: Store,
    query: Query,
    database: str,
    *,
    availability: AvailabilityRule,
    limit: int = 10,
    offset: int = 0,
    available_only: bool = False,
    count: bool = True,
) -> SearchResult:
    """A page of hits, each with its copies and available copies counted by `availability`
    (the circulation policy's rule), which `available_only` also limits the hits by."""
    total, keys = page_ids(
        store,
        query,
        database,
        availability=availability,
        limit=limit,
        offset=offset,
        available_only=available_only,
    )
    with store.read() as tx:
        found = {row[0]: row for row in _hit_rows(tx, keys)}
        rows = [found[key] for key in keys if key in found]
        counts = _availability(tx, [row[0] for row in rows], availability)
    hits = tuple(
        Hit(row[0], row[1], row[2], row[3], row[4], *counts.get(row[0], (0, 0))) for row in rows
    )
    return SearchResult(total=total if count else -1, hits=hits, offset=offset)


def page_ids(
    store: Store,
    query: Query,
    database: str,
    *,
    availability: AvailabilityRule,
    limit: int = 10,
    offset: int = 0,
    available_only: bool = False,
) -> tuple[int, list[int]]:
    """The exact hit count and the record keys of hits offset+1 … offset+limit: `search`
    without the hit rows and copy counts, for a protocol that reads the records anyway."""
    if limit < 0 or limit > MAX_PAGE or offset < 0:
        raise QueryError(f"page size must be 0..{MAX_PAGE} and the offset not negative")
    return _execute(store, query, database, availability, available_only, limit, offset)


def search_ids(
    store: Store,
    query: Query,
    database: str,
    *,
    availability: AvailabilityRule,
    limit: int,
    available_only: bool = False,
) -> tuple[int, list[int]]:
    """The exact hit count and the record keys of the first `limit` hits in result order:
    what a protocol's result set keeps so that later pages need no new search."""
    if limit < 0 or limit > MAX_RESULT_IDS:
        raise QueryError(f"a result set keeps 0..{MAX_RESULT_IDS} records")
    return _execute(store, query, database, availability, available_only, limit, 0)
