"""The thin Twisted adapter: bytes from a socket to `Session`, engine work to a thread pool,
one `transport.write` per response (clients read one response per recv), timeouts and limits.
"""

from __future__ import annotations

import logging
import threading
import time
import zoneinfo
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, tzinfo
from functools import partial
from typing import Any, TypeVar

from twisted.application.service import MultiService
from twisted.internet import reactor as default_reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorFromThreads,
    IReactorTime,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from gateway import metrics
from gateway.access_log import Access, record_extra
from gateway.admission import Cap, Caps, ConnectionCaps, single_address
from gateway.burst_log import BurstLog
from gateway.circulation.clock import Clock
from gateway.circulation.engine import Engine
from gateway.config import Settings, Sip2Account, Sip2Settings
from gateway.draining import DrainsConnections
from gateway.login_failures import Delays, LoginBackoff, LoginFailures, Verdict
from gateway.services import DESCRIPTORS, ThreadPoolService, add_listeners, engine_threads
from sip2.accounts import Accounts
from sip2.admission import LoginQueue, TrustedNetworks
from sip2.codec import Message
from sip2.framing import Framer
from sip2.handlers import Handlers
from sip2.session import Authenticate, Dispatch, Reply, Session
from sip2.workers import AuditLog, EngineThreads

log = logging.getLogger("libgate.sip2")
PARTIAL_FRAME_SECONDS = 30  # a started frame must end within this (slowloris)
OUTCOME_FLAGS = ("ok", "payment_accepted", "item_properties_ok")
Result = TypeVar("Result")


def local_zone(name: str) -> tzinfo:
    if name:
        return zoneinfo.ZoneInfo(name)
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


