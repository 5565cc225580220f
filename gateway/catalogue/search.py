"""Catalogue search and browse: the service the CLI, SRU and Z39.50 call.

Synchronous and pure over a `Store`: Twisted front-ends call it from their thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.catalogue.indexes import INDEXES
from gateway.catalogue.normalise import sort_key
from gateway.catalogue.planner import Plan, plan
from gateway.catalogue.query import Query, QueryError
from gateway.circulation.availability import AvailabilityRule
from gateway.store import Store, Transaction
from gateway.store.engine import Row

MAX_PAGE = 1000


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


@dataclass(frozen=True)
class _Planned:
    """A query planned in one transaction: the plan, the tables its conditions read, and its
    WHERE clause limited to one database, with the parameters of both."""

    built: Plan
    source: str
    where: str
    params: list[object]

    def count(self, tx: Transaction) -> int:
        """The exact number of hits."""
        if self.built.fts_match is not None:
            sql = "SELECT count(*) FROM search_fts WHERE search_fts MATCH ?"
            return int(tx.scalar(sql, [self.built.fts_match]))
        return int(tx.scalar(f"SELECT count(*) FROM {self.source} WHERE {self.where}", self.params))

    def page(self, tx: Transaction, columns: str, limit: int, offset: int) -> list[Row]:
        """`columns` of hits `offset+1 … offset+limit` in result order (plans without an FTS
        order)."""
        built = self.built
        return tx.execute(
            f"SELECT {columns} FROM {self.source}{built.rank_join} WHERE {self.where}"
            f" ORDER BY {built.order_by} LIMIT ? OFFSET ?",
            [*built.rank_params, *self.params, *built.order_params, limit, offset],
        )


def _planned(
    tx: Transaction,
    query: Query,
    database: str,
    availability: AvailabilityRule,
    available_only: bool,
) -> _Planned:
    built = plan(query, tx.dialect, database, available=availability if available_only else None)
    source = "bib_records r"
    if tx.dialect == "postgresql" and built.needs_docs:
        source = "bib_records r JOIN search_docs d ON d.record_pk = r.id"
    return _Planned(built, source, f"r.database = ? AND {built.where}", [database, *built.params])


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
    if limit < 0 or limit > MAX_PAGE or offset < 0:
        raise QueryError(f"page size must be 0..{MAX_PAGE} and the offset not negative")
    with store.read() as tx:
        planned = _planned(tx, query, database, availability, available_only)
        total = planned.count(tx) if count else -1
        rows: list[Row] = []
        if limit and (total != 0):
            if planned.built.fts_order is not None:
                keys = _fts_page(tx, planned.built, limit, offset)
                found = {row[0]: row for row in _hit_rows(tx, keys)}
                rows = [found[key] for key in keys if key in found]
            else:
                rows = planned.page(
                    tx, "r.id, r.record_id, r.title, r.author, r.year", limit, offset
                )
        counts = _availability(tx, [row[0] for row in rows], availability)
    hits = tuple(
        Hit(row[0], row[1], row[2], row[3], row[4], *counts.get(row[0], (0, 0))) for row in rows
    )
    return SearchResult(total=total, hits=hits, offset=offset)


MAX_RESULT_IDS = 100_000


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
    with store.read() as tx:
        planned = _planned(tx, query, database, availability, available_only)
        total = planned.count(tx)
        if not (limit and total):
            return total, []
        if planned.built.fts_order is not None:
            return total, _fts_page(tx, planned.built, limit, 0)
        rows = planned.page(tx, "r.id", limit, 0)
    return total, [int(row[0]) for row in rows]


def _fts_page(tx: Transaction, built: Plan, limit: int, offset: int) -> list[int]:
    rows = tx.execute(
        "SELECT rowid FROM search_fts WHERE search_fts MATCH ?"
        f" ORDER BY {built.fts_order} LIMIT ? OFFSET ?",
        [built.fts_match, limit, offset],
    )
    return [int(row[0]) for row in rows]


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
