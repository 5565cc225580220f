"""Failed logins per address and per account, kept in the store so every process shares them
(issue 11, "login throttling"): terminal passwords on SIP2 now, the readers' portal next.

After `failures_before_delay` counted failures, each further try must wait a delay that doubles
with every failure (1, 2, 4 … s) up to `delay_max_seconds`; a try inside the delay is refused
without a password check. A count is forgiven once it has been quiet for twice the longest
delay it could impose. Two counters decide:

- (address): one address's failures over all accounts. Always applies.
- (account): one account's failures from every untrusted address. A trusted address (a
  library's own kiosk network) neither adds to it nor waits for it, so guessing from elsewhere
  can never keep the library's kiosks out.

A try from an untrusted address is counted as a failure before the password is checked (in
one short write transaction that first decides whether it may run at all), and given back when
the password was right, with the earlier failures from the same address: concurrent tries, in
any process, each see the ones before them, as the PIN guard does. A try from a trusted address
is counted only after a wrong password, so a room of kiosks logging in at once is never taken
for a burst of failures. The check itself runs outside the transaction. A try refused because
of a delay writes nothing.

The front-end keeps `Delays`, a memory of the delays the store imposed, so that a flood of
tries inside a known delay is refused on the spot without a thread or a query.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, NamedTuple, TypeVar

from gateway.networks import Networks
from gateway.store import Store, Transaction

Checked = TypeVar("Checked")
# Rows of one service quiet longer than this many forgiveness windows are deleted, now and then.
PRUNE_EVERY = 256  # counted tries between two prunes


class Counter(StrEnum):
    ADDRESS = "address"
    ACCOUNT = "account"


@dataclass(frozen=True)
class LoginBackoff:
    """`[sip2] login_failures_before_delay` and `login_delay_max_seconds`."""

    failures_before_delay: int = 5
    delay_max_seconds: float = 60.0

    def delay_after(self, failures: int) -> float:
        """How long after the last of `failures` failures the next try must wait."""
        free = max(1, self.failures_before_delay)
        if failures < free:
            return 0.0
        exponent = min(failures - free, 30)  # 2**30 s is past any cap
        return float(min(self.delay_max_seconds, 2**exponent))

    @property
    def forgiveness_seconds(self) -> float:
        """Quiet time after which a count no longer counts: twice the cap."""
        return 2 * max(1.0, self.delay_max_seconds)


class Throttled(NamedTuple):
    """A try refused unchecked: `wait` seconds until the next may be checked, and the counter
    that imposed it (the address's, or the account's)."""

    wait: float
    counter: Counter


@dataclass(frozen=True)
class Verdict(Generic[Checked]):
    """What a try came to: the checked result (None: wrong password), or a refusal."""

    checked: Checked | None = None
    throttled: Throttled | None = None


class LoginFailures:
    """The store-backed throttle of one service's logins ("sip2", "web")."""

    def __init__(
        self,
        store: Store,
        service: str,
        backoff: LoginBackoff,
        trusted: Networks,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.service = service
        self.backoff = backoff
        self.trusted = trusted
        self.now = now  # wall-clock seconds: shared by processes, kept over restarts
        self._tries = 0

    def attempt(
        self, address: str, account: str, check: Callable[[], Checked | None]
    ) -> Verdict[Checked]:
        """Run `check` (the password check: a result, or None when wrong) unless the address
        or the account is inside a delay; count a failure, or forgive this address's."""
        counters = self._counters(address, account)
        with self.store.read() as tx:  # a refusal inside a delay takes no write lock
            throttled = self._throttled(tx, counters, self.now())
        if throttled is not None:
            return Verdict(throttled=throttled)

        if address in self.trusted:
            return self._attempt_trusted(counters, check)
        with self.store.write() as tx:
            now = self.now()
            self._lock(tx, counters)
            throttled = self._throttled(tx, counters, now)
            own = self._failures(tx, counters[0], now)[0]  # this address's, before this try
            if throttled is None:
                for kind, key in counters:
                    self._count(tx, kind, key, now)
        if throttled is not None:
            return Verdict(throttled=throttled)
        self._tries += 1
        checked = check()
        if checked is None:
            return Verdict()
        with self.store.write() as tx:
            # This address's failures are forgiven, and what they (and this try) added to the
            # account's count is given back; the account's failures from other addresses stay
            # counted (a right password here says nothing about a guesser elsewhere).
            for kind, key in counters:
                self._take_back(tx, kind, key, own + 1 if kind is Counter.ACCOUNT else None)
            if self._tries % PRUNE_EVERY == 0:
                self._prune(tx, self.now())
        return Verdict(checked=checked)

    def _attempt_trusted(
        self, counters: list[tuple[Counter, str]], check: Callable[[], Checked | None]
    ) -> Verdict[Checked]:
        """A trusted address (the library's kiosk network) is counted after a wrong password,
        not before the check: its kiosks log in all at once after a restart, and counting each
        try first made the good logins in flight look like a burst of failures (50 kiosks
        behind one address were refused). Its own address counter still slows guessing."""
        self._tries += 1
        checked = check()
        with self.store.write() as tx:
            if checked is None:
                for kind, key in counters:
                    self._count(tx, kind, key, self.now())
            else:
                for kind, key in counters:
                    self._take_back(tx, kind, key, None)
            if self._tries % PRUNE_EVERY == 0:
                self._prune(tx, self.now())
        return Verdict(checked=checked)

    def delay(self, address: str, account: str) -> Throttled | None:
        """The delay a try would meet now (None: it would be checked); reads only."""
        with self.store.read() as tx:
            return self._throttled(tx, self._counters(address, account), self.now())

    def _counters(self, address: str, account: str) -> list[tuple[Counter, str]]:
        counters = [(Counter.ADDRESS, address or "?")]  # an unreadable address is one address
        if address not in self.trusted:
            counters.append((Counter.ACCOUNT, account))
        return counters

    def _lock(self, tx: Transaction, counters: list[tuple[Counter, str]]) -> None:
        """Lock the counters' rows (made first, empty, if need be), always address before
        account: concurrent tries on PostgreSQL then decide one after another, as SQLite's one
        writer already makes them. The order keeps two tries from waiting on each other."""
        if not tx.for_update:
            return
        for kind, key in counters:
            params = (self.service, str(kind), key)
            tx.execute(
                "INSERT INTO login_failures (service, kind, login_key, failures, last_failure)"
                " VALUES (?, ?, ?, 0, 0) ON CONFLICT (service, kind, login_key) DO NOTHING",
                params,
            )
            tx.execute(
                "SELECT failures FROM login_failures"
                f" WHERE service = ? AND kind = ? AND login_key = ?{tx.for_update}",
                params,
            )

    def _throttled(
        self, tx: Transaction, counters: list[tuple[Counter, str]], now: float
    ) -> Throttled | None:
        worst: Throttled | None = None
        for counter in counters:
            failures, last = self._failures(tx, counter, now)
            wait = last + self.backoff.delay_after(failures) - now if failures else 0.0
            if wait > 0 and (worst is None or wait > worst.wait):
                worst = Throttled(wait, counter[0])
        return worst

    def _failures(
        self, tx: Transaction, counter: tuple[Counter, str], now: float
    ) -> tuple[int, float]:
        """The failures a counter still holds (0 once forgiven) and the last one's time."""
        row = tx.one(
            "SELECT failures, last_failure FROM login_failures"
            " WHERE service = ? AND kind = ? AND login_key = ?",
            (self.service, str(counter[0]), counter[1]),
        )
        if row is None:
            return 0, 0.0
        failures, last = int(row[0]), float(row[1])
        if now - last >= self.backoff.forgiveness_seconds:
            return 0, 0.0
        return failures, last

    def _count(self, tx: Transaction, kind: Counter, key: str, now: float) -> None:
        forgiven_before = now - self.backoff.forgiveness_seconds
        tx.execute(
            "INSERT INTO login_failures (service, kind, login_key, failures, last_failure)"
            " VALUES (?, ?, ?, 1, ?)"
            " ON CONFLICT (service, kind, login_key) DO UPDATE SET"
            " failures = CASE WHEN login_failures.last_failure < ? THEN 1"
            " ELSE login_failures.failures + 1 END,"
            " last_failure = excluded.last_failure",
            (self.service, str(kind), key, now, forgiven_before),
        )

    def _take_back(self, tx: Transaction, kind: Counter, key: str, taken: int | None) -> None:
        """Take `taken` failures off a counter (None: all of them)."""
        params = (self.service, str(kind), key)
        if taken is None:
            tx.execute(
                "DELETE FROM login_failures WHERE service = ? AND kind = ? AND login_key = ?",
                params,
            )
            return
        tx.execute(
            "UPDATE login_failures SET failures = CASE WHEN failures > ? THEN failures - ?"
            " ELSE 0 END WHERE service = ? AND kind = ? AND login_key = ?",
            (taken, taken, *params),
        )
        tx.execute(
            "DELETE FROM login_failures"
            " WHERE service = ? AND kind = ? AND login_key = ? AND failures = 0",
            params,
        )

    def _prune(self, tx: Transaction, now: float) -> None:
        """Forgiven rows go: a spray of addresses leaves no lasting weight in the store."""
        tx.execute(
            "DELETE FROM login_failures WHERE service = ? AND last_failure < ?",
            (self.service, now - self.backoff.forgiveness_seconds),
        )


class Delays:
    """The delays the store imposed, remembered by one front-end in memory (monotonic time):
    tries inside a known delay are refused on the spot, so a flood of them costs neither a
    thread nor a query. The store stays the authority; this only ever refuses less early."""

    LIMIT = 100_000  # remembered delays; a spray of addresses drops the oldest, not the memory

    def __init__(self, trusted: Networks, now: Callable[[], float] = time.monotonic) -> None:
        self.trusted = trusted
        self.now = now
        self.until: dict[tuple[Counter, str], float] = {}

    def remember(self, address: str, account: str, throttled: Throttled) -> None:
        key = address if throttled.counter is Counter.ADDRESS else account
        if len(self.until) >= self.LIMIT:
            for stale in sorted(self.until, key=self.until.__getitem__)[: self.LIMIT // 2]:
                del self.until[stale]
        self.until[(throttled.counter, key)] = self.now() + throttled.wait

    def wait(self, address: str, account: str) -> float:
        """Seconds left of a remembered delay for this try (0: ask the store)."""
        now = self.now()
        keys = [(Counter.ADDRESS, address or "?")]
        if address not in self.trusted:
            keys.append((Counter.ACCOUNT, account))
        waits = [0.0]
        for key in keys:
            until = self.until.get(key)
            if until is None:
                continue
            if until <= now:
                del self.until[key]
            else:
                waits.append(until - now)
        return max(waits)

    def forget(self, address: str) -> None:
        """A good login from `address`: its own delay is over."""
        self.until.pop((Counter.ADDRESS, address or "?"), None)
