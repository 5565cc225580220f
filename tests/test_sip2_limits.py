"""SIP2 limits over an in-memory transport: the per-address and pre-login connection caps and
trusted networks, the bounded auth and engine queues (answered at once when full), the login
throttle, the process-wide descriptor guard, and one log line per refused burst."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.python.threadpool import ThreadPool

from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.config import ConfigError, Sip2Account, Sip2Settings, settings_from_dict
from gateway.login_failures import Verdict
from gateway.services import DescriptorGuard
from gateway.store import Store, open_store
from gateway.store.migrate import migrate
from sip2.handlers import Handlers
from sip2.server import Result, Sip2Factory, Sip2Protocol
from tests.circulation_support import build_library
from tests.sip2_support import NOW

LOGIN = b"9300CNsc|COpw|\r"
ITEM = f"17{NOW}AOMAIN|ABO1|\r".encode()


@pytest.fixture
def library(tmp_path: Path) -> Iterator[tuple[Engine, FixedClock]]:
    store: Store = open_store(f"sqlite:///{tmp_path / 'sip2.db'}")
    migrate(store)
    yield build_library(store, tmp_path)
    store.close()


class HeldFactory(Sip2Factory):
    """Engine calls run at once unless `hold_engine`/`hold_auth` is set: then they wait in
    `held` (a stand-in for a busy pool) until the test fires them."""

    hold_engine = False
    hold_auth = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: list[defer.Deferred[Any]] = []

    def call_in_thread(
        self, function: Callable[..., Result], *args: object
    ) -> defer.Deferred[Result]:
        if self.hold_engine:
            waiting: defer.Deferred[Result] = defer.Deferred()
            self.held.append(waiting)
            return waiting
        return defer.maybeDeferred(function, *args)

    def call_auth(self, function: Callable[..., Result], *args: object) -> defer.Deferred[Result]:
        if self.hold_auth:
            waiting: defer.Deferred[Result] = defer.Deferred()
            self.held.append(waiting)
            return waiting
        return defer.maybeDeferred(function, *args)


def make_factory(library: tuple[Engine, FixedClock], **settings: Any) -> HeldFactory:
    engine, clock = library
    sip2 = Sip2Settings(accounts=(Sip2Account(login="sc", password="pw"),), **settings)
    handlers = Handlers(engine, clock, UTC)
    return HeldFactory(sip2, handlers, clock, pool=ThreadPool(), reactor=task.Clock())


def connect(factory: Sip2Factory, host: str) -> tuple[Sip2Protocol, StringTransport]:
    protocol = factory.buildProtocol(IPv4Address("TCP", host, 40000))
    assert isinstance(protocol, Sip2Protocol)
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40000))
    protocol.makeConnection(transport)
    return protocol, transport


def test_silent_sockets_from_one_address_cannot_keep_a_kiosk_out(library: Any) -> None:
    factory = make_factory(library, max_unauthenticated_per_address=3, max_unauthenticated=5)
    silent = [connect(factory, "127.0.0.2") for _ in range(10)]
    assert [t.disconnecting for _, t in silent] == [False] * 3 + [True] * 7
    kiosk, transport = connect(factory, "127.0.0.1")
    assert not transport.disconnecting
    kiosk.dataReceived(LOGIN)
    assert transport.value() == b"941\r"
    assert factory.caps.pending == 3 and factory.active == 4
    # Logged in, the kiosk no longer uses the pre-login budget: another one fits.
    assert not connect(factory, "127.0.0.1")[1].disconnecting
    silent[0][0].connectionLost()
    assert not connect(factory, "127.0.0.2")[1].disconnecting  # its place came free


def test_logged_in_kiosks_keep_their_places_when_the_pre_login_budget_is_full(
    library: Any,
) -> None:
    factory = make_factory(
        library, max_connections=8, max_unauthenticated=2, max_unauthenticated_per_address=2
    )
    kiosks = []
    for n in (10, 11, 12):  # each logs in as it connects, as kiosks do
        kiosks.append(connect(factory, f"127.0.0.{n}"))
        kiosks[-1][0].dataReceived(LOGIN)
    for host in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
        connect(factory, host)
    assert factory.caps.pending == 2 and factory.active == 5
    protocol, transport = kiosks[0]
    protocol.dataReceived(ITEM)
    assert transport.value().startswith(b"941\r18") and not transport.disconnecting


def test_the_per_address_cap_counts_logged_in_sockets_too(library: Any) -> None:
    factory = make_factory(library, max_connections_per_address=2)
    for _ in range(2):
        protocol, _transport = connect(factory, "127.0.0.2")
        protocol.dataReceived(LOGIN)
    assert connect(factory, "127.0.0.2")[1].disconnecting
    assert not connect(factory, "127.0.0.3")[1].disconnecting


def test_trusted_networks_skip_the_per_address_and_pre_login_caps(library: Any) -> None:
    factory = make_factory(
        library,
        max_connections=20,
        max_connections_per_address=2,
        max_unauthenticated_per_address=1,
        trusted_networks=("10.1.0.0/16",),
    )
    assert not any(connect(factory, "10.1.2.3")[1].disconnecting for _ in range(6))
    assert connect(factory, "10.2.0.1")[1].disconnecting is False
    assert connect(factory, "10.2.0.1")[1].disconnecting is True


def test_refused_connections_log_one_line_per_burst(
    library: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="libgate.sip2")
    factory = make_factory(library, max_unauthenticated_per_address=1)
    for _ in range(200):
        connect(factory, "127.0.0.2")
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert "max_unauthenticated_per_address" in refusals[0].getMessage()
    assert factory.refusals.suppressed == 198


def test_a_full_auth_queue_answers_a_login_at_once(library: Any) -> None:
    factory = make_factory(library, max_queued_logins=3, max_queued_logins_per_address=2)
    factory.hold_auth = True
    flood = [connect(factory, "127.0.0.2") for _ in range(3)]
    for protocol, _ in flood:
        protocol.dataReceived(b"9300CNsc|COguess|\r")
    # Two from that address wait; its third is answered 940 at once, unqueued.
    assert [t.value() for _, t in flood] == [b"", b"", b"940\r"]
    assert factory.login_queue.waiting == 2
    kiosk, transport = connect(factory, "127.0.0.1")
    kiosk.dataReceived(LOGIN)
    assert factory.login_queue.waiting == 3 and transport.value() == b""
    late, late_transport = connect(factory, "127.0.0.3")
    late.dataReceived(LOGIN)
    assert late_transport.value() == b"940\r"  # the global bound
    held = factory.held
    factory.hold_auth = False
    held[-1].callback(Verdict(checked=factory.accounts.authenticate("sc", "pw", "127.0.0.1")))
    assert transport.value() == b"941\r" and factory.login_queue.waiting == 2


def test_a_full_engine_queue_answers_96_at_once(library: Any) -> None:
    factory = make_factory(library, max_queued_requests=2)
    terminals = [connect(factory, f"127.0.0.{n}") for n in (1, 2, 3)]
    for protocol, _ in terminals:
        protocol.dataReceived(LOGIN)
    factory.hold_engine = True
    for protocol, transport in terminals:
        transport.clear()
        protocol.dataReceived(ITEM)
    assert [t.value() for _, t in terminals] == [b"", b"", b"96AZFEF6\r"]
    assert factory.engine_waiting == 2
    engine, _clock = library
    for waiting in factory.held:
        waiting.errback(RuntimeError("gone"))  # answered 96 by the failure path
    assert factory.engine_waiting == 0
    factory.hold_engine = False
    protocol, transport = terminals[2]
    transport.clear()
    protocol.dataReceived(ITEM)
    assert transport.value().startswith(b"18")


def test_a_throttled_login_is_refused_without_a_check_and_logged_once(
    library: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="libgate.sip2")
    factory = make_factory(library, login_failures_before_delay=2, max_bad_logins=100)
    checks = []
    authenticate = factory.accounts.authenticate

    def counting(*args: Any) -> Any:
        checks.append(args)
        return authenticate(*args)

    monkeypatch.setattr(factory.accounts, "authenticate", counting)
    protocol, transport = connect(factory, "127.0.0.2")
    for attempt in range(20):
        protocol.dataReceived(f"9300CNsc|COguess{attempt}|\r".encode())
    assert transport.value() == b"940\r" * 20
    assert len(checks) == 2
    throttled = [r for r in caplog.records if "login throttled" in r.getMessage()]
    assert len(throttled) == 1
    kiosk, kiosk_transport = connect(factory, "127.0.0.1")
    kiosk.dataReceived(b"9300CNother|COx|\r")  # another account from another address
    assert len(checks) == 3


def test_descriptor_guard_refuses_near_the_limit_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    open_now = [0]
    guard = DescriptorGuard(margin=10, count=lambda: open_now[0])
    limit = guard.limit()
    open_now[0] = limit - 11
    assert not guard.exhausted("sip2", "127.0.0.2")
    open_now[0] = limit - 10
    assert all(guard.exhausted("sip2", "127.0.0.2") for _ in range(50))
    assert len([r for r in caplog.records if "file descriptors" in r.getMessage()]) == 1


def test_the_new_keys_are_checked() -> None:
    settings = settings_from_dict({"sip2": {"trusted_networks": ["10.0.0.0/8"]}})
    assert settings.sip2.trusted_networks == ("10.0.0.0/8",)
    assert settings.sip2.max_connections == 256 and settings.sip2.max_unauthenticated == 32
    with pytest.raises(ConfigError, match="trusted_networks"):
        settings_from_dict({"sip2": {"trusted_networks": ["kiosks"]}})
    with pytest.raises(ConfigError, match="max_queued_logins"):
        settings_from_dict({"sip2": {"max_queued_logins": 0}})
    with pytest.raises(ConfigError, match="descriptor_margin"):
        settings_from_dict({"service": {"descriptor_margin": 0}})


def test_a_failed_login_on_a_logged_in_socket_counts_it_as_pre_login_again(library: Any) -> None:
    factory = make_factory(library)
    protocol, _transport = connect(factory, "127.0.0.2")
    protocol.dataReceived(LOGIN)
    assert factory.caps.pending == 0 and factory.active == 1
    protocol.dataReceived(b"9300CNsc|COwrong|\r")
    assert factory.caps.pending_per_address == {"127.0.0.2": 1}
    protocol.connectionLost()
    assert factory.caps.pending == 0 and factory.active == 0
    assert factory.caps.per_address == {} and factory.caps.pending_per_address == {}
