"""What the Z39.50 session asks of the catalogue and the circulation engine. Synchronous: the
Twisted adapter runs sessions in a thread pool; nothing here knows about sockets or APDUs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.catalogue import repository
from gateway.catalogue.normalise import sort_key
from gateway.catalogue.query import Query, QueryError
from gateway.catalogue.search import browse, search, search_ids
from gateway.circulation.engine import Engine
from gateway.config import DatabaseSettings
from gateway.store import Store
from z3950 import records
from z3950.diagnostics import Diagnostic, Z3950Error, from_query_error
from z3950.messages import RetrievalRecord, ScanEntry

log = logging.getLogger("libgate.z3950")
DEFAULT_DATABASE = "default"  # what yaz-client and ZOOM send when told nothing


@dataclass(frozen=True)
class Found:
    total: int
    record_pks: tuple[int, ...]  # the first hits in result order (at most `keep`)


class CatalogueService:
    def __init__(self, store: Store, engine: Engine, databases: Sequence[DatabaseSettings]) -> None:
        self.store = store
        self.engine = engine
        self.databases = [d.name for d in databases]
        self._by_name = {d.name.lower(): d.name for d in databases}

    def database(self, names: tuple[str, ...]) -> str:
        """The one catalogue database a request names (case-insensitive; `Default` is the
        first configured). More than one is 111; an unknown one is 235."""
        if not names:
            raise Z3950Error(109, "no database named")
        if len(names) > 1:
            raise Z3950Error(111, "1")
        name = names[0].strip().lower()
        if name == DEFAULT_DATABASE and DEFAULT_DATABASE not in self._by_name:
            return self.databases[0]
        found = self._by_name.get(name)
        if found is None:
            raise Z3950Error(235, names[0][:100])
        return found

    def search(self, query: Query, database: str, keep: int) -> Found:
        try:
            total, pks = search_ids(self.store, query, database, limit=keep)
        except QueryError as error:
            raise from_query_error(error) from None
        return Found(total, tuple(pks))

    def page(self, query: Query, database: str, offset: int, limit: int) -> list[int]:
        """Record keys of hits `offset+1 … offset+limit`, for pages past what a set kept."""
        try:
            result = search(self.store, query, database, limit=limit, offset=offset, count=False)
        except QueryError as error:
            raise from_query_error(error) from None
        return [hit.record_pk for hit in result.hits]

    def retrieve(
        self, record_pks: list[int], spec: records.RecordSpec
    ) -> list[tuple[str, RetrievalRecord | Diagnostic]]:
        """(database, record or surrogate diagnostic) for each key, in order; availability is
        read from the engine now, so a checkout a moment ago shows."""
        with self.store.read() as tx:
            stored = repository.records_for_retrieval(tx, record_pks)
        availability = self.engine.availability(record_pks) if spec.needs_availability else {}
        built: list[tuple[str, RetrievalRecord | Diagnostic]] = []
        for pk in record_pks:
            record = stored.get(pk)
            if record is None:  # deleted since the search
                built.append(("", Diagnostic(14, "the record has been deleted")))
                continue
            try:
                built.append((record.database, records.build(spec, record, availability.get(pk))))
            except Exception:  # noqa: BLE001 - one bad record must not lose the page
                log.exception("record %s (%s) cannot be built", pk, record.record_id)
                built.append((record.database, Diagnostic(14, record.record_id)))
        return built

    def scan(
        self, database: str, index: str, start: str, count: int, position: int
    ) -> tuple[list[ScanEntry], int]:
        """Headings around `start` and the 1-based position of the first one at or after it
        (one past the end when every heading files before it)."""
        try:
            entries = browse(self.store, database, index, start, count=count, position=position)
        except QueryError as error:
            raise from_query_error(error) from None
        key = sort_key(start) if start.strip() else ""
        before = sum(1 for entry in entries if sort_key(entry.heading) < key)
        return [ScanEntry(entry.heading, entry.count) for entry in entries], before + 1
