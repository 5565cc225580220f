"""One union search across every target at once: each target searched in parallel under its own
deadline, its state kept (connecting, searching, ok with hits, a diagnostic, failed, timed out),
records read and merged as each target answers, and the whole returned by the overall deadline
with whatever arrived. pazpar2's session is the model: `show` at any moment (progressive
results), `bytarget` (each target's state), a search that ends when every target has answered
or the time is up.

The protocol clients are behind `TargetClient` (one search: hits, raw records, diagnostic), so
this module knows nothing of SRU or Z39.50 and runs on any Twisted reactor (a test clock too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from gateway.catalogue.query import Query
from gateway.circulation.ill_partner_copies import PartnerCopy
from gateway.config import UnionTarget
from marc.errors import RecordRejected
from marc.holdings import HoldingsProfile
from union.errors import TargetTimeout
from union.holdings import marc_copies, read_opac, read_opacxml, with_item_types
from union.merge import MergedRecord, SourceRecord, merge, rank
from union.records import read_iso2709, read_xml


class TargetState(StrEnum):
    CONNECTING = "connecting"
    SEARCHING = "searching"
    OK = "ok"
    DIAGNOSTIC = "diagnostic"  # the target answered with a diagnostic (e.g. an index it lacks)
    FAILED = "failed"  # could not connect, or broke the protocol
    TIMEOUT = "timeout"


FINAL = (TargetState.OK, TargetState.DIAGNOSTIC, TargetState.FAILED, TargetState.TIMEOUT)


@dataclass(frozen=True)
class RawRecord:
    record_id: str  # the target's own id (its 001), or its position when it has none
    data: bytes
    syntax: str  # unimarc | usmarc | xml | opac (an OPACRecord's BER) | opacxml


@dataclass(frozen=True)
class TargetAnswer:
    """What one target's search gave: its hit count and first records, or a diagnostic."""

    hits: int
    records: tuple[RawRecord, ...] = ()
    diagnostic: str = ""  # set: the target refused the query (nothing else is wrong)


class TargetClient(Protocol):
    """One search on one target. `on_searching` is called once connected (Init done)."""

    def search(
        self, target: UnionTarget, query: Query, on_searching: Callable[[], None]
    ) -> Deferred[TargetAnswer]: ...


@dataclass
class TargetStatus:
    name: str
    state: TargetState = TargetState.CONNECTING
    hits: int = 0
    error: str = ""  # the diagnostic or failure, in plain words
    ms: int = 0  # time from the start of the search to its final state
    records: list[SourceRecord] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # records that could not be read, why


