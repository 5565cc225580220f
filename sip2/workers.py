"""The two per-message costs of the Twisted adapter that are not SIP2: the hand-off of engine
calls to threads, and the one audit line per message.

`EngineThreads` is a Twisted `ThreadPool` (same `start`/`stop`/`max`, so `ThreadPoolService`
runs it) whose hand-off is one put on a C queue instead of Twisted's Team, context tracking and
per-call worker coordination. `AuditLog` keeps each message's INFO line as a `LogRecord` made
when the message was answered (its time stamp is that moment) and writes them in batches, so
a busy server makes one write per batch instead of one write and flush per message.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, ParamSpec, TypeVar, cast

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

log = logging.getLogger("libgate.sip2")

_P = ParamSpec("_P")
_R = TypeVar("_R")
Job = tuple[Callable[[bool, object], object] | None, Callable[..., object], tuple[Any, ...]]


class EngineThreads(ThreadPool):
    """`max` threads, started with the pool, each taking engine calls from one queue.

    `callInThreadWithCallback(onResult, f, *args)` runs `f(*args)` in one of the threads and
    then `onResult(True, result)`, or `onResult(False, Failure)` when it raised, in that
    thread, as Twisted's pool does."""

    def __init__(self, threads: int, name: str) -> None:
        super().__init__(minthreads=threads, maxthreads=threads, name=name)
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.joined = False
        self.started = True
        for number in range(self.max):
            thread = threading.Thread(
                target=self._work, name=f"PoolThread-{self.name}-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Let the queued calls finish, then end every thread."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self.joined = True
        self.started = False

    def callInThreadWithCallback(
        self,
        onResult: Callable[[bool, _R], object] | None,
        func: Callable[_P, _R],
        *args: _P.args,
        **kw: _P.kwargs,
    ) -> None:
        function: Callable[..., object] = partial(func, **kw) if kw else func
        self._jobs.put((cast("Callable[[bool, object], object] | None", onResult), function, args))

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            on_result, function, args = job
            try:
                result = function(*args)
            except BaseException:
                failure = Failure()
                if on_result is None:
                    log.error("engine call failed: %s", failure.getTraceback())
                else:
                    on_result(False, failure)
                continue
            if on_result is not None:
                on_result(True, result)


class AuditLog:
    """Per-message INFO lines of one logger, buffered on the reactor and written `delay`
    seconds after the first of a batch, or as soon as `most` are waiting, or on `flush`.

    Each line is the same LogRecord `logger.info` would have made at that moment (same
    fields, same time stamp); a plain `StreamHandler` (what `serve` installs) gets a batch as
    one write, any other handler gets each record as usual. `at_once` lines (logins) first
    write what is waiting, so the log keeps the order things happened in."""

    def __init__(
        self,
        logger: logging.Logger,
        reactor: IReactorTime,
        delay: float = 0.1,
        most: int = 256,
    ) -> None:
        self.logger = logger
        self.reactor = reactor
        self.delay = delay
        self.most = most
        self.pending: list[logging.LogRecord] = []
        self.timer: IDelayedCall | None = None

    def info(
        self,
        message: str,
        *args: object,
        at_once: bool = False,
        extra: dict[str, object] | None = None,
    ) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        record = logger.makeRecord(
            logger.name, logging.INFO, __file__, 0, message, args, None, extra=extra
        )
        if logger.disabled or not logger.filter(record):
            return
        self.pending.append(record)
        if at_once or len(self.pending) >= self.most:
            self.flush()
        elif self.timer is None:
            self.timer = self.reactor.callLater(self.delay, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            if self.timer.active():
                self.timer.cancel()
            self.timer = None
        records, self.pending = self.pending, []
        if not records:
            return
        for handler in _handlers_of(self.logger):
            if records[0].levelno < handler.level:
                continue
            if type(handler) is logging.StreamHandler:
                _write_batch(handler, records)
            else:
                for record in records:
                    handler.handle(record)


def _handlers_of(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers `logger.callHandlers` would call, in its order."""
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found.extend(current.handlers)
        if not current.propagate:
            break
        current = current.parent
    return found


def _write_batch(handler: logging.StreamHandler[Any], records: list[logging.LogRecord]) -> None:
    kept = [record for record in records if handler.filter(record)]
    if not kept:
        return
    try:
        text = "".join(handler.format(record) + handler.terminator for record in kept)
        with handler.lock or threading.Lock():
            handler.stream.write(text)
            handler.flush()
    except Exception:
        handler.handleError(kept[0])
