"""The SRU listener's connections: who is let in, and how long each phase of a request may take.

Twisted's own idle timeout (`HTTPFactory.timeOut`) restarts on every byte received, so a client
sending one byte every few seconds (slowloris) is never closed by it. Here each phase has its own
deadline that bytes do not extend:
- the request line and headers must arrive within `header_timeout` of the first byte (or of the
  connection opening);
- the body within `body_timeout` of the end of the headers;
- between two requests on a kept-alive connection, at most `keepalive_timeout` may pass before
  the next request starts.
While a request is searched nothing runs: the deadline is the work queue's business.

Connections past the global or per-address cap are closed before any protocol is built; the
refusals and the deadline closes are each logged once per burst.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

from twisted.internet import reactor
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ITCPTransport
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http, resource, server

from gateway.admission import ConnectionCaps
from gateway.burst_log import BurstLog
from gateway.services import DESCRIPTORS
from sru.diagnostics import Diagnostic
from sru.response import diagnostic_response, serialize
from sru.versions import HIGHEST

log = logging.getLogger("libgate.sru")


def refusal_document(number: int, details: str, message: str) -> bytes:
    """A searchRetrieve response holding only one diagnostic."""
    return serialize(
        diagnostic_response(HIGHEST, "searchRetrieve", Diagnostic(number, details, message))
    )


def raw_refusal(status: bytes, number: int, details: str, message: str) -> bytes:
    """A whole HTTP response (status line, headers, SRU document) for a request Twisted never
    turned into a Request object, after which the connection is closed."""
    body = refusal_document(number, details, message)
    return (
        b"HTTP/1.1 " + status + b"\r\nConnection: close\r\n"
        b"Content-Type: text/xml; charset=UTF-8\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


@dataclass(frozen=True)
class Deadlines:
    header: float = 10.0
    body: float = 30.0
    keepalive: float = 15.0


class SruChannel(http.HTTPChannel):
    """An HTTP connection with fixed header, body and keep-alive deadlines (see the module),
    admitted or refused by its site's connection caps (gateway/admission.py)."""

    site: LimitedSite  # set by Site.buildProtocol
    peer_host = ""
    admitted = False
    _deadline: IDelayedCall | None = None
    _waiting = "headers"  # headers, body, work, or idle (between requests)

    def __init__(self) -> None:
        http.HTTPChannel.__init__(self)

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._waiting = phase
        self._deadline = self.site.clock.callLater(seconds, self._expired, phase)

    def _disarm(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _abort(self) -> None:
        transport = self.transport
        if ITCPTransport.providedBy(transport):
            transport.abortConnection()
        elif transport is not None:
            transport.loseConnection()

    def _expired(self, phase: str) -> None:
        self._deadline = None
        self.site.slow_log.note(
            "SRU closing slow connections: %s took too long (%s)", self.peer_host, phase
        )
        self._abort()  # a slow client may not read a polite close either

    def connectionMade(self) -> None:
        peer = self.transport.getPeer() if self.transport is not None else None
        self.peer_host = str(getattr(peer, "host", peer))
        if DESCRIPTORS.exhausted("sru", self.peer_host):  # logged once per burst by the guard
            self._abort()
            return
        connections = self.site.connections
        refused = connections.refusal(self.peer_host)
        if refused is not None:
            self.site.refusal_log.note("SRU refusing connections: %s", refused)
            self._abort()
            return
        connections.opened(self.peer_host)
        self.admitted = True
        self.MAX_LENGTH = self.site.max_line_bytes
        self.totalHeadersSize = self.site.max_line_bytes + 16384
        http.HTTPChannel.connectionMade(self)
        self._arm("headers", self.site.deadlines.header)

    def dataReceived(self, data: bytes) -> None:
        if not self.admitted:
            return
        if self._waiting == "idle":  # the next request on a kept-alive connection starts
            self._arm("headers", self.site.deadlines.header)
        http.HTTPChannel.dataReceived(self, data)

    def allHeadersReceived(self) -> None:
        self._arm("body", self.site.deadlines.body)
        http.HTTPChannel.allHeadersReceived(self)

    def allContentReceived(self) -> None:
        self._disarm()
        self._waiting = "work"
        http.HTTPChannel.allContentReceived(self)

    def requestDone(self, request: http.Request) -> None:
        # Armed first: the base class may go on to parse a pipelined request at once.
        if self.persistent:
            self._arm("idle", self.site.deadlines.keepalive)
        http.HTTPChannel.requestDone(self, request)

    def lineLengthExceeded(self, line: bytes) -> None:
        if self.transport is None:
            return
        if not self.requests:  # still in the request line: the URI is too long
            status, what = b"414 URI Too Long", "the request line"
        else:
            status, what = b"431 Request Header Fields Too Large", "a header line"
        self.transport.write(
            raw_refusal(status, 6, "request", f"{what} is longer than {self.MAX_LENGTH} bytes")
        )
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._disarm()
        if self.admitted:
            self.admitted = False
            self.site.connections.closed(self.peer_host, was_logged_in=False)  # SRU has no login
        http.HTTPChannel.connectionLost(self, reason)


def _sru_channel(site: http.HTTPFactory) -> http._GenericHTTPChannelProtocol:
    # What HTTPFactory.protocol makes by default, with our channel inside Twisted's wrapper.
    return http._GenericHTTPChannelProtocol(SruChannel())


class LimitedSite(server.Site):
    """A Site whose connections are counted (refused past the caps) and given deadlines."""

    protocol = _sru_channel

    def __init__(
        self,
        root: resource.Resource,
        connections: ConnectionCaps,
        deadlines: Deadlines,
        max_line_bytes: int,
        clock: IReactorTime | None = None,
    ) -> None:
        # Twisted's idle timeout stays as a last resort, longer than every deadline above.
        backstop = int(max(deadlines.header, deadlines.body, deadlines.keepalive)) + 60
        server.Site.__init__(self, root, timeout=backstop)
        self.connections = connections
        self.deadlines = deadlines
        self.max_line_bytes = max_line_bytes
        self.clock = clock if clock is not None else cast(IReactorTime, reactor)
        self.refusal_log = BurstLog(log, "SRU refusing connections", clock=self.clock)
        self.slow_log = BurstLog(log, "SRU closing slow connections", clock=self.clock)

    def log(self, request: http.Request) -> None:
        """No access log. Twisted's default writes a line per request into its own log, which
        libgate never observes (its logging is the standard library's): formatting it cost
        as much as writing the response headers."""

    def stopFactory(self) -> None:
        self.refusal_log.stop()
        self.slow_log.stop()
        server.Site.stopFactory(self)


__all__ = ["Deadlines", "LimitedSite", "SruChannel", "raw_refusal", "refusal_document"]
