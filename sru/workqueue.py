"""SRU's work queue: requests waiting for a search thread, bounded and taken in turn by address.

At most `threads` requests are handed to the thread pool at once; the rest wait here, one queue
per client address, and the next to run is taken from each address in turn. So a partner's
query waits behind at most one request from each other address, not behind a flood of heavy
ones from a single address. Bounds: `max_waiting` in all, and half of it from any one address
(so one address cannot fill the queue for everyone); past either, `admit` says no and the
request is answered at once with 503 and diagnostic 2.

Used from the reactor thread only.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, TypeVar

from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from gateway.services import as_server_reactor

T = TypeVar("T")


class WorkQueue(Generic[T]):
    def __init__(self, pool: ThreadPool, max_waiting: int) -> None:
        self.pool = pool
        self.max_waiting = max_waiting
        self.per_address = max(1, max_waiting // 2)
        self.running = 0
        self.waiting: OrderedDict[str, deque[tuple[Callable[[], T], Deferred[T]]]] = OrderedDict()
        self.waiting_count = 0
        self.dropped = 0  # requests whose client had gone before a thread took them

    def admit(self, address: str) -> bool:
        """Whether a request from `address` may queue now."""
        if self.running < self.pool.max:
            return True
        if self.waiting_count >= self.max_waiting:
            return False
        return len(self.waiting.get(address, ())) < self.per_address

    def submit(self, address: str, work: Callable[[], T]) -> Deferred[T]:
        """Run `work` in the pool when its turn comes; the result arrives in the reactor."""
        result: Deferred[T] = Deferred()
        self.waiting.setdefault(address, deque()).append((work, result))
        self.waiting_count += 1
        self._start_what_fits()
        return result

    def _start_what_fits(self) -> None:
        while self.running < self.pool.max and self.waiting:
            address, jobs = self.waiting.popitem(last=False)
            work, result = jobs.popleft()
            self.waiting_count -= 1
            if jobs:  # the address goes to the back of the line
                self.waiting[address] = jobs
            self.running += 1
            running = threads.deferToThreadPool(as_server_reactor(reactor), self.pool, work)
            running.addBoth(self._finished, result)

    def _finished(self, outcome: T | Failure, result: Deferred[T]) -> None:
        self.running -= 1
        self._start_what_fits()
        if isinstance(outcome, Failure):
            result.errback(outcome)
        else:
            result.callback(outcome)


__all__ = ["WorkQueue"]
