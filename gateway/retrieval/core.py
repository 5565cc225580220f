"""`Retrieval`: search, page and retrieve for the protocol front-ends. Synchronous: the Twisted
adapters call it from their thread pools.

Availability has one source. The search limit and the per-hit counts use the circulation
policy's rule as SQL (`AvailabilityRule.sql_available`), and records read it from the engine
(`Engine.availability`) at retrieval time, so a checkout made a moment ago shows. The rule is
the engine's own, so the limit and a hold refusal never disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.catalogue import repository
from gateway.catalogue.query import Query
from gateway.catalogue.repository import RetrievedRecord
from gateway.catalogue.search import (
    BrowseEntry,
    SearchResult,
    browse,
    page_ids,
    search,
    search_ids,
)
from gateway.circulation.availability import AvailabilityRule
from gateway.circulation.engine import Engine, TitleAvailability
from gateway.retrieval.resultset import ResultSet
from gateway.store import Store

log = logging.getLogger("libgate.retrieval")

Built = TypeVar("Built")
RecordBuilder = Callable[[RetrievedRecord, TitleAvailability | None], Built]


@dataclass(frozen=True)
class Retrieved(Generic[Built]):
    """One record of a page: what each protocol turns into a record or a surrogate diagnostic.

    `record` is None when the record was deleted since the search; `built` is None when it
    could not be built (the log has why). One bad record never fails the page."""

    record_pk: int
    record: RetrievedRecord | None
    built: Built | None


class Retrieval:
    def __init__(self, store: Store, engine: Engine) -> None:
        self.store = store
        self.engine = engine

    @property
    def availability(self) -> AvailabilityRule:
        """The available-copy predicate, as the engine decides it."""
        return self.engine.policy.availability

    # --- searching --------------------------------------------------------------------------

    def search(
        self, name: str, database: str, query: Query, *, keep: int, available_only: bool = False
    ) -> ResultSet:
        """A result set with the exact count and the first `keep` hits. Raises QueryError."""
        total, record_pks = search_ids(
            self.store,
            query,
            database,
            availability=self.availability,
            limit=keep,
            available_only=available_only,
        )
        return ResultSet(name, database, query, total, tuple(record_pks), available_only)

    def search_page(
        self,
        query: Query,
        database: str,
        *,
        start: int,
        count: int,
        available_only: bool = False,
        with_total: bool = True,
    ) -> SearchResult:
        """Hits `start … start+count-1` (1-based) of a search kept nowhere (total -1 unless
        `with_total`). Raises QueryError."""
        return search(
            self.store,
            query,
            database,
            availability=self.availability,
            limit=count,
            offset=start - 1,
            available_only=available_only,
            count=with_total,
        )

    def search_page_ids(
        self, query: Query, database: str, *, start: int, count: int, available_only: bool = False
    ) -> tuple[int, list[int]]:
        """The exact count and the record keys of hits `start … start+count-1` (1-based) of a
        search kept nowhere: what a protocol needs when it reads the records itself. Raises
        QueryError."""
        return page_ids(
            self.store,
            query,
            database,
            availability=self.availability,
            limit=count,
            offset=start - 1,
            available_only=available_only,
        )

    def page(self, result_set: ResultSet, start: int, count: int) -> list[int]:
        """Record keys of hits `start … start+count-1` (1-based): from the kept hits, else
        searched again with the set's query (the set keeps only its first hits)."""
        if count <= 0:
            return []
        kept = result_set.kept(start, count)
        if kept is not None:
            return kept
        _total, record_pks = self.search_page_ids(
            result_set.query,
            result_set.database,
            start=start,
            count=count,
            available_only=result_set.available_only,
        )
        return record_pks

    def browse(
        self, database: str, index: str, start: str, *, count: int, position: int
    ) -> list[BrowseEntry]:
        """Headings around `start` (see `gateway.catalogue.search.browse`). Raises QueryError."""
        return browse(self.store, database, index, start, count=count, position=position)

    # --- retrieving -------------------------------------------------------------------------

    def retrieve(
        self,
        record_pks: Sequence[int],
        build: RecordBuilder[Built],
        *,
        with_availability: bool,
    ) -> list[Retrieved[Built]]:
        """Each record built by `build`, in order, with the engine's availability of its copies
        when asked for. A record that raises while building is logged and comes back unbuilt,
        so the protocol answers it with its own surrogate diagnostic and the rest of the page
        still goes out."""
        wanted = list(record_pks)
        if not wanted:
            return []
        with self.store.read() as tx:
            stored = repository.records_for_retrieval(tx, wanted)
        availability = self.engine.availability(wanted) if with_availability else {}
        found: list[Retrieved[Built]] = []
        for pk in wanted:
            record = stored.get(pk)
            if record is None:  # deleted since the search
                found.append(Retrieved(pk, None, None))
                continue
            try:
                built = build(record, availability.get(pk))
            except Exception:  # noqa: BLE001 - one bad record must not lose the page
                log.exception("record %s (%s) cannot be built", pk, record.record_id)
                found.append(Retrieved(pk, record, None))
                continue
            found.append(Retrieved(pk, record, built))
        return found
