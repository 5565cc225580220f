"""Union search for the readers' portal: `UnionSearcher` (gateway/union_port.py) over the
fan-out. The search runs on the reactor, as every network client does. The portal either
follows it live (`start`: told of every change, it takes a `snapshot` when it wants one, as
pazpar2's `show` and `bytarget`), or waits for its end from a worker thread (`search`, for a
browser without script). Either way it gets plain values back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.threads import blockingCallFromThread

from gateway.circulation.policy import Policy
from gateway.config import Settings, UnionTarget
from gateway.cql.free_text import read_query
from gateway.union_port import (
    Holder,
    LibraryOutcome,
    UnionOutcome,
    UnionView,
    UnionWork,
)
from union.fanout import UnionSearch
from union.merge import MergedRecord, facets, narrowed
from union.request import copy_decisions, form_from, lender_rota
from union.sru_client import SruClient
from union.targets import clients
from union.z3950_pool import Z3950Pool

MAX_WORKS = 50  # merged works handed back in one outcome


class PortalSearch:
    """One search under way (gateway.union_port.RunningSearch)."""

    def __init__(self, searcher: ReactorUnionSearcher, search: UnionSearch, view: UnionView):
        self.searcher = searcher
        self.search = search
        self.view = view

    @property
    def finished(self) -> bool:
        return self.search.finished

    def snapshot(self) -> UnionOutcome:
        return self.searcher.outcome(self.search, self.view)

    def cancel(self) -> None:
        self.search.cancel()


class ReactorUnionSearcher:
    def __init__(self, settings: Settings, reactor: Any) -> None:
        self.settings = settings
        self.reactor = reactor
        self.policy = Policy.from_settings(settings)
        self.profiles = {p.name: p for p in settings.holdings_profiles}
        self.agency = {t.name: t.agency_id for t in settings.union.targets}
        self.pool = Z3950Pool.from_settings(settings.union, reactor)  # for the process's life

    def library_names(self) -> list[str]:
        return [t.name for t in self.settings.union.targets if t.enabled]

    def _targets(self, names: list[str] | None) -> list[UnionTarget]:
        configured = self.settings.union.targets
        if not names:
            return [t for t in configured if t.enabled]
        return [t for t in configured if t.name in names]

    # --- following a search live (on the reactor) -------------------------------------------

    def start(
        self,
        text: str,
        target_names: list[str] | None,
        timeout: float,
        view: UnionView,
        on_change: Callable[[], None],
    ) -> PortalSearch:
        query = read_query(text).query  # a QueryError reaches the caller before any I/O
        sru = SruClient(self.reactor)
        search = UnionSearch(
            self._targets(target_names),
            query,
            text,
            clients(self.reactor, sru, self.pool),
            self.reactor,
            timeout,
            self.profiles,
            on_change=on_change,
        )

        def close(result: Any) -> Any:  # the SRU client's idle connections go with the search
            return sru.close().addBoth(lambda _: result)

        search.done.addBoth(close)
        return PortalSearch(self, search, view)

    # --- waiting for the end (from a worker thread) -------------------------------------------

    def search(
        self,
        text: str,
        target_names: list[str] | None,
        timeout: float,
        view: UnionView | None = None,
    ) -> UnionOutcome:
        view = view or UnionView()
        read_query(text)  # a QueryError reaches the caller before any I/O

        def start() -> Any:  # Any: typeshed cannot infer the Deferred's result here
            running = self.start(text, target_names, timeout, view, lambda: None)
            return running.search.done

        search: UnionSearch = blockingCallFromThread(self.reactor, start)
        return self.outcome(search, view)

    # --- what the reader sees --------------------------------------------------------------------

    def outcome(self, search: UnionSearch, view: UnionView) -> UnionOutcome:
        libraries = tuple(
            LibraryOutcome(name=s.name, state=s.state.value, hits=s.hits, error=s.error, ms=s.ms)
            for s in search.statuses.values()
        )
        merged = search.merged(view.sort)
        counted = facets(merged)
        shown = narrowed(merged, view.only)[:MAX_WORKS]
        return UnionOutcome(
            libraries=libraries,
            works=tuple(self._work(r) for r in shown),
            total_works=len(merged),
            facets={name: tuple(counts) for name, counts in counted.items()},
            finished=search.finished,
        )

    def _work(self, record: MergedRecord) -> UnionWork:
        holders = []
        for name in record.targets:
            sources = [s for s in record.sources if s.target == name]
            offers: bool | None = None
            if any(s.holdings_known for s in sources):
                decisions = [d for s in sources for d in copy_decisions(s, self.policy)]
                offers = any(d is None for d in decisions)
            holders.append(
                Holder(name=name, agency_id=self.agency.get(name, ""), offers_ill=offers)
            )
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


__all__ = ["MAX_WORKS", "PortalSearch", "ReactorUnionSearcher"]
