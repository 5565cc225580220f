"""searchRetrieve against a partner's SRU server, over twisted.web's Agent.

One `SruClient` per union search service: its connection pool keeps connections to each
partner alive between searches (a union search asks the same servers again and again). Each
request has one deadline for everything (connecting, the request, the answer and its body); a
deadline that passes cancels the request, which closes its connection. A diagnostic from the
server is an answer (`SruAnswer.diagnostics`), even with an HTTP error status, as SRU 2.0 lets
servers send them; only what is no searchRetrieveResponse at all is a TargetError.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from twisted.internet import error as net
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

import gateway
from gateway.catalogue.query import Query
from gateway.cql.writing import query_to_cql
from union.errors import TargetError, TargetProtocolError, TargetTimeout, TargetUnreachable
from union.sru_response import MAX_RESPONSE_BYTES, SruAnswer, SruResponseError
from union.sru_response import parse_search_retrieve as parse

VERSIONS = ("1.1", "1.2", "2.0")
USER_AGENT = f"libgate/{gateway.__version__} union search".encode()


class _Body(Protocol):
    """A response body, refused past MAX_RESPONSE_BYTES (a partner cannot fill our memory)."""

    def __init__(self, finished: Deferred[bytes]) -> None:
        self.finished = finished
        self.parts: list[bytes] = []
        self.size = 0

    def dataReceived(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > MAX_RESPONSE_BYTES:
            IPushProducer(self.transport).stopProducing()  # a response body's transport is one
            if not self.finished.called:
                self.finished.errback(SruResponseError("response too large"))
            return
        self.parts.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.finished.called:
            return
        if reason.check(ResponseDone):
            self.finished.callback(b"".join(self.parts))
        else:
            self.finished.errback(reason)


def search_retrieve_url(
    base_url: str,
    cql: str,
    *,
    version: str,
    record_schema: str,
    maximum_records: int,
    start_record: int = 1,
) -> str:
    """The GET URL of a searchRetrieve. SRU 2.0 asks for XML records with recordXMLEscaping
    (its recordPacking means packed or unpacked); 1.x with recordPacking."""
    if version not in VERSIONS:
        raise ValueError(f"SRU version {version!r} is not one of {', '.join(VERSIONS)}")
    parameters = {
        "operation": "searchRetrieve",
        "version": version,
        "query": cql,
        "startRecord": str(start_record),
        "maximumRecords": str(maximum_records),
        "recordSchema": record_schema,
    }
    parameters["recordXMLEscaping" if version == "2.0" else "recordPacking"] = "xml"
    separator = "&" if urlsplit(base_url).query else "?"
    return base_url + separator + urlencode(parameters)


class SruClient:
    """searchRetrieve requests sharing one connection pool."""

    def __init__(self, reactor: Any, *, connections_per_host: int = 2) -> None:
        self.reactor = reactor
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = connections_per_host
        self.pool.cachedConnectionTimeout = 60
        self.agent = Agent(reactor, pool=self.pool)

    def search_retrieve(
        self,
        base_url: str,
        query: Query | str,
        *,
        timeout: float,
        version: str = "1.2",
        record_schema: str = "marcxml",
        maximum_records: int = 10,
        start_record: int = 1,
    ) -> Deferred[SruAnswer]:
        """Search `base_url` with `query` (the query model, written as CQL of the version, or
        CQL text as it is). Fails with TargetUnreachable, TargetTimeout or
        TargetProtocolError; a diagnostic is an answer."""
        cql = query if isinstance(query, str) else query_to_cql(query, cql_version=version)
        url = search_retrieve_url(
            base_url,
            cql,
            version=version,
            record_schema=record_schema,
            maximum_records=maximum_records,
            start_record=start_record,
        )
        headers = Headers({b"User-Agent": [USER_AGENT], b"Accept": [b"application/xml"]})
        exchange: Deferred[Any] = self.agent.request(b"GET", url.encode("ascii"), headers)
        exchange.addCallback(self._body)

        def late(result: Any, seconds: float) -> None:
            # Cancelling an Agent request fails it with ResponseNeverReceived (or whatever
            # stage it was at), not a timeout: say what happened, whatever the stage.
            raise TargetTimeout(base_url, "searchRetrieve", f"no answer within {seconds:g} s")

        exchange.addTimeout(timeout, self.reactor, onTimeoutCancel=late)
        return exchange.addCallbacks(
            lambda answer: self._answer(base_url, answer),
            lambda failure: self._network(base_url, timeout, failure),
        )

    def _body(self, response: IResponse) -> Deferred[tuple[int, bytes]]:
        finished: Deferred[bytes] = Deferred()
        response.deliverBody(_Body(finished))
        return finished.addCallback(lambda body: (response.code, body))

    def _answer(self, base_url: str, answer: tuple[int, bytes]) -> SruAnswer:
        code, body = answer
        try:
            return parse(body)
        except SruResponseError as error:
            detail = f"HTTP {code}: {error}" if code != 200 else str(error)
            raise TargetProtocolError(base_url, "searchRetrieve", detail) from None

    def _network(self, base_url: str, timeout: float, failure: Failure) -> SruAnswer:
        if failure.check(TargetError):
            failure.raiseException()
        if failure.check(TimeoutError, CancelledError, net.TimeoutError):
            raise TargetTimeout(base_url, "searchRetrieve", f"no answer within {timeout:g} s")
        if failure.check(net.ConnectionRefusedError):
            raise TargetUnreachable(base_url, "connect", "connection refused (nothing listens)")
        if failure.check(net.DNSLookupError):
            raise TargetUnreachable(base_url, "connect", "unknown host")
        if failure.check(net.ConnectError):
            raise TargetUnreachable(base_url, "connect", failure.getErrorMessage())
        # A body cut short or too large, a connection reset mid-answer: the server's fault.
        raise TargetProtocolError(base_url, "searchRetrieve", failure.getErrorMessage())

    def close(self) -> Deferred[None]:
        """Drop the kept-alive connections (at shutdown)."""
        closed: Deferred[None] = self.pool.closeCachedConnections()
        return closed


__all__ = ["SruClient", "search_retrieve_url"]
