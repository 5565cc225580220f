"""Service-tree pieces every protocol front-end shares."""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.python.threadpool import ThreadPool

from gateway.burst_log import BurstLog
from gateway.config import StorageSettings
from gateway.listening import server_endpoint
from gateway.store import Store

if TYPE_CHECKING:
    from twisted.internet.interfaces import (
        IProtocolFactory,
        IReactorCore,
        IReactorTCP,
        IReactorThreads,
        IReactorTime,
    )

    class ServerReactor(IReactorCore, IReactorTime, IReactorTCP, IReactorThreads):
        """The parts of a reactor our servers use: timers, TCP, and a thread pool for the
        engine's blocking work. Exists for the type checker only."""


def as_server_reactor(reactor: object) -> ServerReactor:
    """`reactor` as a `ServerReactor`. Twisted's stub declares its global reactor with the
    commonly implemented interfaces only (twisted/internet/__init__.py), leaving out
    `IReactorThreads`; every POSIX reactor we run on provides it."""
    return cast("ServerReactor", reactor)


# SQLite serialises writes on the store's one writer connection and answers a read in tens of
# microseconds, so threads beyond a few only fight the reactor for the GIL: with 50 connections
# on 2 cores (bench/sip2_bench.py) 16 threads gave about half the read-only messages/s of 4 and
# fewer checkouts. On PostgreSQL a thread beyond the connection pool can only queue for a
# connection: 16 threads on the default pool of 8 gave 20-40 % fewer messages/s than 8.
SQLITE_MAX_THREADS = 4


def engine_threads(store: Store, storage: StorageSettings, asked: int) -> int:
    """Threads for a front-end's engine calls: the `threads` its section asks for, at most
    SQLITE_MAX_THREADS on SQLite and at most `[storage] pool_size` on PostgreSQL."""
    if store.dialect == "sqlite":
        return min(asked, SQLITE_MAX_THREADS)
    if store.dialect == "postgresql":
        return min(asked, max(1, storage.pool_size))
    return asked


class ThreadPoolService(MultiService):
    """A front-end's engine thread pool and its listeners: the pool starts before the
    listeners accept anything and stops only after they have stopped, so no request is
    handed to a stopped pool."""

    # The base methods are called by name, not through super(): MultiService is unannotated,
    # and mypy's `untyped_calls_exclude` does not cover calls through super().

    def __init__(self, pool: ThreadPool, *more_pools: ThreadPool) -> None:
        MultiService.__init__(self)
        self.pool = pool
        self.pools = (pool, *more_pools)  # e.g. SIP2's separate pool for password checks

    def startService(self) -> None:
        for pool in self.pools:
            pool.start()
        MultiService.startService(self)

    def stopService(self) -> Deferred[None]:
        deferred: Deferred[None] = MultiService.stopService(self)

        def stop_pool(result: object) -> object:
            for pool in self.pools:
                pool.stop()
            return result

        deferred.addBoth(stop_pool)
        return deferred


def add_listeners(
    service: MultiService,
    reactor: Any,
    listen: Sequence[str],
    factory: IProtocolFactory,
    describe: Callable[[str], str],
) -> list[str]:
    """A listener serving `factory` for each listen string (the socket a worker inherited, or
    Twisted's endpoint), each a child of `service` so it starts after the service's thread
    pools and stops before them; what the banner says of each (`describe(listen string)`)."""
    described = []
    for endpoint in listen:
        listener = StreamServerEndpointService(server_endpoint(reactor, endpoint), factory)
        listener.setServiceParent(service)
        described.append(describe(endpoint))
    return described


# --- the process's descriptor budget --------------------------------------------------------


def open_descriptors() -> int | None:
    """Descriptors this process has open now (None where /proc/self/fd does not exist)."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # listdir's own descriptor
    except OSError:
        return None


class DescriptorGuard:
    """Process-wide: every listener asks `exhausted()` before taking a new connection, and
    refuses it when fewer than `margin` descriptors are left under the soft RLIMIT_NOFILE.
    The margin keeps room for what existing connections still need (the database, a log
    file, a TLS handshake), so a flood of new sockets is refused before they suffer; without
    it accept() fails with EMFILE for every protocol at once and nothing says why."""

    def __init__(
        self,
        margin: int = 64,
        count: Callable[[], int | None] = open_descriptors,
        logger: logging.Logger | None = None,
    ) -> None:
        self.margin = margin
        self.count = count
        # No reactor clock: the guard is built at import, before any reactor is chosen.
        self.burst = BurstLog(
            logger or logging.getLogger("libgate"), "connections refused near the descriptor limit"
        )
        self.now = time.monotonic
        self._counted: tuple[float, int] | None = None  # (when, open) of the last count

    @staticmethod
    def limit() -> int:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return soft if soft != resource.RLIM_INFINITY else 1 << 20

    def exhausted(self, listener: str = "", peer: str = "") -> bool:
        """True (and logged once per burst) when a new connection must be refused."""
        limit = self.limit()
        now = self.now()
        if self._counted is not None:
            # Counting /proc/self/fd costs time per open descriptor: far from the limit, a
            # count a few milliseconds old is good enough for a burst of accepts.
            when, used_then = self._counted
            if now - when < 0.05 and used_then < limit - 4 * self.margin:
                return False
        used = self.count()
        if used is None:
            return False
        self._counted = (now, used)
        if used < limit - self.margin:
            return False
        self.burst.note(
            "%s peer=%s refused: %d of %d file descriptors open (margin %d)",
            listener or "listener",
            peer or "?",
            used,
            limit,
            self.margin,
        )
        return True


DESCRIPTORS = DescriptorGuard()  # the one guard of this process; `serve` sets its margin


def raise_descriptor_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (the usual soft 1,024 is what a slow
    trickle of sockets exhausts first); returns (soft, hard) as now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        # Some platforms cap the soft limit lower (macOS OPEN_MAX): then keep what is set.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard
