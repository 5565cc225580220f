"""The thin Twisted adapter: bytes from a socket cut into APDUs (`gateway.z3950_codec.ber`), each handed to
the association's `Session` in a thread pool, one `transport.write` per answer; timeouts and
the session limits.

A connection holds a session slot from the moment it connects, so it has `init_timeout`
(short) to send a complete Init and only then `idle_timeout` between APDUs. The slots are
counted by `gateway.admission.ConnectionCaps`: one address (IPv4, or IPv6 /64) may hold at most
`max_sessions_per_peer` of the `max_sessions`, and connections without an accepted Init have
their own small budget (`max_uninitialised`, `max_uninitialised_per_peer`), so silent sockets
cannot keep working sessions out; `trusted_networks` skip both per-address caps.

APDUs waiting for a search thread are bounded too (`max_queued_requests`, all sessions
together): one more is answered with Close (resources) at once, since a partner's client
times out long before a deep backlog would reach its request. Refusals of either kind are
logged once per burst.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService
from twisted.internet import reactor as default_reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, ITransport
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from gateway import metrics
from gateway.access_log import Access, log_access
from gateway.admission import Cap, Caps, ConnectionCaps
from gateway.burst_log import BurstLog
from gateway.circulation.engine import Engine
from gateway.config import Settings, Z3950Settings
from gateway.draining import DrainsConnections
from gateway.networks import Networks
from gateway.services import (
    DESCRIPTORS,
    ThreadPoolService,
    add_listeners,
    as_server_reactor,
    engine_threads,
)
from gateway.store import Store
from gateway.z3950_codec import ber
from gateway.z3950_codec.messages import (
    CLOSE_PROTOCOL_ERROR,
    CLOSE_RESOURCES,
    CLOSE_SHUTDOWN,
    CLOSE_SYSTEM_PROBLEM,
    Close,
)
from z3950 import codec
from z3950.service import CatalogueService
from z3950.session import NEW, OPEN, Limits, Reply, Session

log = logging.getLogger("libgate.z3950")
MAX_QUEUED_APDUS = 32  # requests pipelined ahead of their answers; more is a flood


class Z3950Protocol(Protocol):
    factory: Z3950Factory

    def __init__(self) -> None:
        self.session: Session | None = None
        self.buffer = bytearray()
        self.queue: deque[bytes] = deque()
        self.busy = False
        self.closing = False
        self.draining = False  # the process is stopping: answer the APDU in flight, then Close
        self.counted = False  # in the factory's connection caps
        self.initialised = False  # counted there as past Init (no longer pending)
        self.timer: IDelayedCall | None = None
        self.peer = "?"
        self.host = "?"  # the peer's IP address (else its description): what the caps count
        self.framer: ber.Framer | None = None

    @property
    def _transport(self) -> ITransport:
        # Twisted sets the transport before connectionMade, and this protocol writes nothing
        # before that.
        assert self.transport is not None
        return self.transport

    # --- connection life -----------------------------------------------------------------

    def connectionMade(self) -> None:
        factory = self.factory
        peer = self._transport.getPeer()
        host = getattr(peer, "host", None)
        self.host = str(peer if host is None else host)
        self.peer = f"{host or peer}:{getattr(peer, 'port', '')}"
        if DESCRIPTORS.exhausted("z3950", self.peer):  # logged once per burst by the guard
            self._transport.loseConnection()  # nothing was read or written yet
            return
        refusal = factory.caps.refusal(self.host)
        if refusal is not None:
            factory.refusals.note("z3950 peer=%s refused: %s", self.peer, refusal)
            self._send_close(CLOSE_RESOURCES, f"too many sessions: {refusal}; try again later")
            return
        factory.caps.opened(self.host)
        factory.open_connections.add(self)
        self.counted = True
        self.session = Session(factory.service, factory.limits, self.peer)
        self.framer = ber.Framer(factory.settings.max_request_bytes)
        self._arm()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.factory.open_connections.discard(self)
        if self.counted:
            self.factory.caps.closed(self.host, self.initialised)
            self.counted = False
        self.closing = True
        if self.timer is not None and self.timer.active():
            self.timer.cancel()

    def _awaiting_init(self) -> bool:
        """No Init answered yet: the connection is on the short `init_timeout`."""
        return self.session is None or self.session.state == NEW

    def _arm(self) -> None:
        """Start the timer again: `idle_timeout` from now once Init is answered. Before that,
        the `init_timeout` started at connection runs on (an APDU that is not an answered Init
        does not restart it)."""
        if self._awaiting_init() and self.timer is not None:
            return
        self._start_timer()

    def _start_timer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        settings = self.factory.settings
        timeout = settings.init_timeout if self._awaiting_init() else settings.idle_timeout
        self.timer = self.factory.reactor.callLater(timeout, self._idle)

    def _idle(self) -> None:
        if self.busy:  # a slow search (or Init) is not idleness; look again later
            self._start_timer()
            return
        waiting = self._awaiting_init()
        log.info("z3950 peer=%s closed: %s", self.peer, "no Init" if waiting else "idle")
        if self.session is not None:
            detail = "no Init" if waiting else "idle"
            self._transport.write(self.session.timed_out(detail))
        self._lose()

    def _send_close(self, reason: int, detail: str) -> None:
        self._transport.write(
            codec.encode(Close(close_reason=reason, diagnostic_information=detail))
        )
        self._lose()

    def _lose(self) -> None:
        self.closing = True
        self._transport.loseConnection()

    def drain(self) -> None:
        """The process is stopping (gateway/draining.py): Close (shutdown) now, or after the
        answer to the APDU being worked on. APDUs queued behind it are not started: the Close
        tells the origin they went unanswered."""
        self.draining = True
        self.queue.clear()
        if not self.busy and not self.closing:
            self._shut_down()

    def _shut_down(self) -> None:
        self._send_close(CLOSE_SHUTDOWN, "the server is shutting down; try again later")

    # --- APDUs ---------------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.closing or self.draining or self.session is None:
            return
        assert self.framer is not None
        self.buffer += data
        while self.buffer:
            try:
                length = self.framer.apdu_length(self.buffer)
            except ber.BerError as error:
                log.info("z3950 peer=%s unreadable stream: %s", self.peer, error)
                self._send_close(CLOSE_PROTOCOL_ERROR, f"not a BER APDU: {error}"[:200])
                return
            if length is None:
                break
            self.queue.append(bytes(self.buffer[:length]))
            del self.buffer[:length]
            self._arm()
        if len(self.queue) > MAX_QUEUED_APDUS:
            self._send_close(CLOSE_RESOURCES, "too many requests waiting")
            return
        self._next()

    def _next(self) -> None:
        assert self.session is not None
        if self.busy or not self.queue or self.closing:
            return
        factory = self.factory
        if factory.in_flight >= factory.threads + factory.settings.max_queued_requests:
            factory.busy_refusals.note(
                "z3950 peer=%s closed: %d APDUs waiting for a search thread (max_queued_requests)",
                self.peer,
                factory.in_flight - factory.threads,
            )
            self._send_close(CLOSE_RESOURCES, "server busy: too many requests waiting; try later")
            return
        apdu = self.queue.popleft()
        self.busy = True
        factory.in_flight += 1
        started = time.perf_counter()
        deferred = self.factory.call_in_thread(self.session.handle, apdu)
        deferred.addCallbacks(
            self._answered, self._failed, callbackArgs=(started,), errbackArgs=(started,)
        )

    def _answered(self, reply: Reply, started: float) -> None:
        self.busy = False
        self.factory.in_flight -= 1
        if self.closing:
            return
        if reply.data:
            self._transport.write(reply.data)
        metrics.z3950_request(reply.operation, reply.outcome)
        log_access(
            log,
            Access(
                channel="z3950",
                peer=self.peer,
                command=reply.operation,
                query=reply.query,
                outcome=reply.outcome,
                ms=(time.perf_counter() - started) * 1000,
            ),
        )
        if reply.close:
            self._lose()
            return
        if self.draining:
            self._shut_down()
            return
        if reply.operation == "initRequest":
            self._counted_as_initialised()
            self._start_timer()  # Init answered: the idle timeout from now on
        self._next()

    def _counted_as_initialised(self) -> None:
        """An accepted Init moves the connection out of the pre-Init budget (once)."""
        assert self.session is not None
        if self.counted and not self.initialised and self.session.state == OPEN:
            self.factory.caps.logged_in(self.host)
            self.initialised = True

    def _failed(self, failure: Failure, started: float) -> None:
        # Session.handle catches everything it can; this is a bug in the adapter's path.
        log.error("z3950 peer=%s failed: %s", self.peer, failure.getTraceback())
        self.busy = False
        self.factory.in_flight -= 1
        if not self.closing:
            self._send_close(CLOSE_SYSTEM_PROBLEM, "system error")


class Z3950Factory(DrainsConnections, Factory[Z3950Protocol]):
    protocol = Z3950Protocol

    def __init__(
        self,
        settings: Z3950Settings,
        service: CatalogueService,
        pool: ThreadPool | None,
        reactor: Any = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.limits = limits_from(settings)
        self.pool = pool
        # Threads that take APDUs at once; protocol tests pass no pool (direct calls).
        self.threads = pool.max if pool is not None else settings.threads
        self.reactor = as_server_reactor(reactor or default_reactor)
        self.caps = ConnectionCaps(
            connection_caps(settings), Networks(settings.trusted_networks), protocol="z3950"
        )
        self.in_flight = 0  # APDUs handed to the pool and not answered yet
        self.open_connections: set[Z3950Protocol] = set()  # admitted and not yet lost
        self.refusals = BurstLog(log, "z3950 refused connections", clock=self.reactor)
        self.busy_refusals = BurstLog(log, "z3950 sessions closed, busy", clock=self.reactor)

    @property
    def active(self) -> int:
        """Connections open now."""
        return self.caps.active

    def stopFactory(self) -> None:
        self.refusals.stop()
        self.busy_refusals.stop()

    drain_name = "Z39.50"  # a stop drains open_connections (gateway/draining.py)

    def call_in_thread(self, function: Callable[..., Reply], *args: Any) -> Deferred[Reply]:
        """Catalogue work runs off the reactor thread; protocol tests pass no pool and get a
        direct call."""
        if self.pool is None:
            return maybeDeferred(function, *args)
        return deferToThreadPool(self.reactor, self.pool, function, *args)


def connection_caps(settings: Z3950Settings) -> Caps:
    """`[z3950]`'s connection caps; pending means no accepted Init yet."""
    return Caps(
        connections=Cap(settings.max_sessions, "max_sessions"),
        per_address=Cap(settings.max_sessions_per_peer, "max_sessions_per_peer"),
        pending=Cap(settings.max_uninitialised, "max_uninitialised"),
        pending_per_address=Cap(settings.max_uninitialised_per_peer, "max_uninitialised_per_peer"),
        pending_means="without Init",
    )


