"""The Twisted adapter over an in-memory transport and a fake clock: one write per response,
pipelined frames in order, timeouts (login, idle, slowloris), oversize frames, connection
limits, and a failing handler answered with 96 instead of a dropped line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.python.threadpool import ThreadPool

from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.config import Sip2Account, Sip2Settings
from gateway.store import Store, open_store
from gateway.store.migrate import migrate
from sip2 import codec
from sip2.handlers import Handlers
from sip2.server import PARTIAL_FRAME_SECONDS, Result, Sip2Factory
from sip2.spec import ANSWERED_BY
from tests.circulation_support import build_library
from tests.sip2_support import NOW

Library = tuple[Engine, FixedClock]

LOGIN = b"9300CNsc|COpw|\r"
STATUS = b"9900802.00\r"


class RecordingTransport(StringTransport):
    def __init__(self) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        super().write(data)


@pytest.fixture
def library(tmp_path: Path) -> Iterator[tuple[Engine, FixedClock]]:
    store: Store = open_store(f"sqlite:///{tmp_path / 'sip2.db'}")
    migrate(store)
    yield build_library(store, tmp_path)
    store.close()


def make_factory(
    library: tuple[Engine, FixedClock], **settings: Any
) -> tuple[Sip2Factory, task.Clock]:
    engine, clock = library
    from datetime import UTC

    reactor = task.Clock()
    sip2 = Sip2Settings(
        accounts=(Sip2Account(login="sc", password="pw"),),
        idle_timeout=settings.pop("idle_timeout", 600),
        login_timeout=settings.pop("login_timeout", 30),
        max_frame_bytes=settings.pop("max_frame_bytes", 1024),
        max_connections=settings.pop("max_connections", 4),
    )
    handlers = Handlers(engine, clock, UTC)
    factory = DirectFactory(sip2, handlers, clock, pool=ThreadPool(), reactor=reactor)
    return factory, reactor


class DirectFactory(Sip2Factory):
    """Engine calls run at once in the test's thread: its thread pool is never started."""

    def call_in_thread(
        self, function: Callable[..., Result], *args: object
    ) -> defer.Deferred[Result]:
        return defer.maybeDeferred(function, *args)


def connect(factory: Sip2Factory) -> tuple[Any, RecordingTransport]:
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    assert protocol is not None
    transport = RecordingTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def test_each_response_is_one_write_and_pipelined_frames_stay_in_order(library: Library) -> None:
    factory, _reactor = make_factory(library)
    protocol, transport = connect(factory)
    item = f"17{NOW}AOMAIN|ABO1|\r".encode()
    protocol.dataReceived(LOGIN + STATUS + item)
    assert [w[:2] for w in transport.writes] == [b"94", b"98", b"18"]
    assert all(w.endswith(b"\r") and w.count(b"\r") == 1 for w in transport.writes)
    protocol.dataReceived(b"17" + NOW.encode() + b"AOMAIN|")
    assert len(transport.writes) == 3  # half a frame: nothing yet
    protocol.dataReceived(b"ABW1|\r")
    assert transport.writes[-1].startswith(b"18") and b"ABW1|" in transport.writes[-1]


def test_login_timeout(library: Library) -> None:
    factory, reactor = make_factory(library, login_timeout=30)
    _protocol, transport = connect(factory)
    reactor.advance(29)
    assert not transport.disconnecting
    reactor.advance(2)
    assert transport.disconnecting


def test_idle_timeout_is_reset_by_each_message(library: Library) -> None:
    factory, reactor = make_factory(library, idle_timeout=600)
    protocol, transport = connect(factory)
    protocol.dataReceived(LOGIN)
    reactor.advance(500)
    protocol.dataReceived(STATUS)  # a kiosk's keep-alive
    reactor.advance(500)
    assert not transport.disconnecting
    reactor.advance(101)
    assert transport.disconnecting


def test_slowloris_trickle_is_cut_off(library: Library) -> None:
    factory, reactor = make_factory(library, idle_timeout=600)
    protocol, transport = connect(factory)
    protocol.dataReceived(LOGIN)
    for _ in range(PARTIAL_FRAME_SECONDS // 5 + 2):
        protocol.dataReceived(b"9")  # one byte every 5 s, never a CR
        reactor.advance(5)
    assert transport.disconnecting


def test_an_oversize_frame_gets_96_and_the_connection_goes_on(library: Library) -> None:
    factory, _reactor = make_factory(library, max_frame_bytes=256)
    protocol, transport = connect(factory)
    protocol.dataReceived(LOGIN)
    protocol.dataReceived(b"17" + b"x" * 300)
    protocol.dataReceived(b"x" * 5000 + b"\r")
    assert transport.writes[-1] == b"96AZFEF6\r"
    assert len(transport.writes) == 2  # one 96 for the whole oversize frame
    protocol.dataReceived(STATUS)
    assert transport.writes[-1].startswith(b"98")
    assert not transport.disconnecting


def test_connection_limit(library: Library) -> None:
    factory, _reactor = make_factory(library, max_connections=2)
    first, _ = connect(factory)
    connect(factory)
    _third, refused = connect(factory)
    assert refused.disconnecting and factory.active == 2
    first.connectionLost(None)
    assert factory.active == 1
    _fourth, accepted = connect(factory)
    assert not accepted.disconnecting


def test_a_failing_handler_is_answered_with_96_and_logged(
    library: Library, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory, _reactor = make_factory(library)

    def broken(*_args: Any) -> codec.Message:
        raise RuntimeError("database went away")

    monkeypatch.setattr(factory.handlers, "handle", broken)
    protocol, transport = connect(factory)
    protocol.dataReceived(LOGIN + f"17{NOW}AOMAIN|ABO1|\r".encode() + STATUS)
    assert [w[:2] for w in transport.writes] == [b"94", b"96", b"98"]
    assert "database went away" in caplog.text
    assert not transport.disconnecting


def test_three_bad_logins_close_and_passwords_are_never_logged(
    library: Library, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="libgate.sip2")
    factory, _reactor = make_factory(library)
    protocol, transport = connect(factory)
    for attempt in range(3):
        protocol.dataReceived(f"9300CNsc|COguess{attempt}|\r".encode())
    assert transport.writes == [b"940\r"] * 3
    assert transport.disconnecting
    assert "guess" not in caplog.text and "command=93 outcome=bad-login" in caplog.text


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunks=st.lists(st.binary(max_size=120), max_size=12), login_first=st.booleans())
def test_random_byte_streams_get_only_whole_sip2_answers(
    library: Library, chunks: list[bytes], login_first: bool
) -> None:
    factory, _reactor = make_factory(library, max_frame_bytes=256)
    protocol, transport = connect(factory)
    if login_first:
        protocol.dataReceived(LOGIN)
    for chunk in chunks:
        if transport.disconnecting:
            break
        protocol.dataReceived(chunk)  # never raises
    responses = {"96"} | set(ANSWERED_BY.values())
    for write in transport.writes:
        assert write.endswith(b"\r") and write.count(b"\r") == 1, write
        assert write[:2].decode("ascii") in responses, write
