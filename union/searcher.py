"""Union search for a caller on a worker thread (the readers' portal): `UnionSearcher`
(gateway/union_port.py) over the fan-out. The search runs on the reactor, as every network
client does; the caller's thread waits (`blockingCallFromThread`) until the search ends, at
the latest when its deadline passes, and gets plain values back."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import blockingCallFromThread

from gateway.catalogue.query import Query
from gateway.circulation.policy import Policy
from gateway.config import Settings, UnionTarget
from gateway.cql.free_text import read_query
from gateway.union_port import Holder, LibraryOutcome, UnionOutcome, UnionWork
from union.fanout import UnionSearch
from union.merge import MergedRecord
from union.request import copy_decisions, form_from, lender_rota
from union.sru_client import SruClient
from union.targets import clients
from union.z3950_pool import Z3950Pool

MAX_WORKS = 50  # merged works handed back from one search


class ReactorUnionSearcher:
    def __init__(self, settings: Settings, reactor: Any) -> None:
        self.settings = settings
        self.reactor = reactor
        self.policy = Policy.from_settings(settings)
        self.profiles = {p.name: p for p in settings.holdings_profiles}
        self.pool = Z3950Pool.from_settings(settings.union, reactor)  # for the process's life

    def library_names(self) -> list[str]:
        return [t.name for t in self.settings.union.targets if t.enabled]

    def _targets(self, names: list[str] | None) -> list[UnionTarget]:
        configured = self.settings.union.targets
        if not names:
            return [t for t in configured if t.enabled]
        return [t for t in configured if t.name in names]

    def search(self, text: str, target_names: list[str] | None, timeout: float) -> UnionOutcome:
        query = read_query(text).query  # a QueryError reaches the caller before any I/O
        targets = self._targets(target_names)

        def start() -> Any:  # Any: typeshed cannot infer the Deferred's result here
            return self._start(targets, query, text, timeout)

        search: UnionSearch = blockingCallFromThread(self.reactor, start)
        libraries = tuple(
            LibraryOutcome(name=s.name, state=s.state.value, hits=s.hits, error=s.error, ms=s.ms)
            for s in search.statuses.values()
        )
        works = tuple(self._work(r) for r in search.merged()[:MAX_WORKS])
        return UnionOutcome(libraries=libraries, works=works)

    def _start(
        self, targets: list[UnionTarget], query: Query, text: str, timeout: float
    ) -> Deferred[UnionSearch]:
        """On the reactor thread: start the search; its `done` fires when it ends."""
        sru = SruClient(self.reactor)
        client_of = clients(self.reactor, sru, self.pool)
        search = UnionSearch(targets, query, text, client_of, self.reactor, timeout, self.profiles)

        def close(result: UnionSearch) -> Deferred[UnionSearch]:
            return sru.close().addBoth(lambda _: result)

        return search.done.addCallback(close)

    def _work(self, record: MergedRecord) -> UnionWork:
        agency = {t.name: t.agency_id for t in self.settings.union.targets}
        holders = []
        for name in record.targets:
            sources = [s for s in record.sources if s.target == name]
            offers: bool | None = None
            if any(s.holdings_known for s in sources):
                decisions = [d for s in sources for d in copy_decisions(s, self.policy)]
                offers = any(d is None for d in decisions)
            holders.append(Holder(name=name, agency_id=agency.get(name, ""), offers_ill=offers))
        rota = lender_rota(record, self.settings, self.policy)
        form = form_from(record, rota.agency_ids)  # what an ILL request is pre-filled with
        return UnionWork(
            title=form.title,
            author=form.author,
            publisher=form.publisher,
            year=form.year,
            isbn=form.isbn,
            language=form.language,
            holders=tuple(holders),
            lenders=rota.agency_ids,
        )


__all__ = ["MAX_WORKS", "ReactorUnionSearcher"]
