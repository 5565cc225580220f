"""What the Z39.50 session asks of the catalogue and the circulation engine. Synchronous: the
Twisted adapter runs sessions in a thread pool; nothing here knows about sockets or APDUs.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.catalogue.normalise import sort_key
from gateway.catalogue.query import Query, QueryError
from gateway.catalogue.repository import RetrievedRecord
from gateway.circulation.engine import Engine, TitleAvailability
from gateway.config import DatabaseSettings
from gateway.retrieval import ResultSet, Retrieval
from gateway.store import Store
from gateway.z3950_codec.diagnostics import Diagnostic
from gateway.z3950_codec.messages import RetrievalRecord, ScanEntry
from z3950 import records
from z3950.diagnostics import Z3950Error, from_query_error

DEFAULT_DATABASE = "default"  # what yaz-client and ZOOM send when told nothing


class CatalogueService:
    def __init__(self, store: Store, engine: Engine, databases: Sequence[DatabaseSettings]) -> None:
        self.store = store
        self.engine = engine
        self.retrieval = Retrieval(store, engine)
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

    def search(self, name: str, query: Query, database: str, keep: int) -> ResultSet:
        """A result set named `name` with the exact count and the first `keep` hits."""
        try:
            return self.retrieval.search(name, database, query, keep=keep)
        except QueryError as error:
            raise from_query_error(error) from None

    def page(self, result_set: ResultSet, start: int, count: int) -> list[int]:
        """Record keys of hits `start … start+count-1` (1-based), kept or searched again."""
        try:
            return self.retrieval.page(result_set, start, count)
        except QueryError as error:
            raise from_query_error(error) from None

    def retrieve(
        self, record_pks: list[int], spec: records.RecordSpec
    ) -> list[tuple[str, RetrievalRecord | Diagnostic]]:
        """(database, record or surrogate diagnostic) for each key, in order; availability is
        read from the engine now, so a checkout a moment ago shows."""

        def build(
            record: RetrievedRecord, availability: TitleAvailability | None
        ) -> RetrievalRecord | Diagnostic:
            return records.build(spec, record, availability)

        built: list[tuple[str, RetrievalRecord | Diagnostic]] = []
        found = self.retrieval.retrieve(
            record_pks, build, with_availability=spec.needs_availability
        )
        for retrieved in found:
            if retrieved.record is None:  # deleted since the search
                built.append(("", Diagnostic(14, "the record has been deleted")))
            elif retrieved.built is None:  # could not be built: the log says why
                built.append(
                    (retrieved.record.database, Diagnostic(14, retrieved.record.record_id))
                )
            else:
                built.append((retrieved.record.database, retrieved.built))
        return built

    def scan(
        self, database: str, index: str, start: str, count: int, position: int
    ) -> tuple[list[ScanEntry], int]:
        """Headings around `start` and the 1-based position of the first one at or after it
        (one past the end when every heading files before it)."""
        try:
            entries = self.retrieval.browse(database, index, start, count=count, position=position)
        except QueryError as error:
            raise from_query_error(error) from None
        key = sort_key(start) if start.strip() else ""
        before = sum(1 for entry in entries if sort_key(entry.heading) < key)
        return [ScanEntry(entry.heading, entry.count) for entry in entries], before + 1
