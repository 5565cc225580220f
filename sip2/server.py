"""The thin Twisted adapter: bytes from a socket to `Session`, engine work to a thread pool,
one `transport.write` per response (clients read one response per recv), timeouts and limits.
"""

from __future__ import annotations

import logging
import time
import zoneinfo
from collections import deque
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import TypeVar

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet import reactor as default_reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import (
    IDelayedCall,
    IProtocolFactory,
    IReactorFromThreads,
    IReactorTime,
    IStreamServerEndpoint,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from gateway.circulation.clock import Clock
from gateway.circulation.engine import Engine
from gateway.config import Settings, Sip2Account, Sip2Settings
from gateway.services import ThreadPoolService, engine_threads
from sip2.accounts import Accounts
from sip2.codec import Message
from sip2.framing import Framer
from sip2.handlers import Handlers
from sip2.session import Authenticate, Dispatch, Reply, Session

log = logging.getLogger("libgate.sip2")
PARTIAL_FRAME_SECONDS = 30  # a started frame must end within this (slowloris)
OUTCOME_FLAGS = ("ok", "payment_accepted", "item_properties_ok")
Result = TypeVar("Result")

# Twisted leaves these three unannotated; the names below state the types they have.
_endpoint_from_string: Callable[[IReactorTime, str], IStreamServerEndpoint] = serverFromString
_listener: Callable[[IStreamServerEndpoint, IProtocolFactory], Service] = (
    StreamServerEndpointService
)
_add_child: Callable[[MultiService, Service], object] = MultiService.addService


def local_zone(name: str) -> tzinfo:
    if name:
        return zoneinfo.ZoneInfo(name)
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


def outcome_of(response: Message) -> str:
    for name in OUTCOME_FLAGS:
        if name in response.fixed:
            return "ok" if response.fixed[name] in ("1", "Y") else "refused"
    return "ok"


class Sip2Protocol(Protocol):
    factory: Sip2Factory

    def __init__(self) -> None:
        self.session: Session | None = None
        self.framer: Framer | None = None
        self.queue: deque[bytes] = deque()
        self.busy = False
        self.closing = False
        self.timer: IDelayedCall | None = None
        self.partial_timer: IDelayedCall | None = None
        self.peer = "?"

    # --- connection life -----------------------------------------------------------------

    def connectionMade(self) -> None:
        factory = self.factory
        peer = self._transport.getPeer()
        self.peer = str(getattr(peer, "host", peer))
        if factory.active >= factory.settings.max_connections:
            log.warning("sip2 peer=%s refused: %d connections open", self.peer, factory.active)
            self.closing = True
            self._transport.loseConnection()
            return
        factory.active += 1
        self.counted = True
        self.session = Session(
            factory.settings,
            factory.accounts,
            self.peer,
            factory.clock.now,
            factory.zone,
            factory.library_name,
        )
        self.framer = Framer(factory.settings.max_frame_bytes)
        self._arm(factory.settings.login_timeout, "login timeout")

    @property
    def _transport(self) -> ITransport:
        """The connection's transport, there from `makeConnection` on."""
        assert self.transport is not None
        return self.transport

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if getattr(self, "counted", False):
            self.factory.active -= 1
            self.counted = False
        self.closing = True
        for timer in (self.timer, self.partial_timer):
            if timer is not None and timer.active():
                timer.cancel()

    def _arm(self, seconds: float, why: str) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = self.factory.reactor.callLater(seconds, self._time_out, why)

    def _time_out(self, why: str) -> None:
        account = self.session.account.login if self.session and self.session.account else "-"
        log.info("sip2 account=%s peer=%s closed: %s", account, self.peer, why)
        self._close()

    def _close(self) -> None:
        self.closing = True
        self._transport.loseConnection()

    # --- frames --------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.closing or self.framer is None:
            return
        frames = self.framer.feed(data)
        if frames and self.session is not None and self.session.account is not None:
            # Only a logged-in terminal's messages keep it connected; before login the one
            # login timer armed at connect runs out whatever arrives.
            self._arm(self.factory.settings.idle_timeout, "idle")
        self.queue.extend(frames)
        if self.framer.pending and (self.partial_timer is None or not self.partial_timer.active()):
            self.partial_timer = self.factory.reactor.callLater(
                PARTIAL_FRAME_SECONDS, self._partial_timeout
            )
        elif not self.framer.pending and self.partial_timer is not None:
            if self.partial_timer.active():
                self.partial_timer.cancel()
            self.partial_timer = None
        self._next()

    def _partial_timeout(self) -> None:
        if self.framer is not None and self.framer.pending:
            self._time_out("unfinished frame")

    def _next(self) -> None:
        assert self.session is not None
        while not self.busy and self.queue and not self.closing:
            frame = self.queue.popleft()
            started = time.perf_counter()
            step = self.session.receive(frame)
            if isinstance(step, Reply):
                self._send(step, started)
                continue
            self.busy = True
            if isinstance(step, Authenticate):
                checked = self.factory.call_in_thread(
                    self.factory.accounts.authenticate,
                    step.message.get("CN"),
                    step.message.get("CO"),
                    self.peer,
                )
                checked.addCallbacks(
                    self._authenticated,
                    self._login_failed,
                    callbackArgs=(step, started),
                    errbackArgs=(step, started),
                )
                return
            terminal = f"{step.account.login}@{self.peer}"
            deferred = self.factory.call_in_thread(
                self.factory.handlers.handle, step.account, step.message, terminal
            )
            deferred.addCallbacks(
                self._answered,
                self._failed,
                callbackArgs=(step, started),
                errbackArgs=(step, started),
            )
            return

    def _send(self, reply: Reply, started: float) -> None:
        assert self.session is not None
        self._transport.write(reply.data)
        self._log(reply.command, reply.outcome, started)
        if reply.close:
            self._close()
        elif reply.command == "93" and self.session.account is not None:
            self._arm(self.factory.settings.idle_timeout, "idle")

    def _authenticated(
        self, account: Sip2Account | None, step: Authenticate, started: float
    ) -> None:
        assert self.session is not None
        self.busy = False
        if self.closing:
            return
        self._send(self.session.logged_in(step, account), started)
        self._next()

    def _login_failed(self, failure: Failure, step: Authenticate, started: float) -> None:
        log.error("sip2 peer=%s login check failed: %s", self.peer, failure.getTraceback())
        self._authenticated(None, step, started)

    def _answered(self, response: Message, step: Dispatch, started: float) -> None:
        assert self.session is not None
        self.busy = False
        if self.closing:
            return
        self._transport.write(self.session.respond(step, response))
        self._log(step.message.command, outcome_of(response), started)
        self._next()

    def _failed(self, failure: Failure, step: Dispatch, started: float) -> None:
        # Our bug or the database gone: the SC gets 96 (resend later), never a dropped line.
        log.error(
            "sip2 account=%s peer=%s command=%s failed: %s",
            step.account.login,
            self.peer,
            step.message.command,
            failure.getTraceback(),
        )
        self.busy = False
        if self.closing:
            return
        assert self.session is not None
        self._transport.write(self.session.failed(step))
        self._log(step.message.command, "error", started)
        self._next()

    def _log(self, command: str, outcome: str, started: float) -> None:
        # One line per message; never a PIN or a password (the request's fields are not logged).
        account = self.session.account.login if self.session and self.session.account else "-"
        log.info(
            "sip2 account=%s peer=%s command=%s outcome=%s ms=%.1f",
            account,
            self.peer,
            command,
            outcome,
            (time.perf_counter() - started) * 1000,
        )


class Sip2Factory(Factory[Sip2Protocol]):
    protocol = Sip2Protocol

    def __init__(
        self,
        settings: Sip2Settings,
        handlers: Handlers,
        clock: Clock,
        pool: ThreadPool,
        reactor: IReactorTime | None = None,
        library_name: str = "",
    ) -> None:
        self.settings = settings
        self.accounts = Accounts(settings)
        self.handlers = handlers
        self.clock = clock
        self.pool = pool
        self.reactor: IReactorTime = reactor or default_reactor
        self.zone = handlers.zone
        self.library_name = library_name
        self.active = 0

    def call_in_thread(self, function: Callable[..., Result], *args: object) -> Deferred[Result]:
        """Engine work runs off the reactor thread (protocol tests swap in a direct call)."""
        return deferToThreadPool(IReactorFromThreads(self.reactor), self.pool, function, *args)


def build_sip2_service(
    settings: Settings, engine: Engine, clock: Clock, reactor: IReactorTime | None = None
) -> tuple[MultiService, list[str]]:
    """The SIP2 listeners from `[sip2] listen`, all sharing one factory and thread pool."""
    sip2 = settings.sip2
    reactor = reactor or default_reactor
    threads = engine_threads(engine.store, settings.storage, sip2.threads)
    pool = ThreadPool(minthreads=1, maxthreads=threads, name="libgate-sip2")
    handlers = Handlers(
        engine,
        clock,
        local_zone(sip2.timezone),
        currency=settings.circulation.currency,
        default_database=settings.databases[0].name,
    )
    factory = Sip2Factory(
        sip2, handlers, clock, pool, reactor, library_name=settings.databases[0].title
    )
    service = ThreadPoolService(pool)
    described = []
    for listen in sip2.listen:
        endpoint = _endpoint_from_string(reactor, listen)
        _add_child(service, _listener(endpoint, factory))
        described.append(f"SIP2 on {listen} ({len(sip2.accounts)} accounts)")
    return service, described
