"""How a serving process stops on SIGTERM or SIGINT: stop accepting, finish what is in flight,
flush the notices, and exit within `[service] stop_timeout`.

1. Every listener stops listening at once (its port closes: new connections are refused),
   and in a worker the sockets inherited from the supervisor are closed too.
2. Each listener's factory is told to drain (`Drainable`): a connection with nothing in
   flight is closed now; one whose request is being worked on gets its answer, then closes.
   The store's waits for a connection or lock are cut to what is left of the bound, so a
   request stuck behind a database that is gone fails (and is answered) before it.
3. When no connection is left the reactor stops, which stops the service tree: the scheduled
   loops finish their round in flight, the notice loop sends one last round of due notices
   (gateway/notify/sender.py `NoticeLoop`, told to be done a second before the bound, so a
   silent mail server does not force the exit), the ILL sender finishes its round, the thread
   pools end and the store closes. Exit code 0.
4. A watchdog thread, started with the stop, ends the process when `stop_timeout` has passed:
   one log line says what was abandoned, the logs are flushed, and `os._exit` ends it with
   EXIT_STOP_FORCED. It is a thread, not a reactor timer, because what overruns the bound is
   usually a thread blocked in the database (PostgreSQL gone: each waits up to its pool's
   30 s), and stopping a thread pool joins its threads on the reactor thread; `os._exit`,
   because Python's own exit would join those same threads.

A second SIGTERM or SIGINT changes nothing: under a supervisor both the supervisor's SIGTERM
and the terminal's SIGINT (sent to the whole process group) reach a worker.

The supervisor (gateway/supervisor.py) imports the constants below; this module installs no
reactor (the reactor is handed in).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService

from gateway.listening import close_inherited
from gateway.store import Store

if TYPE_CHECKING:
    from gateway.services import ServerReactor

log = logging.getLogger("libgate")

# Exit code of a process whose stop passed `stop_timeout` and abandoned work (sysexits'
# EX_TEMPFAIL: the clients whose requests were cut off try again). 0 is a clean drain.
EXIT_STOP_FORCED = 75
# The supervisor SIGKILLs a worker stop_timeout + this after SIGTERM: time for the watchdog's
# last line and exit. systemd's TimeoutStopSec must be above both (deploy/libgate.service).
STOP_MARGIN_SECONDS = 5.0
# What is kept out of the bound for the steps after the connections (loops, notices, store).
STORE_WAIT_RESERVE_SECONDS = 2.0
# What a service told to `finish_by` leaves of the bound for the rest (pools, the store).
FINAL_RESERVE_SECONDS = 1.0
POLL_SECONDS = 0.05
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@runtime_checkable
class Drainable(Protocol):
    """A listener's factory that can be drained: what a stop asks of each protocol."""

    @property
    def drain_name(self) -> str:
        """The protocol, for the stop's log lines: "SIP2", "SRU"…"""
        ...

    def drain(self) -> None:
        """Close every connection with nothing in flight now, and each of the others once its
        answer is written. New data on a draining connection is not read."""

    def drain_counts(self) -> tuple[int, int]:
        """(connections still open, requests being worked on)."""
        ...


class DrainingConnection(Protocol):
    """A connection of a `DrainsConnections` factory."""

    busy: bool  # a request of it is being worked on

    def drain(self) -> None:
        """Close now when idle, else once the answer in flight is written."""


class DrainsConnections:
    """`Drainable` for a factory that keeps its admitted connections in `open_connections`
    (SIP2, Z39.50): the stop drains each of them."""

    drain_name: str
    open_connections: set[Any]  # of DrainingConnection

    def drain(self) -> None:
        for connection in list(self.open_connections):
            connection.drain()

    def drain_counts(self) -> tuple[int, int]:
        connections: list[DrainingConnection] = list(self.open_connections)
        return len(connections), sum(1 for c in connections if c.busy)


_early: list[str] = []  # a stop signal that came before the reactor ran


def hold_stop_signals() -> None:
    """From the start of a serving process until its reactor runs: a SIGTERM or SIGINT is
    kept, and the stop begins as soon as the reactor runs (instead of dying half started,
    or a KeyboardInterrupt traceback)."""
    for number in STOP_SIGNALS:
        signal.signal(number, _keep)


def _keep(number: int, _frame: object) -> None:
    _early.append(signal.Signals(number).name)