def outcome_of(
    response: Message, request: Message | None = None, account: Sip2Account | None = None
) -> str:
    """The log's and the metrics' word for how `response` answered `request`.

    A patron status or information answer (24, 64) has no ok flag: its outcome is read from
    BL (valid patron) and CQ (valid PIN), as the handler wrote them (sip2/handlers.py
    `_patron_fields`, `_withheld`). CQ is N also when the account checks no PIN, so only an
    account that checks PINs can get bad_pin (a wrong PIN, or any PIN during the back-off)."""
    if response.command in ("24", "64") and request is not None:
        if response.get("BL") == "N":
            return "unknown_patron"
        if account is not None and account.verify_patron_pin and response.get("CQ") == "N":
            if request.get("AD"):
                return "bad_pin"
            if account.require_patron_pin:
                return "pin_required"
        return "ok"
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
        self.draining = False  # the process is stopping: answer what was received, then close
        self.timer: IDelayedCall | None = None
        self.timer_why = ""
        self.partial_timer: IDelayedCall | None = None
        self.peer = "?"

    # --- connection life -----------------------------------------------------------------

    def connectionMade(self) -> None:
        factory = self.factory
        peer = self._transport.getPeer()
        self.peer = str(getattr(peer, "host", peer))
        if DESCRIPTORS.exhausted("sip2", self.peer):
            self._refuse()
            return
        refusal = factory.caps.refusal(self.peer)
        if refusal is not None:
            factory.refusals.note("sip2 peer=%s refused: %s", self.peer, refusal)
            self._refuse()
            return
        factory.caps.opened(self.peer)
        factory.open_connections.add(self)
        self.counted = True
        self.counted_logged_in = False
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

    def _refuse(self) -> None:
        self.closing = True
        self._transport.loseConnection()

    @property
    def _transport(self) -> ITransport:
        """The connection's transport, there from `makeConnection` on."""
        assert self.transport is not None
        return self.transport

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.factory.open_connections.discard(self)
        if self.draining:  # the reactor may stop before the audit log's timer: write it now
            self.factory.audit.flush()
        if getattr(self, "counted", False):
            self.factory.caps.closed(self.peer, self.counted_logged_in)
            self.counted = False
        self.closing = True
        for timer in (self.timer, self.partial_timer):
            if timer is not None and timer.active():
                timer.cancel()

    def _arm(self, seconds: float, why: str) -> None:
        if self.timer is not None and self.timer.active():
            if why == self.timer_why:
                # Pushed later on every message: a reset is cheaper than cancel + callLater.
                self.timer.reset(seconds)
                return
            self.timer.cancel()
        self.timer = self.factory.reactor.callLater(seconds, self._time_out, why)
        self.timer_why = why

    def _time_out(self, why: str) -> None:
        account = self.session.account.login if self.session and self.session.account else "-"
        self.factory.audit.info(
            "sip2 account=%s peer=%s closed: %s", account, self.peer, why, at_once=True
        )
        self._close()

    def _close(self) -> None:
        self.closing = True
        self._transport.loseConnection()

    def drain(self) -> None:
        """The process is stopping (gateway/draining.py): a terminal between messages is
        closed now; one whose message is in the engine gets its answer (and those of frames
        already received), then the close. Bytes that arrive from now on are not read."""
        self.draining = True
        if not self.busy and not self.closing:
            self._close()

    # --- frames --------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.closing or self.draining or self.framer is None:
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
            if isinstance(step, Authenticate):
                if self._check_login(step, started):
                    return
                continue
            factory = self.factory
            if factory.engine_waiting >= factory.settings.max_queued_requests:
                # The engine is behind: 96 now (the SC resends, as after any 96) rather than
                # an answer later than the SC's own timeout. 96 is valid for every request;
                # the offline flags exist only in 98, which a checkout cannot be answered with.
                factory.busy_refusals.note(
                    "sip2 peer=%s command=%s answered 96: %d engine calls waiting"
                    " (max_queued_requests)",
                    self.peer,
                    step.message.command,
                    factory.engine_waiting,
                )
                self._transport.write(self.session.failed(step))
                continue
            self.busy = True
            factory.engine_waiting += 1
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
        if self.draining and not self.busy and not self.closing:
            self._close()  # every message received before the stop is answered

    def _check_login(self, step: Authenticate, started: float) -> bool:
        """Start a 93's password check in the auth pool (True), or refuse it at once with 940
        (False) when the login is throttled or the auth queue is full: a refusal without a
        check costs no thread and is logged once per burst, not per attempt."""
        assert self.session is not None
        factory = self.factory
        login = step.message.get("CN")
        wait = factory.delays.wait(self.peer, login)
        if wait > 0:
            self._log_throttled(login, wait)
        elif not factory.login_queue.admit(self.peer):
            factory.queue_refusals.note(
                "sip2 peer=%s login refused: %d password checks waiting (max_queued_logins)",
                self.peer,
                factory.login_queue.waiting,
            )
        else:
            self.busy = True
            factory.login_queue.started(self.peer)
            checked = factory.call_auth(
                factory.logins.attempt,
                self.peer,
                login,
                partial(factory.accounts.authenticate, login, step.message.get("CO"), self.peer),
            )
            checked.addCallbacks(
                self._authenticated,
                self._login_failed,
                callbackArgs=(step, started),
                errbackArgs=(step, started),
            )
            return True
        was_logged_in = self.session.account is not None
        reply = self.session.logged_in(step, None)
        self._login_state(was_logged_in)
        self._transport.write(reply.data)
        if reply.close:
            self._close()
        return False

    def _login_state(self, was_logged_in: bool) -> None:
        """Move this socket between the pre-login and logged-in counts after a 93."""
        assert self.session is not None
        now_logged_in = self.session.account is not None
        if not getattr(self, "counted", False) or now_logged_in == was_logged_in:
            return
        if now_logged_in:
            self.factory.caps.logged_in(self.peer)
        else:
            self.factory.caps.logged_out(self.peer)
        self.counted_logged_in = now_logged_in

    def _send(self, reply: Reply, started: float) -> None:
        assert self.session is not None
        self._transport.write(reply.data)
        self._log(reply.command, reply.outcome, started)
        if reply.close:
            self._close()
        elif reply.command == "93" and self.session.account is not None:
            self._arm(self.factory.settings.idle_timeout, "idle")

    def _log_throttled(self, login: str, wait: float) -> None:
        self.factory.throttle_refusals.note(
            "sip2 peer=%s account=%s login throttled for %.1f s after failed logins",
            self.peer,
            login or "-",
            wait,
        )

    def _authenticated(
        self, verdict: Verdict[Sip2Account], step: Authenticate, started: float
    ) -> None:
        assert self.session is not None
        self.busy = False
        factory = self.factory
        factory.login_queue.finished(self.peer)
        login = step.message.get("CN")
        account = verdict.checked
        if verdict.throttled is not None:
            factory.delays.remember(self.peer, login, verdict.throttled)
            self._log_throttled(login, verdict.throttled.wait)
        elif account is not None:
            factory.delays.forget(self.peer)
        if self.closing:
            return
        was_logged_in = self.session.account is not None
        reply = self.session.logged_in(step, account)
        if verdict.throttled is not None:  # refused unchecked: not a wrong password
            reply = replace(reply, outcome="throttled")
        self._login_state(was_logged_in)
        self._send(reply, started)
        self._next()

    def _login_failed(self, failure: Failure, step: Authenticate, started: float) -> None:
        self.factory.audit.flush()  # the lines before this one stay before it
        log.error("sip2 peer=%s login check failed: %s", self.peer, failure.getTraceback())
        self._authenticated(Verdict(), step, started)

    def _answered(self, response: Message, step: Dispatch, started: float) -> None:
        assert self.session is not None
        self.busy = False
        self.factory.engine_waiting -= 1
        if self.closing:
            return
        self._transport.write(self.session.respond(step, response))
        self._log(step.message.command, outcome_of(response, step.message, step.account), started)
        self._next()

    def _failed(self, failure: Failure, step: Dispatch, started: float) -> None:
        # Our bug or the database gone: the SC gets 96 (resend later), never a dropped line.
        self.factory.audit.flush()  # the lines before this one stay before it
        log.error(
            "sip2 account=%s peer=%s command=%s failed: %s",
            step.account.login,
            self.peer,
            step.message.command,
            failure.getTraceback(),
        )
        self.busy = False
        self.factory.engine_waiting -= 1
        if self.closing:
            return
        assert self.session is not None
        self._transport.write(self.session.failed(step))
        self._log(step.message.command, "error", started)
        self._next()

    def _log(self, command: str, outcome: str, started: float) -> None:
        metrics.sip2_message(command, outcome, time.perf_counter() - started)
        # One line per message; never a PIN or a password (the request's fields are not logged).
        # Written in batches (`AuditLog`); a login's line at once, with those before it.
        account = self.session.account.login if self.session and self.session.account else "-"
        access = Access(
            channel="sip2",
            account=account,
            peer=self.peer,
            command=command,
            outcome=outcome,
            ms=(time.perf_counter() - started) * 1000,
        )
        self.factory.audit.info(
            "%s", access.text(), at_once=command == "93", extra=record_extra(access)
        )