class UnionSearch:
    """A search in progress; `done` fires (with itself) when every target has its final state
    or the overall deadline passed."""

    def __init__(
        self,
        targets: Sequence[UnionTarget],
        query: Query,
        query_text: str,
        clients: Callable[[UnionTarget], TargetClient],
        reactor: IReactorTime,
        timeout: float,
        profiles: Mapping[str, HoldingsProfile] | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        """`profiles`: the holdings profiles by name, for targets that name one. `on_change` is
        called whenever a target's state changes (its records, when it has any, have arrived
        by then), the last time when the search ends."""
        self.on_change = on_change
        self.query = query
        self.profiles = profiles or {}
        self.query_text = query_text
        self.reactor = reactor
        self.started = reactor.seconds()
        self.statuses = {t.name: TargetStatus(t.name) for t in targets}
        self.done: Deferred[UnionSearch] = Deferred()
        self._arrived: list[SourceRecord] = []  # every target's records, in answering order
        self._timers: list[IDelayedCall] = []
        self._answers: list[Deferred[TargetAnswer]] = []  # to drop if the search is cancelled
        searches = [self._search_one(t, clients(t)) for t in targets]
        overall = reactor.callLater(timeout, self._finish)
        self._timers.append(overall)
        DeferredList(searches, consumeErrors=True).addCallback(lambda _: self._finish())

    # --- the targets ----------------------------------------------------------------------------

    def _elapsed_ms(self) -> int:
        return int((self.reactor.seconds() - self.started) * 1000)

    def _search_one(self, target: UnionTarget, client: TargetClient) -> Deferred[None]:
        status = self.statuses[target.name]

        def searching() -> None:
            if status.state is TargetState.CONNECTING:
                status.state = TargetState.SEARCHING
                self._changed()

        answer = client.search(target, self.query, searching)
        self._answers.append(answer)
        finished: Deferred[None] = Deferred()

        def settle(state: TargetState, error: str = "") -> None:
            if status.state in FINAL:
                return  # the deadline came first: a late answer changes nothing
            status.state = state
            status.error = error
            status.ms = self._elapsed_ms()
            if not finished.called:
                finished.callback(None)
            self._changed()

        def answered(result: TargetAnswer) -> None:
            if status.state in FINAL:
                return
            status.hits = result.hits
            if result.diagnostic:
                settle(TargetState.DIAGNOSTIC, result.diagnostic)
                return
            status.records = self._read(target, result.records, status)
            self._arrived += status.records
            settle(TargetState.OK)

        def failed(failure: Failure) -> None:
            # A client's own deadline passing is a timeout too (on a reused Z39.50 association
            # the Search's deadline and this search's fall due together).
            state = TargetState.TIMEOUT if failure.check(TargetTimeout) else TargetState.FAILED
            settle(state, failure.getErrorMessage() or type(failure.value).__name__)

        def timed_out() -> None:
            settle(TargetState.TIMEOUT, f"no answer within {target.timeout:g} s")
            answer.cancel()  # closes its connection; its errback then finds the state final

        timer = self.reactor.callLater(target.timeout, timed_out)
        self._timers.append(timer)

        def stop_timer(result: object) -> object:
            if timer.active():
                timer.cancel()
            return result

        answer.addBoth(stop_timer).addCallbacks(answered, failed)
        return finished

    def _read(
        self, target: UnionTarget, records: Sequence[RawRecord], status: TargetStatus
    ) -> list[SourceRecord]:
        read = []
        profile = self.profiles.get(target.holdings_profile)
        for position, raw in enumerate(records):
            copies: tuple[PartnerCopy, ...] = ()
            known = False
            try:
                if raw.syntax == "opac":
                    opac = read_opac(raw.data, target.encoding)
                    record, copies, known = opac.read, opac.copies, True
                elif raw.syntax == "opacxml":
                    opac = read_opacxml(raw.data)
                    record, copies, known = opac.read, opac.copies, True
                elif raw.syntax == "xml":
                    record = read_xml(raw.data, target.syntax)
                else:
                    record = read_iso2709(raw.data, raw.syntax, target.encoding)
            except (RecordRejected, ValueError, UnicodeError) as error:
                status.rejected.append(f"record {position + 1}: {error}")
                continue
            described = None if profile is None else marc_copies(record.record, profile)
            if described is not None:
                copies = with_item_types(copies, described) if known else described
                known = True
            record_id = record.bib.control_number or raw.record_id
            read.append(SourceRecord(target.name, record_id, position, record.bib, copies, known))
        return read

    def _changed(self) -> None:
        if self.on_change is not None and not self.done.called:
            self.on_change()

    def _finish(self, why: str = "no answer by the search's deadline") -> None:
        if self.done.called:
            return
        for status in self.statuses.values():
            if status.state not in FINAL:
                status.state = TargetState.TIMEOUT
                status.error = why
                status.ms = self._elapsed_ms()
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        for answer in self._answers:
            if not answer.called:
                answer.cancel()  # its connection closes; a late answer finds the state final
        on_change, self.on_change = self.on_change, None
        self.done.callback(self)
        if on_change is not None:
            on_change()  # the last time: `finished` is true now

    def cancel(self) -> None:
        """End the search now (the reader left): targets still on their way are dropped."""
        self._finish("the search was stopped")

    # --- what a reader sees, at any moment ------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.done.called

    def merged(self, sort: str = "relevance") -> list[MergedRecord]:
        """The records that have arrived so far, merged and ranked (pazpar2's `show`)."""
        return rank(merge(self._arrived), self.query_text, sort)


__all__ = [
    "RawRecord",
    "TargetAnswer",
    "TargetClient",
    "TargetState",
    "TargetStatus",
    "UnionSearch",
]
