"""The login throttle kept in the store (gateway/login_failures.py), on SQLite and PostgreSQL:
the doubling delay and its cap, forgiveness, trusted networks, and counts shared by two
processes' throttles and kept over a restart."""

from __future__ import annotations

import threading

from gateway.login_failures import (
    Counter,
    Delays,
    LoginBackoff,
    LoginFailures,
    Throttled,
    Verdict,
)
from gateway.networks import Networks
from gateway.store import Store

BACKOFF = LoginBackoff(failures_before_delay=3, delay_max_seconds=8)
TRUSTED = Networks(("10.0.0.0/8",))
ATTACKER = "192.0.2.1"


class Clock:
    def __init__(self) -> None:
        self.seconds = 1_000_000.0

    def __call__(self) -> float:
        return self.seconds


def throttle(store: Store, clock: Clock, service: str = "sip2") -> LoginFailures:
    return LoginFailures(store, service, BACKOFF, TRUSTED, now=clock)


def wrong() -> None:
    return None


def right() -> str:
    return "kiosk"


def waits_after_failures(logins: LoginFailures, clock: Clock, tries: int) -> list[float]:
    """Fail `tries` times, each as soon as allowed; the delay seen after each failure."""
    waits = []
    for _ in range(tries):
        delay = logins.delay(ATTACKER, "kiosk")
        if delay is not None:
            clock.seconds += delay.wait
        assert logins.attempt(ATTACKER, "kiosk", wrong) == Verdict()
        after = logins.delay(ATTACKER, "kiosk")
        waits.append(0.0 if after is None else after.wait)
    return waits


def test_the_delay_doubles_up_to_the_cap_then_is_forgiven(store: Store) -> None:
    clock = Clock()
    logins = throttle(store, clock)
    assert waits_after_failures(logins, clock, 8) == [0, 0, 1, 2, 4, 8, 8, 8]
    checks: list[str] = []

    def counted() -> None:
        checks.append("checked")

    refused: Verdict[None] = logins.attempt(ATTACKER, "kiosk", counted)
    assert refused.throttled is not None and refused.throttled.wait == 8 and checks == []
    clock.seconds += 5
    delay = logins.delay(ATTACKER, "kiosk")
    assert delay is not None and delay.wait == 3
    clock.seconds += 2 * 8  # quiet for twice the cap: forgiven
    assert logins.delay(ATTACKER, "kiosk") is None
    assert logins.attempt(ATTACKER, "kiosk", right) == Verdict(checked="kiosk")


def test_the_account_waits_for_untrusted_addresses_never_for_trusted_ones(store: Store) -> None:
    clock = Clock()
    logins = throttle(store, clock)
    waits_after_failures(logins, clock, 6)
    elsewhere = logins.delay("192.0.2.99", "kiosk")
    assert elsewhere is not None and elsewhere.counter is Counter.ACCOUNT
    assert logins.delay("192.0.2.99", "other-kiosk") is None  # another account, another address
    assert logins.delay("10.1.1.1", "kiosk") is None  # the library's own network
    assert logins.attempt("10.1.1.1", "kiosk", right) == Verdict(checked="kiosk")
    # The good login did not forgive the guesser: its address and the account still wait.
    assert logins.delay(ATTACKER, "kiosk") is not None
    assert logins.delay("192.0.2.99", "kiosk") is not None
    # A trusted address's own failures count on its address only.
    for _ in range(3):
        logins.attempt("10.2.2.2", "kiosk-2", wrong)
    assert logins.delay("10.2.2.2", "kiosk-2") is not None
    assert logins.delay("192.0.2.50", "kiosk-2") is None


def test_a_good_login_forgives_its_own_address(store: Store) -> None:
    clock = Clock()
    logins = throttle(store, clock)
    for _ in range(2):
        logins.attempt("192.0.2.7", "kiosk", wrong)
    assert logins.attempt("192.0.2.7", "kiosk", right).checked == "kiosk"
    for _ in range(2):  # two more mistakes: still below the three free failures
        logins.attempt("192.0.2.7", "kiosk", wrong)
    assert logins.delay("192.0.2.7", "kiosk") is None


def test_two_processes_share_the_counts_and_a_restart_keeps_them(store: Store) -> None:
    clock = Clock()
    first, second = throttle(store, clock), throttle(store, clock)
    first.attempt(ATTACKER, "kiosk", wrong)
    second.attempt(ATTACKER, "kiosk", wrong)
    first.attempt(ATTACKER, "kiosk", wrong)
    for logins in (first, second, throttle(store, clock)):  # the third: after a restart
        delay = logins.delay(ATTACKER, "kiosk")
        assert delay is not None and delay.wait == 1
    assert throttle(store, clock, service="web").delay(ATTACKER, "kiosk") is None


def test_concurrent_tries_each_see_the_ones_before_them(store: Store) -> None:
    """Eight threads guess at once: each try is counted before its check, so no more than the
    free failures run unchecked, whoever wins the races."""
    clock = Clock()
    logins = throttle(store, clock)
    checked: list[int] = []
    lock = threading.Lock()
    gate = threading.Barrier(8)

    def guess() -> None:
        def check() -> None:
            with lock:
                checked.append(1)

        gate.wait()
        logins.attempt(ATTACKER, "kiosk", check)

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(checked) == BACKOFF.failures_before_delay


def test_kiosks_behind_one_trusted_address_log_in_at_once(store: Store) -> None:
    """Twelve kiosks on the library's network log in together (after a restart, say), each
    check slow enough that all are in flight at once: every one gets in. Counted before their
    checks, the good logins in flight had looked like failures and the last were refused."""
    clock = Clock()
    logins = throttle(store, clock)
    gate = threading.Barrier(12)
    in_check = threading.Barrier(12, timeout=20)
    verdicts: list[Verdict[str]] = []
    lock = threading.Lock()

    def kiosk(number: int) -> None:
        def check() -> str:
            in_check.wait()  # every kiosk is inside its password check at the same time
            return f"kiosk-{number}"

        gate.wait()
        verdict = logins.attempt("10.0.0.5", f"kiosk-{number}", check)
        with lock:
            verdicts.append(verdict)

    threads = [threading.Thread(target=kiosk, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(v.checked or "refused" for v in verdicts) == sorted(
        f"kiosk-{n}" for n in range(12)
    )
    # Wrong passwords from that address are still counted, after their checks.
    for _ in range(BACKOFF.failures_before_delay):
        logins.attempt("10.0.0.5", "kiosk-1", wrong)
    assert logins.delay("10.0.0.5", "kiosk-1") is not None


def test_remembered_delays_refuse_without_asking_and_end() -> None:
    now = [0.0]
    delays = Delays(TRUSTED, now=lambda: now[0])
    delays.remember(ATTACKER, "kiosk", Throttled(4.0, Counter.ACCOUNT))
    assert delays.wait("192.0.2.99", "kiosk") == 4.0  # the account, from anywhere untrusted
    assert delays.wait("10.1.1.1", "kiosk") == 0.0  # never for a trusted address
    delays.remember(ATTACKER, "kiosk", Throttled(2.0, Counter.ADDRESS))
    assert delays.wait(ATTACKER, "someone-else") == 2.0
    now[0] = 2.5
    assert delays.wait(ATTACKER, "someone-else") == 0.0
    delays.forget(ATTACKER)
    assert delays.wait("192.0.2.99", "kiosk") == 1.5