class AnswerBatches:
    """Engine calls in a thread pool whose answers go back to the reactor in batches.

    `deferToThreadPool` wakes the reactor once per answer (one `callFromThread`: a lock, a
    queue, a write to the waker pipe and an epoll round). Here a pool thread puts its answer
    in one outbox, and only the thread that finds the outbox empty wakes the reactor: that one
    wake-up fires every answer waiting by the time the reactor gets to it, so under load many
    answers share one wake-up, and an idle server answers as soon as before.
    """

    def __init__(self, reactor: IReactorTime, pool: ThreadPool) -> None:
        self._reactor = reactor  # adapted when used: protocol tests pass a task.Clock
        self._pool = pool
        self._lock = threading.Lock()
        self._outbox: list[tuple[Deferred[Any], bool, object]] = []

    def call(self, function: Callable[..., Result], *args: object) -> Deferred[Result]:
        deferred: Deferred[Result] = Deferred()
        self._pool.callInThreadWithCallback(partial(self._done, deferred), function, *args)
        return deferred

    def _done(self, deferred: Deferred[Any], ok: bool, result: object) -> None:
        """In a pool thread: `result` is the answer, or a Failure when `ok` is false."""
        with self._lock:
            self._outbox.append((deferred, ok, result))
            first = len(self._outbox) == 1
        if first:
            IReactorFromThreads(self._reactor).callFromThread(self._deliver)

    def _deliver(self) -> None:
        """On the reactor: fire every answer in the outbox, in the order they came."""
        with self._lock:
            batch, self._outbox = self._outbox, []
        for deferred, ok, result in batch:
            if ok:
                deferred.callback(result)
            else:
                assert isinstance(result, Failure)
                deferred.errback(result)


