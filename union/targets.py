"""The union search's view of one target: a search that gives hits and raw records, over
Z39.50 (connect, Init, Search, Present, Close) or SRU (one searchRetrieve). Each is a
`TargetClient` for the fan-out (union/fanout.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks

from gateway.catalogue.query import Query, QueryError
from gateway.config import UnionTarget
from gateway.z3950_codec import oids
from gateway.z3950_codec.origin import ReceivedDiagnostic, ReceivedRecord
from union.fanout import RawRecord, TargetAnswer, TargetClient
from union.sru_client import SruClient
from union.sru_response import SruDiagnostic, SruRecord
from union.z3950_client import Z3950Origin, connect

Z3950_URL = re.compile(r"^z3950:(?P<host>[^\s:/]+):(?P<port>[0-9]{1,5})/(?P<database>\S+)$")
SYNTAX_OF_OID = {oids.UNIMARC: "unimarc", oids.USMARC: "usmarc", oids.OPAC: "opac"}
# What an SRU target is asked for, by the target's syntax: CNMARC in its own XML where the
# server offers it (ours, dp2), MARCXML otherwise.
# With holdings: YAZ's OPAC XML (libgate names it opacxml, with the alias opac).
SRU_SCHEMAS = {"unimarc": "unimarc", "usmarc": "marcxml", "xml": "marcxml", "opac": "opacxml"}


def _syntax_of(record: ReceivedRecord) -> str:
    if record.syntax in SYNTAX_OF_OID:
        return SYNTAX_OF_OID[record.syntax]
    return "xml" if record.data.lstrip()[:1] == b"<" else "unimarc"


class Z3950Target:
    """A fresh association per search (reuse across searches is the connection pool's job)."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def search(
        self, target: UnionTarget, query: Query, on_searching: Callable[[], None]
    ) -> Deferred[TargetAnswer]:
        match = Z3950_URL.match(target.url)
        if match is None:  # the config checked it; a guard for direct callers
            raise ValueError(f"not a Z39.50 target URL: {target.url!r}")
        origin: list[Z3950Origin] = []

        def cancel(_: Deferred[TargetAnswer]) -> None:
            # The fan-out gave up (the target's deadline): hang up whatever is in flight.
            for connected in origin:
                if connected.transport is not None:
                    connected.transport.abortConnection()  # type: ignore[attr-defined]

        answer: Deferred[TargetAnswer] = Deferred(cancel)

        @inlineCallbacks
        def run() -> Any:
            timeout = target.timeout
            connected = yield connect(
                self.reactor,
                match.group("host"),
                int(match.group("port")),
                database=match.group("database"),
                timeout=timeout,
                encoding=target.encoding,
            )
            origin.append(connected)
            try:
                yield connected.init(timeout)
                on_searching()
                try:
                    found = yield connected.search(query, timeout)
                except QueryError as error:  # a query this target's attributes cannot say
                    return TargetAnswer(0, diagnostic=str(error))
                if found.diagnostics:
                    return TargetAnswer(0, diagnostic=_z3950_problem(found.diagnostics[0]))
                count = min(found.result_count, target.max_records)
                records: list[RawRecord] = []
                if count:
                    presented = yield connected.present(1, count, target.syntax, timeout)
                    for position, item in enumerate(presented.records, start=1):
                        if isinstance(item, ReceivedRecord):
                            records.append(RawRecord(str(position), item.data, _syntax_of(item)))
                return TargetAnswer(found.result_count, tuple(records))
            finally:
                yield connected.close(min(timeout, 2.0))

        def deliver(result: Any) -> None:
            if not answer.called:
                if isinstance(result, TargetAnswer):
                    answer.callback(result)
                else:
                    answer.errback(result)

        run().addBoth(deliver)
        return answer


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


def clients(reactor: Any, sru: SruClient) -> Callable[[UnionTarget], TargetClient]:
    """The client for each target, by its URL."""
    z3950 = Z3950Target(reactor)
    over_sru = SruTarget(sru)

    def client(target: UnionTarget) -> TargetClient:
        return z3950 if target.protocol == "z3950" else over_sru

    return client


__all__ = ["SruTarget", "Z3950Target", "clients"]
