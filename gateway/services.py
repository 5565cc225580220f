"""Service-tree pieces every protocol front-end shares."""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.python.threadpool import ThreadPool


class ThreadPoolService(MultiService):
    """A front-end's engine thread pool and its listeners: the pool starts before the
    listeners accept anything and stops only after they have stopped, so no request is
    handed to a stopped pool."""

    def __init__(self, pool: ThreadPool) -> None:
        super().__init__()
        self.pool = pool

    def startService(self) -> None:
        self.pool.start()
        super().startService()

    def stopService(self) -> Deferred[None]:
        deferred = super().stopService()
        deferred.addBoth(lambda result: (self.pool.stop(), result)[1])
        return deferred
