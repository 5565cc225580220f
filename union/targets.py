"""The union search's view of one target: a search that gives hits and raw records, over
Z39.50 (Search and Present on an association from the pool, union/z3950_pool.py) or SRU (one
searchRetrieve). Each is a `TargetClient` for the fan-out (union/fanout.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, ensureDeferred

from gateway.catalogue.query import Query, QueryError
from gateway.config import UnionTarget
from gateway.z3950_codec import oids
from gateway.z3950_codec.origin import ReceivedDiagnostic, ReceivedRecord
from union.errors import TargetError
from union.fanout import RawRecord, TargetAnswer, TargetClient
from union.sru_client import SruClient
from union.sru_response import SruDiagnostic, SruRecord
from union.z3950_client import Z3950Origin, connect
from union.z3950_pool import PoolKey, Z3950Pool, session_survives, went_away

SYNTAX_OF_OID = {oids.UNIMARC: "unimarc", oids.USMARC: "usmarc", oids.OPAC: "opac"}
# What an SRU target is asked for, by the target's syntax: CNMARC in its own XML where the
# server offers it (ours, dp2), MARCXML otherwise.
# With holdings: YAZ's OPAC XML (libgate names it opacxml, with the alias opac).
SRU_SCHEMAS = {"unimarc": "unimarc", "usmarc": "marcxml", "xml": "marcxml", "opac": "opacxml"}


def _syntax_of(record: ReceivedRecord) -> str:
    if record.syntax in SYNTAX_OF_OID:
        return SYNTAX_OF_OID[record.syntax]
    return "xml" if record.data.lstrip()[:1] == b"<" else "unimarc"


class _Attempt:
    """One search's hold on the network, for cancelling it: the connection being made and the
    association in use (the reused one, or the new one of a retry)."""

    def __init__(self) -> None:
        self.cancelled = False
        self.connecting: Deferred[Z3950Origin] | None = None
        self.origin: Z3950Origin | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self.connecting is not None:
            self.connecting.cancel()
        if self.origin is not None:
            self.origin.abort()


class Z3950Target:
    """Searches on associations from the pool: an idle one when it has one (no connect, no
    Init: the Search goes out at once), a new one otherwise; after a clean search it goes back
    to the pool. A reused association the target had closed while idle fails before any
    answer: the search is asked once more on a new one. The target's deadline is the
    fan-out's, counted from the start of the search: cancelling at it drops whichever
    association (or connection being made) the search is on, the retry's too."""

    def __init__(self, reactor: Any, pool: Z3950Pool) -> None:
        self.reactor = reactor
        self.pool = pool

    def search(
        self, target: UnionTarget, query: Query, on_searching: Callable[[], None]
    ) -> Deferred[TargetAnswer]:
        key = PoolKey.of(target)
        attempt = _Attempt()
        answer: Deferred[TargetAnswer] = Deferred(lambda _: attempt.cancel())

        def deliver(result: Any) -> None:
            if not answer.called:
                if isinstance(result, TargetAnswer):
                    answer.callback(result)
                else:
                    answer.errback(result)

        running = ensureDeferred(self._search(target, key, query, on_searching, attempt))
        running.addBoth(deliver)
        return answer

    async def _search(
        self,
        target: UnionTarget,
        key: PoolKey,
        query: Query,
        on_searching: Callable[[], None],
        attempt: _Attempt,
    ) -> TargetAnswer:
        timeout = target.timeout
        origin = self.pool.take(key)
        reused = origin is not None
        if origin is None:
            origin = await self._open(target, key, attempt)
        attempt.origin = origin
        on_searching()
        clean = False
        try:
            try:
                found = await origin.search(query, timeout)
            except QueryError as error:  # a query this target's attributes cannot say
                clean = True  # nothing was sent: the association is as it was
                return TargetAnswer(0, diagnostic=str(error))
            except TargetError as error:
                if not reused or attempt.cancelled or not went_away(origin, error):
                    raise
                # The target closed it while it sat idle: once more, on a new association.
                origin = attempt.origin = await self._open(target, key, attempt)
                found = await origin.search(query, timeout)
            if found.diagnostics:
                clean = session_survives(found.diagnostics)
                return TargetAnswer(0, diagnostic=_z3950_problem(found.diagnostics[0]))
            count = min(found.result_count, target.max_records)
            records: list[RawRecord] = []
            if count:
                presented = await origin.present(1, count, target.syntax, timeout)
                clean = session_survives(presented.diagnostics)
                for position, item in enumerate(presented.records, start=1):
                    if isinstance(item, ReceivedRecord):
                        records.append(RawRecord(str(position), item.data, _syntax_of(item)))
            else:
                clean = True
            return TargetAnswer(found.result_count, tuple(records))
        finally:
            # Timed out, cancelled or failed: never back to the pool (`reusable` says so too).
            self.pool.give_back(key, origin, clean=clean and not attempt.cancelled)

    async def _open(self, target: UnionTarget, key: PoolKey, attempt: _Attempt) -> Z3950Origin:
        """A new association: connect, then Init."""
        if attempt.cancelled:
            raise CancelledError()
        attempt.connecting = connect(
            self.reactor,
            key.host,
            key.port,
            database=key.database,
            timeout=target.timeout,
            encoding=key.encoding,
        )
        origin = await attempt.connecting  # a cancel while connecting fails it here
        attempt.connecting = None
        attempt.origin = origin
        try:
            await origin.init(target.timeout)
        except Exception:
            origin.abort()  # refused or broken: no Close owed
            raise
        return origin


def _z3950_problem(diagnostic: ReceivedDiagnostic) -> str:
    extra = f" ({diagnostic.addinfo})" if diagnostic.addinfo else ""
    return f"diagnostic {diagnostic.condition}: {diagnostic.message}{extra}"


class SruTarget:
    def __init__(self, client: SruClient) -> None:
        self.client = client

    def search(
        self, target: UnionTarget, query: Query, on_searching: Callable[[], None]
    ) -> Deferred[TargetAnswer]:
        on_searching()  # one HTTP exchange: connected and searching are one step
        asked = self.client.search_retrieve(
            target.url,
            query,
            timeout=target.timeout,
            version=target.sru_version,
            record_schema=SRU_SCHEMAS[target.syntax],
            maximum_records=target.max_records,
        )

        def answered(result: Any) -> TargetAnswer:
            if result.diagnostics:
                return TargetAnswer(
                    result.hits or 0, diagnostic=_sru_problem(result.diagnostics[0])
                )
            syntax = "opacxml" if target.syntax == "opac" else "xml"
            records = tuple(
                RawRecord(str(position), item.data, syntax)
                for position, item in enumerate(result.records, start=1)
                if isinstance(item, SruRecord)
            )
            return TargetAnswer(result.hits or 0, records)

        return asked.addCallback(answered)


def _sru_problem(diagnostic: SruDiagnostic) -> str:
    words = diagnostic.message or diagnostic.uri
    return f"{words} ({diagnostic.details})" if diagnostic.details else words


def clients(reactor: Any, sru: SruClient, pool: Z3950Pool) -> Callable[[UnionTarget], TargetClient]:
    """The client for each target, by its URL; Z39.50 associations come from `pool`."""
    z3950 = Z3950Target(reactor, pool)
    over_sru = SruTarget(sru)

    def client(target: UnionTarget) -> TargetClient:
        return z3950 if target.protocol == "z3950" else over_sru

    return client


__all__ = ["SruTarget", "Z3950Target", "clients"]
