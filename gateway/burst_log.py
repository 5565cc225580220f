"""One log line per burst of like events (connections refused, requests answered at once, slow
clients closed), not one per event: a flood of 10,000 sockets must not become 10,000 log lines,
nor fill the disk of the server it attacks. Every listener (SIP2, SRU, Z39.50) and the
process's descriptor guard log their refusals through this one class."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class BurstLog:
    """The first event of a burst is logged in full; the next ones within `window` seconds are
    only counted.

    Given a reactor `clock`, the count is logged when its window ends ("N more in the last
    10 s"): a flood that goes on writes one count line per window, and one quiet window ends
    the burst. Without a clock (the process-wide descriptor guard, which is built before any
    reactor), nothing runs when a window ends: the count rides on the next burst's first line
    instead. Either way the count is never lost, and `stop` logs what is still counted.

    `now` stands in for the clock's time in tests of the clock-less kind; a `task.Clock` tests
    the other kind without a running reactor."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        window: float = 10.0,
        *,
        clock: IReactorTime | None = None,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.logger = logger
        self.what = what  # names the burst in its count lines, e.g. "sip2 connections refused"
        self.window = window
        self.clock = clock
        self.now = now or (clock.seconds if clock is not None else time.monotonic)
        self.suppressed = 0  # events counted and not logged yet
        self._window_ends: float | None = None
        self._timer: IDelayedCall | None = None

    def note(self, text: str, *args: object) -> bool:
        """Log `text % args` if it opens a burst (True), else count it (False)."""
        now = self.now()
        if self._window_ends is not None and now < self._window_ends:
            self.suppressed += 1
            return False
        earlier, self.suppressed = self.suppressed, 0
        suffix = f" ({earlier} more in the previous burst)" if earlier else ""
        self.logger.warning(
            text + "%s; more are counted, not logged, for %g s", *args, suffix, self.window
        )
        self._window_ends = now + self.window
        self._cancel()
        if self.clock is not None:
            self._timer = self.clock.callLater(self.window, self._window_over)
        return True

    def stop(self) -> None:
        """Log the count not logged yet and drop the timer: the listener is stopping."""
        self._cancel()
        self._window_ends = None
        self._log_count("before the listener stopped")

    def _window_over(self) -> None:
        self._timer = None
        if not self.suppressed:
            self._window_ends = None  # a quiet window: the burst is over
            return
        self._log_count(f"in the last {self.window:g} s")
        # Still coming: the burst goes on, counted silently for another window.
        assert self.clock is not None  # the timer runs only with a clock
        self._window_ends = self.now() + self.window
        self._timer = self.clock.callLater(self.window, self._window_over)

    def _log_count(self, when: str) -> None:
        if self.suppressed:
            self.logger.warning("%s: %d more %s", self.what, self.suppressed, when)
            self.suppressed = 0

    def _cancel(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


__all__ = ["BurstLog"]