def limits_from(settings: Z3950Settings) -> Limits:
    return Limits(
        preferred_message_size=settings.preferred_message_size,
        exceptional_record_size=settings.exceptional_record_size,
        max_result_sets=settings.max_result_sets,
        result_set_max_records=settings.result_set_max_records,
        max_present=settings.max_present,
        max_scan_terms=settings.max_scan_terms,
        legacy_encoding=settings.legacy_encoding,
        default_sort=settings.default_sort,
    )


def build_z3950_service(
    settings: Settings, store: Store, engine: Engine, reactor: Any = None
) -> tuple[MultiService, list[str]]:
    """The listeners of `[z3950] listen`, sharing one factory and thread pool."""
    z3950 = settings.z3950
    reactor = reactor or default_reactor
    threads = engine_threads(store, settings.storage, z3950.threads)
    pool = ThreadPool(minthreads=1, maxthreads=threads, name="libgate-z3950")
    codec.schema()  # compile the ASN.1 module now, not in the first client's Init
    factory = Z3950Factory(
        z3950, CatalogueService(store, engine, settings.databases), pool, reactor
    )
    service = ThreadPoolService(pool)
    names = ", ".join(d.name for d in settings.databases)
    default = settings.databases[0].name
    described = add_listeners(
        service,
        reactor,
        z3950.listen,
        factory,
        lambda listen: f"Z39.50 on {listen} (databases {names}; Default = {default})",
    )
    return service, described
