"""Back-off on wrong reader PINs over SIP2, per reader and per terminal.

A lockout here is scoped to SIP2 and held in memory: a flood of wrong PINs from a kiosk slows
that kiosk and that reader's SIP2 checks, but never blocks the reader's card at the desk or in
any other channel (FOLIO's bug was locking the account itself).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

TERMINAL_FACTOR = 5  # a terminal may fail this many times more than one reader before back-off
PRUNE_ABOVE = 10_000  # entries kept before idle ones are dropped


@dataclass
class _Failures:
    count: int = 0
    blocked_until: float = 0.0
    last: float = 0.0


class PinGuard:
    def __init__(
        self,
        failures_before_backoff: int,
        max_backoff_seconds: float,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = failures_before_backoff
        self.max_backoff = max_backoff_seconds
        self.now = now
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, ...], _Failures] = {}

    def wait_seconds(self, reader: str, terminal: str) -> float:
        """How long until a PIN of this reader may be checked from this terminal (0: now)."""
        moment = self.now()
        with self._lock:
            waits = [
                entry.blocked_until - moment
                for key in (("reader", reader), ("terminal", terminal))
                if (entry := self._entries.get(key)) is not None
            ]
        return max([0.0, *waits])

    def record(self, reader: str, terminal: str, ok: bool) -> None:
        moment = self.now()
        with self._lock:
            if ok:
                self._entries.pop(("reader", reader), None)
                return
            for key, threshold in (
                (("reader", reader), self.threshold),
                (("terminal", terminal), self.threshold * TERMINAL_FACTOR),
            ):
                entry = self._entries.setdefault(key, _Failures())
                if moment - entry.last > self.max_backoff:
                    entry.count = 0  # failures long ago are forgiven: a window, not a lifetime
                entry.count += 1
                entry.last = moment
                if entry.count >= threshold:
                    delay = min(self.max_backoff, 2.0 ** (entry.count - threshold + 1))
                    entry.blocked_until = moment + delay
            if len(self._entries) > PRUNE_ABOVE:
                self._prune(moment)

    def _prune(self, moment: float) -> None:
        idle = [
            key
            for key, entry in self._entries.items()
            if entry.blocked_until < moment and moment - entry.last > self.max_backoff
        ]
        for key in idle:
            del self._entries[key]
