"""What every libgate HTTP listener (SRU, ISO 18626 ILL) does to its connections: who is let
in, how long each phase of a request may take, and how large a body may be.

Twisted's own idle timeout (`HTTPFactory.timeOut`) restarts on every byte received, so a client
sending one byte every few seconds (slowloris) is never closed by it. Here each phase has its own
deadline that bytes do not extend:
- the request line and headers must arrive within `header` seconds of the first byte (or of the
  connection opening);
- the body within `body` seconds of the end of the headers;
- between two requests on a kept-alive connection, at most `keepalive` seconds may pass before
  the next request starts.
While a request is worked on nothing runs: the deadline is the work queue's business.

Connections past the global or per-address cap (gateway/admission.py) are closed before any
protocol is built; the refusals and the deadline closes are each logged once per burst. A body
larger than the cap is answered (each protocol says how) as soon as its size is known, never
read to its end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar, Protocol, cast

from twisted.internet import reactor
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ITCPTransport
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http, resource, server

from gateway.admission import Cap, Caps, ConnectionCaps
from gateway.burst_log import BurstLog
from gateway.services import DESCRIPTORS


class CappedSection(Protocol):
    """A config section of an HTTP listener ([sru], [ill], [web]): its two connection caps."""

    @property
    def max_connections(self) -> int: ...

    @property
    def max_connections_per_address(self) -> int: ...


def connection_caps(section: CappedSection) -> Caps:
    """An HTTP listener's connection caps: in all and per address; no login on the
    connection, so no pending budget (SIP2 and Z39.50 have one)."""
    return Caps(
        connections=Cap(section.max_connections, "max_connections"),
        per_address=Cap(section.max_connections_per_address, "max_connections_per_address"),
    )


@dataclass(frozen=True)
class Deadlines:
    header: float = 10.0
    body: float = 30.0
    keepalive: float = 15.0


class CappedRequest(server.Request):
    """Refuses a body larger than `max_bytes` before reading it (Content-Length), or as soon as
    it grows past the cap (chunked): a hostile upload never fills memory or disk. `refusal`
    is the whole HTTP response the protocol answers with; the connection is then closed."""

    max_bytes = 16384
    _refused = False
    _received = 0

    def refusal(self) -> bytes:
        raise NotImplementedError

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
        if self._refused:
            return
        server.Request.requestReceived(self, command, path, version)

    def _refuse(self) -> None:
        if self._refused:
            return
        self._refused = True
        assert self.channel is not None and self.channel.transport is not None  # still open
        transport = self.channel.transport
        transport.write(self.refusal())
        transport.loseConnection()


class LimitedChannel(http.HTTPChannel):
    """An HTTP connection with fixed header, body and keep-alive deadlines (see the module),
    admitted or refused by its site's connection caps."""

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
            f"{self.site.protocol_name} closing slow connections: %s took too long (%s)",
            self.peer_host,
            phase,
        )
        self._abort()  # a slow client may not read a polite close either

    def connectionMade(self) -> None:
        peer = self.transport.getPeer() if self.transport is not None else None
        self.peer_host = str(getattr(peer, "host", peer))
        site = self.site
        # Logged once per burst by the guard.
        if DESCRIPTORS.exhausted(site.protocol_name.lower(), self.peer_host):
            self._abort()
            return
        refused = site.connections.refusal(self.peer_host)
        if refused is not None:
            site.refusal_log.note(f"{site.protocol_name} refusing connections: %s", refused)
            self._abort()
            return
        site.connections.opened(self.peer_host)
        site.open_channels.add(self)
        self.admitted = True
        if site.max_line_bytes is not None:
            self.MAX_LENGTH = site.max_line_bytes
            self.totalHeadersSize = site.max_line_bytes + 16384
        http.HTTPChannel.connectionMade(self)
        self._arm("headers", site.deadlines.header)

    @property
    def working(self) -> bool:
        """A request received in full is being answered."""
        return self._waiting == "work"

    def drain(self) -> None:
        """The process is stopping (gateway/draining.py): a request being answered gets its
        answer, with `Connection: close`, and then the connection closes; a connection idle
        or part way through sending a request is closed now."""
        if not self.working:
            self._disarm()
            if self.transport is not None:
                self.transport.loseConnection()
            return
        self.persistent = False  # requestDone closes the connection after the answer
        for request in self.requests:
            if not request.startedWriting:
                request.responseHeaders.setRawHeaders(b"Connection", [b"close"])

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

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._disarm()
        self.site.open_channels.discard(self)
        if self.admitted:
            self.admitted = False
            # HTTP listeners have no login.
            self.site.connections.closed(self.peer_host, was_logged_in=False)
        http.HTTPChannel.connectionLost(self, reason)


def _channel(site: http.HTTPFactory) -> http._GenericHTTPChannelProtocol:
    # What HTTPFactory.protocol makes by default, with the site's channel inside Twisted's
    # wrapper.
    channel_class = cast(LimitedSite, site).channel_class
    return http._GenericHTTPChannelProtocol(channel_class())


class LimitedSite(server.Site):
    """A Site whose connections are counted (refused past the caps) and given deadlines.
    `protocol_name` names it in logs ("SRU", "ILL"); `max_line_bytes`, when given, is the
    longest request line or header line accepted."""

    protocol = _channel
    channel_class: ClassVar[type[LimitedChannel]] = LimitedChannel

    def __init__(
        self,
        protocol_name: str,
        root: resource.Resource,
        connections: ConnectionCaps,
        deadlines: Deadlines,
        max_line_bytes: int | None = None,
        clock: IReactorTime | None = None,
    ) -> None:
        # Twisted's idle timeout stays as a last resort, longer than every deadline above.
        backstop = int(max(deadlines.header, deadlines.body, deadlines.keepalive)) + 60
        server.Site.__init__(self, root, timeout=backstop)
        self.protocol_name = protocol_name
        self.connections = connections
        if not connections.protocol:  # the connection metrics' label: sru, ill, web, ops
            connections.protocol = protocol_name.lower()
        self.deadlines = deadlines
        self.max_line_bytes = max_line_bytes
        self.clock = clock if clock is not None else cast(IReactorTime, reactor)
        log = logging.getLogger(f"libgate.{protocol_name.lower()}")
        self.refusal_log = BurstLog(log, f"{protocol_name} refusing connections", clock=self.clock)
        self.slow_log = BurstLog(log, f"{protocol_name} closing slow connections", clock=self.clock)
        self.displayTracebacks = False  # a partner never sees a traceback
        self.open_channels: set[LimitedChannel] = set()  # admitted and not yet lost

    # --- a stop (gateway/draining.py `Drainable`) ------------------------------------------

    @property
    def drain_name(self) -> str:
        return self.protocol_name

    def drain(self) -> None:
        for channel in list(self.open_channels):
            channel.drain()

    def drain_counts(self) -> tuple[int, int]:
        channels = list(self.open_channels)
        return len(channels), sum(1 for c in channels if c.working)

    def log(self, request: http.Request) -> None:
        """No access log. Twisted's default writes a line per request into its own log, which
        libgate never observes (its logging is the standard library's): formatting it cost
        as much as writing the response headers."""

    def stopFactory(self) -> None:
        self.refusal_log.stop()
        self.slow_log.stop()
        server.Site.stopFactory(self)


__all__ = ["CappedRequest", "Deadlines", "LimitedChannel", "LimitedSite", "connection_caps"]
