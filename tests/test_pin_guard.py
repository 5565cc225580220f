"""The wrong-PIN back-off the engine keeps in the store (issue 11, "PIN guessing"), on SQLite
and PostgreSQL: growth, cap, forgiveness, one view for every process and after a restart, and
no lock-out of the library's own terminals by someone guessing elsewhere."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.circulation.pin_backoff import PinBackoff
from gateway.circulation.pin_guard import PinSource, PinVerdict
from gateway.circulation.policy import Policy
from gateway.circulation.states import Channel
from gateway.config import ConfigError, settings_from_dict
from gateway.store import Store, open_store
from tests.circulation_support import build_library

RIGHT, WRONG, WAIT = PinVerdict.RIGHT, PinVerdict.WRONG, PinVerdict.BACKING_OFF
KIOSK = PinSource("127.0.0.1", "sc@127.0.0.1", Channel.SELF_CHECK)
ATTACKER = PinSource("127.0.0.2", "sc@127.0.0.2", Channel.SELF_CHECK)
OTHER_KIOSK = PinSource("127.0.0.4", "sc2@127.0.0.4", Channel.SELF_CHECK)
DESK = PinSource("127.0.0.5", "desk@127.0.0.5", Channel.DESK)


def with_backoff(engine: Engine, store: Store, clock: FixedClock, pins: PinBackoff) -> Engine:
    return Engine(store, replace(engine.policy, pins=pins), clock)


@pytest.fixture
def library(store: Store, tmp_path: Path) -> tuple[Engine, FixedClock]:
    engine, clock = build_library(store, tmp_path)
    return with_backoff(engine, store, clock, PinBackoff(threshold=3, cap_seconds=16)), clock


def verdicts(engine: Engine, pin: str, source: PinSource, times: int) -> list[PinVerdict]:
    return [engine.check_patron_pin("A", pin, source).verdict for _ in range(times)]


def test_the_back_off_doubles_after_the_threshold_up_to_the_cap(library) -> None:
    engine, clock = library
    assert verdicts(engine, "9", KIOSK, 3) == [WRONG] * 3
    expected_waits = [2, 4, 8, 16, 16]  # 2**(n - 3 + 1) seconds after the nth failure, ≤ cap
    for wait in expected_waits:
        refused = engine.check_patron_pin("A", "0000", KIOSK)  # even the right PIN waits
        assert refused.verdict is WAIT and refused.wait_seconds == wait
        clock.advance(seconds=wait - 1)
        assert engine.check_patron_pin("A", "0000", KIOSK).verdict is WAIT
        clock.advance(seconds=1)
        assert engine.check_patron_pin("A", "9", KIOSK).verdict is WRONG
    clock.advance(seconds=16)
    assert engine.check_patron_pin("A", "0000", KIOSK).verdict is RIGHT


def test_the_right_pin_clears_its_own_failures(library) -> None:
    engine, _clock = library
    assert verdicts(engine, "9", KIOSK, 2) == [WRONG, WRONG]
    assert engine.check_patron_pin("A", "0000", KIOSK).ok
    assert verdicts(engine, "9", KIOSK, 2) == [WRONG, WRONG]  # counts from 0 again
    assert engine.check_patron_pin("A", "0000", KIOSK).ok


def test_failures_are_forgiven_after_the_window(store: Store, library) -> None:
    engine, clock = library
    engine = with_backoff(engine, store, clock, replace(engine.policy.pins, forgiveness_seconds=60))
    assert verdicts(engine, "9", KIOSK, 3) == [WRONG] * 3
    assert engine.check_patron_pin("A", "0000", KIOSK).verdict is WAIT
    clock.advance(seconds=61)
    # Forgiven: two more wrong PINs are under the threshold again, not a longer back-off.
    assert verdicts(engine, "9", KIOSK, 2) == [WRONG, WRONG]
    assert engine.check_patron_pin("A", "0000", KIOSK).ok


def test_every_process_and_a_restart_see_the_same_failures(
    store: Store, store_url: str, library
) -> None:
    engine, clock = library
    assert verdicts(engine, "9", ATTACKER, 2) == [WRONG, WRONG]
    # A second process: its own store connection and engine, the same database.
    with open_store(store_url) as second_store:
        second = Engine(second_store, engine.policy, clock)
        assert second.check_patron_pin("A", "9", ATTACKER).verdict is WRONG  # the third
        assert second.check_patron_pin("A", "0000", ATTACKER).verdict is WAIT
    assert engine.check_patron_pin("A", "0000", ATTACKER).verdict is WAIT
    # A restart: nothing in memory survives, the store does.
    with open_store(store_url) as restarted_store:
        restarted = Engine(restarted_store, engine.policy, clock)
        refused = restarted.check_patron_pin("A", "0000", ATTACKER)
        assert refused.verdict is WAIT and refused.wait_seconds == 2


def test_guessing_elsewhere_never_locks_out_a_trusted_terminal(store: Store, library) -> None:
    engine, clock = library
    trusting = replace(engine.policy.pins, trusted_networks=("127.0.0.1/32",))
    engine = with_backoff(engine, store, clock, trusting)
    assert verdicts(engine, "9", ATTACKER, 3) == [WRONG] * 3
    for _ in range(5):  # the attacker keeps trying through its back-off
        assert engine.check_patron_pin("A", "1234", ATTACKER).verdict is WAIT
    # 127.0.0.1 is in the trusted network, the desk is always trusted: the right PIN works.
    assert engine.check_patron_pin("A", "0000", KIOSK).ok
    assert engine.check_patron_pin("A", "0000", DESK).ok
    # An untrusted kiosk shares the reader's back-off: guesses spread over addresses are slowed.
    assert engine.check_patron_pin("A", "0000", OTHER_KIOSK).verdict is WAIT
    # And the trusted reader's success does not lift the attacker's back-off.
    assert engine.check_patron_pin("A", "0000", ATTACKER).verdict is WAIT


def test_one_address_trying_many_readers_is_slowed(store: Store, library) -> None:
    engine, _clock = library
    with store.write() as tx:
        for n in range(8):
            tx.insert(
                "INSERT INTO patrons (barcode, name, pin_hash, category) VALUES (?, ?, '', ?)",
                (f"S{n}", f"读者{n}", "本科生"),
            )
    # Two wrong PINs per card stay under each reader's threshold of 3 ...
    for n in range(7):
        for _ in range(2):
            assert engine.check_patron_pin(f"S{n}", "1234", ATTACKER).verdict is WRONG
    assert engine.check_patron_pin("S7", "1234", ATTACKER).verdict is WRONG
    # ... but 15 failures reach the address's threshold (3 × 5): the sweep waits, on any card.
    assert engine.check_patron_pin("A", "0000", ATTACKER).verdict is WAIT
    assert engine.check_patron_pin("A", "0000", KIOSK).ok  # other addresses are not slowed


def test_an_unknown_reader_is_said_and_counts_nothing(store: Store, library) -> None:
    engine, _clock = library
    assert engine.check_patron_pin("nobody", "1", ATTACKER).verdict is PinVerdict.UNKNOWN_READER
    with store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM pin_failures") == 0


def test_the_back_off_is_configured_in_sip2_and_circulation() -> None:
    settings = settings_from_dict(
        {
            "sip2": {"pin_failures_before_backoff": 5, "pin_backoff_max_seconds": 60},
            "circulation": {
                "pin_forgiveness_seconds": 600,
                "pin_trusted_networks": ["10.1.0.0/16", "2001:db8::/32"],
            },
        }
    )
    pins = Policy.from_settings(settings).pins
    assert (pins.threshold, pins.cap_seconds, pins.forgiveness_seconds) == (5, 60, 600)
    assert pins.trusts("10.1.2.3") and pins.trusts("2001:db8::1")
    assert not pins.trusts("10.2.0.1") and not pins.trusts("not an address")
    defaults = Policy.from_settings(settings_from_dict({})).pins
    assert (defaults.threshold, defaults.cap_seconds, defaults.forgiveness_seconds) == (
        3,
        900,
        3600,
    )
    assert defaults.trusted_networks == ()
    with pytest.raises(ConfigError, match=r"circulation.pin_trusted_networks\[0\]"):
        settings_from_dict({"circulation": {"pin_trusted_networks": ["10.1.0.0/33"]}})
    with pytest.raises(ConfigError, match="circulation.pin_forgiveness_seconds"):
        settings_from_dict({"circulation": {"pin_forgiveness_seconds": 0}})