@runtime_checkable
class BoundedStop(Protocol):
    """A service whose own stop can be cut short (e.g. the last notice round): told when it
    must be done, so the stop stays clean instead of being forced."""

    def finish_by(self, deadline: float) -> None:
        """Be stopped by `deadline` (time.monotonic())."""


def services(service: IService) -> Iterator[IService]:
    yield service
    for child in getattr(service, "services", []):
        yield from services(child)


class GracefulStop:
    """The stop of one serving process (see the module). `begin` runs on the reactor thread."""

    def __init__(
        self, root: IService, store: Store, reactor: ServerReactor, stop_timeout: float
    ) -> None:
        self.root = root
        self.store = store
        self.reactor = reactor
        self.stop_timeout = stop_timeout
        self.started: float | None = None
        self.stopping_reactor = False
        self.drainables: list[Drainable] = []
        self.watchdog: threading.Thread | None = None

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT begin the stop. Called once the reactor runs: Twisted installs
        its own handlers (an immediate reactor.stop) while starting, and these replace them."""
        for number in STOP_SIGNALS:
            signal.signal(number, self._on_signal)
        if _early:
            self.begin(_early[0])

    def _on_signal(self, number: int, _frame: object) -> None:
        name = signal.Signals(number).name
        self.reactor.callFromThread(self.begin, name)

    def begin(self, why: str) -> None:
        if self.started is not None:
            log.info("%s: already stopping", why)
            return
        self.started = time.monotonic()
        self.watchdog = threading.Thread(
            target=self._watch, name="libgate-stop-watchdog", daemon=True
        )
        self.watchdog.start()
        # Nothing may wait in the store past the bound; the rest of the stop keeps a reserve.
        self.store.limit_waits(max(0.5, self.stop_timeout - STORE_WAIT_RESERVE_SECONDS))
        found: list[Drainable] = []
        for service in list(services(self.root)):
            if isinstance(service, BoundedStop):
                service.finish_by(self.started + self.stop_timeout - FINAL_RESERVE_SECONDS)
            if not isinstance(service, StreamServerEndpointService):
                continue
            service.stopService()  # the port closes; the tree's own stop later is a no-op
            factory = service.factory
            if isinstance(factory, Drainable) and factory not in found:
                found.append(factory)
        close_inherited()  # a worker's copies of the supervisor's sockets
        self.drainables = found
        for drainable in found:
            drainable.drain()
        log.info(
            "%s: stopping; listeners closed, %s left; at most %g s",
            why,
            _described(*self._totals()),
            self.stop_timeout,
        )
        self._wait_for_connections()

    def _totals(self) -> tuple[int, int]:
        counts = [d.drain_counts() for d in self.drainables]
        return sum(c for c, _ in counts), sum(f for _, f in counts)

    def _wait_for_connections(self) -> None:
        connections, _ = self._totals()
        if connections:
            self.reactor.callLater(POLL_SECONDS, self._wait_for_connections)
            return
        assert self.started is not None
        log.info(
            "connections drained in %.1f s; stopping the loops and thread pools",
            time.monotonic() - self.started,
        )
        self.stopping_reactor = True
        self.reactor.stop()

    # --- the bound ---------------------------------------------------------------------------

    def _watch(self) -> None:
        assert self.started is not None
        time.sleep(max(0.0, self.started + self.stop_timeout - time.monotonic()))
        self.overdue()

    def abandoned(self) -> str:
        """What is still going on, for the one line of a forced exit."""
        parts = []
        for drainable in self.drainables:
            try:
                connections, in_flight = drainable.drain_counts()
            except RuntimeError:  # a set changed size under this thread: count again
                connections, in_flight = drainable.drain_counts()
            if connections:
                parts.append(f"{drainable.drain_name} {_described(connections, in_flight)}")
        if self.stopping_reactor:
            parts.append("the stop of the loops, notices, thread pools or store (unfinished)")
        return "; ".join(parts) or "nothing that could be counted"

    def overdue(self) -> None:
        """In the watchdog thread: the bound has passed. One line, the logs flushed, exit."""
        log.warning(
            "stop_timeout %g s passed: exiting with code %d; abandoned: %s",
            self.stop_timeout,
            EXIT_STOP_FORCED,
            self.abandoned(),
        )
        logging.shutdown()  # flushes every handler (a file, stderr)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a closed or broken stream
                stream.flush()
        os._exit(EXIT_STOP_FORCED)


def _described(connections: int, in_flight: int) -> str:
    return (
        f"{connections} connection{'s' if connections != 1 else ''}"
        f" ({in_flight} request{'s' if in_flight != 1 else ''} in flight)"
    )