class Sip2Factory(DrainsConnections, Factory[Sip2Protocol]):
    protocol = Sip2Protocol

    def __init__(
        self,
        settings: Sip2Settings,
        handlers: Handlers,
        clock: Clock,
        pool: ThreadPool,
        reactor: IReactorTime | None = None,
        library_name: str = "",
        auth_pool: ThreadPool | None = None,
        accounts: Accounts | None = None,
    ) -> None:
        self.settings = settings
        # The accounts in force; whoever builds the service may keep them to hand a config
        # reload's accounts to (gateway/app.py).
        self.accounts = accounts or Accounts(settings)
        self.handlers = handlers
        self.clock = clock
        self.pool = pool
        self.auth_pool = auth_pool
        self.reactor: IReactorTime = reactor or default_reactor
        self.zone = handlers.zone
        self.library_name = library_name
        trusted = TrustedNetworks(settings.trusted_networks)
        self.caps = ConnectionCaps(
            connection_caps(settings), trusted, single_address, protocol="sip2"
        )
        self.login_queue = LoginQueue(settings, trusted)
        # Failed logins are counted in the store, shared by every process; `delays` remembers
        # the delays it imposed, so a flood inside one is refused without a thread or query.
        backoff = LoginBackoff(
            settings.login_failures_before_delay, float(settings.login_delay_max_seconds)
        )
        self.logins = LoginFailures(handlers.engine.store, "sip2", backoff, trusted)
        self.delays = Delays(trusted)
        self.engine_waiting = 0  # engine calls handed to the pool and not answered yet
        self.open_connections: set[Sip2Protocol] = set()  # admitted and not yet lost
        self.answers = AnswerBatches(self.reactor, pool)
        timers = self.reactor
        self.refusals = BurstLog(log, "sip2 refused connections", clock=timers)
        self.busy_refusals = BurstLog(log, "sip2 messages answered 96, engine busy", clock=timers)
        self.queue_refusals = BurstLog(log, "sip2 logins refused, auth queue full", clock=timers)
        self.throttle_refusals = BurstLog(log, "sip2 logins throttled", clock=timers)
        self.audit = AuditLog(log, timers)

    def stopFactory(self) -> None:
        self.audit.flush()
        for burst in (
            self.refusals,
            self.busy_refusals,
            self.queue_refusals,
            self.throttle_refusals,
        ):
            burst.stop()

    @property
    def active(self) -> int:
        """Connections open now."""
        return self.caps.active

    drain_name = "SIP2"  # a stop drains open_connections (gateway/draining.py)

    def call_in_thread(self, function: Callable[..., Result], *args: object) -> Deferred[Result]:
        """Engine work runs off the reactor thread (protocol tests swap in a direct call);
        its answers come back in batches (`AnswerBatches`)."""
        return self.answers.call(function, *args)

    def call_auth(self, function: Callable[..., Result], *args: object) -> Deferred[Result]:
        """Password checks run in their own small pool, so a login flood queues there and
        never in front of a logged-in terminal's circulation messages."""
        if self.auth_pool is None:
            return self.call_in_thread(function, *args)
        return deferToThreadPool(IReactorFromThreads(self.reactor), self.auth_pool, function, *args)


def connection_caps(settings: Sip2Settings) -> Caps:
    """`[sip2]`'s connection caps; pending means not logged in (no good 93 yet)."""
    return Caps(
        connections=Cap(settings.max_connections, "max_connections"),
        per_address=Cap(settings.max_connections_per_address, "max_connections_per_address"),
        pending=Cap(settings.max_unauthenticated, "max_unauthenticated"),
        pending_per_address=Cap(
            settings.max_unauthenticated_per_address, "max_unauthenticated_per_address"
        ),
    )


def build_sip2_service(
    settings: Settings,
    engine: Engine,
    clock: Clock,
    reactor: IReactorTime | None = None,
    accounts: Accounts | None = None,
) -> tuple[MultiService, list[str]]:
    """The SIP2 listeners from `[sip2] listen`, all sharing one factory and thread pool; the
    terminal accounts are `accounts` (a config reload changes them), else `[[sip2.accounts]]`."""
    sip2 = settings.sip2
    reactor = reactor or default_reactor
    threads = engine_threads(engine.store, settings.storage, sip2.threads)
    pool = EngineThreads(threads, name="libgate-sip2")
    auth_pool = ThreadPool(minthreads=1, maxthreads=sip2.auth_threads, name="libgate-sip2-auth")
    handlers = Handlers(
        engine,
        clock,
        local_zone(sip2.timezone),
        default_database=settings.databases[0].name,
    )
    factory = Sip2Factory(
        sip2,
        handlers,
        clock,
        pool,
        reactor,
        library_name=settings.databases[0].title,
        auth_pool=auth_pool,
        accounts=accounts,
    )
    service = ThreadPoolService(pool, auth_pool)
    described = add_listeners(
        service,
        reactor,
        sip2.listen,
        factory,
        lambda listen: f"SIP2 on {listen} ({len(sip2.accounts)} accounts)",
    )
    return service, described
