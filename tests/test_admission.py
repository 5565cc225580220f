"""The pieces every listener shares (pure, no reactor): the connection caps (in all, per
address, the pending budget, trusted networks) and the burst log, in its two kinds (a count
line when the window ends, with a reactor clock; the count carried to the next burst, without)."""

from __future__ import annotations

import logging

import pytest
from twisted.internet.task import Clock

from gateway.admission import Cap, Caps, ConnectionCaps, address_key, single_address
from gateway.burst_log import BurstLog
from gateway.networks import Networks

CAPS = Caps(
    connections=Cap(6, "max_connections"),
    per_address=Cap(3, "max_connections_per_address"),
    pending=Cap(4, "max_pending"),
    pending_per_address=Cap(2, "max_pending_per_address"),
    pending_means="not greeted",
)


def admit(caps: ConnectionCaps, host: str) -> str | None:
    """What a listener does with a new connection: ask, and count it in if let in."""
    refusal = caps.refusal(host)
    if refusal is None:
        caps.opened(host)
    return refusal


def test_address_key_counts_ipv4_hosts_and_ipv6_64s() -> None:
    assert address_key("127.0.0.2") == "127.0.0.2"
    assert address_key("2001:db8:1:2::5") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::5") != address_key("2001:db8:1:3::5")
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_key("/run/libgate.sock") == "/run/libgate.sock"
    assert single_address("2001:db8:1:2::5") == "2001:db8:1:2::5"


def test_pending_connections_have_their_own_budget_per_address_and_in_all() -> None:
    caps = ConnectionCaps(CAPS, Networks([]))
    assert admit(caps, "192.0.2.1") is None and admit(caps, "192.0.2.1") is None
    refusal = admit(caps, "192.0.2.1")
    assert refusal == "2 connections not greeted from 192.0.2.1 (max_pending_per_address)"
    caps.logged_in("192.0.2.1")  # one is let in: its address may open another
    assert admit(caps, "192.0.2.1") is None
    assert caps.pending == 2 and caps.pending_per_address == {"192.0.2.1": 2}
    assert admit(caps, "192.0.2.2") is None and admit(caps, "192.0.2.2") is None
    assert admit(caps, "192.0.2.3") == "4 connections not greeted (max_pending)"


def test_the_per_address_cap_counts_connections_let_in_too() -> None:
    caps = ConnectionCaps(CAPS, Networks([]))
    for _ in range(3):
        assert admit(caps, "192.0.2.1") is None
        caps.logged_in("192.0.2.1")
    refusal = admit(caps, "192.0.2.1") or ""
    assert "3 connections open from 192.0.2.1" in refusal
    assert "(max_connections_per_address)" in refusal
    # An IPv6 host counts with its /64, whatever address in it a connection comes from.
    assert admit(caps, "2001:db8::1") is None and admit(caps, "2001:db8::2") is None
    assert "2001:db8::/64 (max_pending_per_address)" in (admit(caps, "2001:db8::3") or "")


def test_trusted_networks_skip_the_per_address_and_pending_caps_not_the_global_one() -> None:
    caps = ConnectionCaps(CAPS, Networks(["10.1.0.0/16"]))
    assert all(admit(caps, "10.1.2.3") is None for _ in range(6))  # never greeted, all in
    assert caps.pending == 6 and caps.per_address == {"10.1.2.3": 6}
    assert admit(caps, "10.1.2.3") == "6 connections open, the most allowed (max_connections)"
    caps.closed("10.1.2.3", was_logged_in=False)
    # Everyone else still meets the pending budget the trusted ones filled.
    assert admit(caps, "192.0.2.9") == "5 connections not greeted (max_pending)"
    assert admit(caps, "10.1.9.9") is None


def test_counts_return_to_zero_through_every_path() -> None:
    caps = ConnectionCaps(CAPS, Networks([]))
    admit(caps, "192.0.2.1")
    admit(caps, "192.0.2.1")
    caps.logged_in("192.0.2.1")
    caps.logged_out("192.0.2.1")  # a failed login on a logged-in socket: pending again
    caps.logged_in("192.0.2.1")
    caps.closed("192.0.2.1", was_logged_in=True)
    caps.closed("192.0.2.1", was_logged_in=False)
    assert (caps.active, caps.pending) == (0, 0)
    assert caps.per_address == {} and caps.pending_per_address == {}


def test_without_a_pending_budget_only_the_connection_caps_apply() -> None:
    caps = ConnectionCaps(
        Caps(connections=Cap(3, "max_connections"), per_address=Cap(3, "per_address")),
        Networks([]),
    )
    assert all(admit(caps, "192.0.2.1") is None for _ in range(3))
    assert "(max_connections)" in (admit(caps, "192.0.2.2") or "")


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "libgate.test"]


def test_burst_log_with_a_clock_logs_the_first_then_one_count_per_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    burst = BurstLog(logging.getLogger("libgate.test"), "test refusals", 10, clock=clock)
    assert burst.note("refused %s", "a")
    assert not any(burst.note("refused %s", "b") for _ in range(499))
    for _ in range(25):  # a flood going on for 25 s, 20 events a second
        clock.advance(1)
        for _ in range(20):
            burst.note("refused %s", "c")
    clock.advance(10)  # quiet: the last window's count, and the burst ends
    clock.advance(10)
    assert messages(caplog) == [
        "refused a; more are counted, not logged, for 10 s",
        "test refusals: 679 more in the last 10 s",  # 499 + the first 9 s of the flood
        "test refusals: 200 more in the last 10 s",
        "test refusals: 120 more in the last 10 s",
    ]
    assert burst.note("refused %s", "d")  # a new burst opens with a full line
    assert messages(caplog)[-1] == "refused d; more are counted, not logged, for 10 s"
    assert not burst.note("refused %s", "e")
    burst.stop()  # the listener stops: what was counted is logged, no timer is left
    assert messages(caplog)[-1] == "test refusals: 1 more before the listener stopped"
    assert clock.getDelayedCalls() == []


def test_burst_log_without_a_clock_carries_the_count_to_the_next_burst(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    burst = BurstLog(logging.getLogger("libgate.test"), "test refusals", 10, now=lambda: now[0])
    assert burst.note("refused %s", "a")
    assert not any(burst.note("refused %s", "b") for _ in range(5))
    now[0] = 11
    assert burst.note("refused %s", "c")
    assert not burst.note("refused %s", "d")
    assert messages(caplog) == [
        "refused a; more are counted, not logged, for 10 s",
        "refused c (5 more in the previous burst); more are counted, not logged, for 10 s",
    ]
    assert burst.suppressed == 1
