"""The ILL listener's connections: counted against `[ill]`'s caps (gateway/admission.py, the
same ConnectionCaps every listener keeps), and given deadlines per phase of a request that
bytes do not extend (Twisted's own idle timeout restarts on every byte, so a client trickling
a byte at a time would never be closed by it):
- request line and headers within `header_timeout` of the first byte, or of the connection;
- the body within `body_timeout` of the end of the headers;
- between two requests on a kept-alive connection, `header_timeout` again.
While the engine works on a message nothing runs: a handler is not cut off half way.

A body over `max_message_bytes` is not read to its end: the request is answered at once with a
BadlyFormedMessage confirmation (the standard's answer, not an HTTP error) and closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from twisted.internet import reactor
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ITCPTransport
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http, resource, server

from gateway.admission import ConnectionCaps
from gateway.burst_log import BurstLog
from gateway.circulation.ill_types import Confirmation, ErrorType
from gateway.services import DESCRIPTORS
from ill.wire import CONTENT_TYPE, ConfirmationHeader
from ill.writing import write_confirmation

log = logging.getLogger("libgate.ill")


@dataclass(frozen=True)
class Deadlines:
    header: float = 10.0
    body: float = 30.0


def too_large(max_bytes: int) -> bytes:
    """A whole HTTP response (status line, headers, confirmation) for a body over the cap."""
    body = write_confirmation(
        None,
        ConfirmationHeader(),
        Confirmation.error(
            ErrorType.BADLY_FORMED_MESSAGE, f"the message is larger than {max_bytes} bytes"
        ),
        datetime.now(UTC),
    )
    return (
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: "
        + CONTENT_TYPE
        + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )


class CappedRequest(server.Request):
    """Answers a body larger than `max_bytes` as soon as it is known to be (Content-Length) or
    grows to be (chunked), so a hostile upload never fills memory or disk."""

    max_bytes = 102400
    _refused = False
    _received = 0

    def gotLength(self, length: int | None) -> None:
        server.Request.gotLength(self, length)
        if length is not None and length > self.max_bytes:
            self._refuse()

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self.max_bytes:
            self._refuse()
            return
        server.Request.handleContentChunk(self, data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self._refused:
            server.Request.requestReceived(self, command, path, version)

    def _refuse(self) -> None:
        if self._refused:
            return
        self._refused = True
        assert self.channel is not None and self.channel.transport is not None  # still open
        self.channel.transport.write(too_large(self.max_bytes))
        self.channel.transport.loseConnection()


class IllChannel(http.HTTPChannel):
    site: IllSite  # set by Site.buildProtocol
    peer_host = ""
    admitted = False
    _deadline: IDelayedCall | None = None
    _waiting = "headers"  # headers, body, work, or idle (between requests)

    def __init__(self) -> None:
        http.HTTPChannel.__init__(self)

    def connectionMade(self) -> None:
        peer = self.transport.getPeer() if self.transport is not None else None
        self.peer_host = str(getattr(peer, "host", peer))
        if DESCRIPTORS.exhausted("ill", self.peer_host):  # logged once per burst by the guard
            self._abort()
            return
        refused = self.site.connections.refusal(self.peer_host)
        if refused is not None:
            self.site.refusal_log.note("ILL refusing connections: %s", refused)
            self._abort()
            return
        self.site.connections.opened(self.peer_host)
        self.admitted = True
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
            self._arm("idle", self.site.deadlines.header)
        http.HTTPChannel.requestDone(self, request)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._disarm()
        if self.admitted:
            self.admitted = False
            self.site.connections.closed(self.peer_host, was_logged_in=False)  # no login
        http.HTTPChannel.connectionLost(self, reason)

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._waiting = phase
        self._deadline = self.site.clock.callLater(seconds, self._expired, phase)

    def _disarm(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _expired(self, phase: str) -> None:
        self._deadline = None
        self.site.slow_log.note(
            "ILL closing slow connections: %s took too long (%s)", self.peer_host, phase
        )
        self._abort()

    def _abort(self) -> None:
        transport = self.transport
        if ITCPTransport.providedBy(transport):
            transport.abortConnection()
        elif transport is not None:
            transport.loseConnection()


def _ill_channel(site: http.HTTPFactory) -> http._GenericHTTPChannelProtocol:
    # What HTTPFactory.protocol makes by default, with our channel inside Twisted's wrapper.
    return http._GenericHTTPChannelProtocol(IllChannel())


class IllSite(server.Site):
    """A Site whose connections are counted (refused past the caps) and given deadlines."""

    protocol = _ill_channel

    def __init__(
        self,
        root: resource.Resource,
        connections: ConnectionCaps,
        deadlines: Deadlines,
        clock: IReactorTime | None = None,
    ) -> None:
        # Twisted's idle timeout stays as a last resort, longer than every deadline above.
        backstop = int(max(deadlines.header, deadlines.body)) + 60
        server.Site.__init__(self, root, timeout=backstop)
        self.connections = connections
        self.deadlines = deadlines
        self.clock = clock if clock is not None else cast(IReactorTime, reactor)
        self.refusal_log = BurstLog(log, "ILL refusing connections", clock=self.clock)
        self.slow_log = BurstLog(log, "ILL closing slow connections", clock=self.clock)
        self.displayTracebacks = False  # a partner never sees a traceback

    def log(self, request: http.Request) -> None:
        """No access log: Twisted's goes to its own log, which libgate does not read."""

    def stopFactory(self) -> None:
        self.refusal_log.stop()
        self.slow_log.stop()
        server.Site.stopFactory(self)


__all__ = ["CappedRequest", "Deadlines", "IllChannel", "IllSite", "too_large"]
