"""Service-tree pieces every protocol front-end shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.python.threadpool import ThreadPool

from gateway.config import StorageSettings
from gateway.store import Store

if TYPE_CHECKING:
    from twisted.internet.interfaces import (
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

    def __init__(self, pool: ThreadPool) -> None:
        MultiService.__init__(self)
        self.pool = pool

    def startService(self) -> None:
        self.pool.start()
        MultiService.startService(self)

    def stopService(self) -> Deferred[None]:
        deferred: Deferred[None] = MultiService.stopService(self)

        def stop_pool(result: object) -> object:
            self.pool.stop()
            return result

        deferred.addBoth(stop_pool)
        return deferred
