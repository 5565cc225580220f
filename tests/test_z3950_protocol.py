"""The Twisted adapter over an in-memory transport and a fake clock: APDUs arriving in pieces
or back to back, a stream that is not BER, an oversize APDU, a long indefinite-length APDU
dribbled in (framed without rescanning), idle and pre-Init timeouts, the session limits (in
all, per address, the pre-Init budget, trusted networks), the bounded work queue, and APDUs we
do not serve."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, TypedDict, Unpack

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.protocol import connectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from gateway.config import ConfigError, Z3950Settings, settings_from_dict
from gateway.store import Store, open_store
from gateway.store.migrate import migrate
from gateway.z3950_codec import ber
from tests import z3950_support as z
from z3950.server import Z3950Factory
from z3950.session import Reply


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("z3950-protocol")
    store = open_store(f"sqlite:///{path / 'z.db'}")
    migrate(store)
    z.load_catalogue(store, path)
    yield store
    store.close()


class Connection:
    def __init__(self, factory: Z3950Factory, host: str = "192.0.2.1", port: int = 4321) -> None:
        peer = IPv4Address("TCP", host, port)
        protocol = factory.buildProtocol(peer)
        assert protocol is not None  # a factory may refuse a connection; this one never does
        self.protocol = protocol
        self.transport = StringTransport(peerAddress=peer)
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def answers(self) -> list[tuple[str, dict[str, Any]]]:
        data = self.transport.value()
        self.transport.clear()
        found = []
        while data:
            length = ber.apdu_length(data, 1 << 24)
            assert length is not None
            found.append(z.answer(data[:length]))
            data = data[length:]
        return found

    def closed(self) -> bool:
        # A method, not a property: the state changes between two checks of one connection,
        # and mypy would otherwise carry the first check's answer over to the second.
        return self.transport.disconnecting


class Limits(TypedDict, total=False):
    """The Z3950Settings these tests vary."""

    idle_timeout: int
    init_timeout: int
    max_sessions: int
    max_sessions_per_peer: int
    max_uninitialised: int
    max_uninitialised_per_peer: int
    trusted_networks: tuple[str, ...]
    max_queued_requests: int
    threads: int
    max_request_bytes: int


def factory_for(store: Store, clock: Clock, **settings: Unpack[Limits]) -> Z3950Factory:
    return Z3950Factory(
        Z3950Settings(listen=(), **settings),
        z.catalogue_service(store),
        pool=None,  # direct calls: no thread pool in protocol tests
        reactor=clock,
    )


def test_apdus_in_pieces_and_back_to_back(catalogue: Store) -> None:
    connection = Connection(factory_for(catalogue, Clock()))
    init = z.init()
    for byte in init:  # one byte at a time
        connection.send(bytes([byte]))
    [(name, _)] = connection.answers()
    assert name == "initResponse"
    pipelined = z.search(z.term("猫", use=4)) + z.present(1, 1) + z.close()
    connection.send(pipelined)
    names = [name for name, _ in connection.answers()]
    assert names == ["searchResponse", "presentResponse", "close"]
    assert connection.closed()


def test_a_stream_that_is_not_ber_gets_close_protocol_error(catalogue: Store) -> None:
    connection = Connection(factory_for(catalogue, Clock()))
    connection.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    [(name, value)] = connection.answers()
    assert name == "close" and value["closeReason"] == 6
    assert connection.closed()
    connection.send(z.init())  # after the Close nothing more is read
    assert connection.answers() == []


def test_an_oversize_apdu_is_refused_before_it_arrives(catalogue: Store) -> None:
    connection = Connection(factory_for(catalogue, Clock(), max_request_bytes=2048))
    connection.send(z.init())
    connection.answers()
    connection.send(b"\xb6\x84\x00\x10\x00\x00")  # a search request claiming 1 MiB
    [(name, value)] = connection.answers()
    assert name == "close" and value["closeReason"] == 6
    assert b"2048" in value["diagnosticInformation"]


def test_a_malformed_apdu_inside_good_ber(catalogue: Store) -> None:
    connection = Connection(factory_for(catalogue, Clock()))
    connection.send(z.init())
    connection.answers()
    connection.send(bytes.fromhex("b603020100"))  # a searchRequest holding an INTEGER
    [(name, value)] = connection.answers()
    assert name == "close" and value["closeReason"] == 6
    assert value["diagnosticInformation"].startswith(b"malformed APDU: searchRequest")


def test_idle_timeout_sends_close_lack_of_activity(catalogue: Store) -> None:
    clock = Clock()
    connection = Connection(factory_for(catalogue, clock, idle_timeout=30))
    connection.send(z.init())
    connection.answers()
    clock.advance(29)
    connection.send(z.search(z.term("猫", use=4)))  # activity restarts the clock
    connection.answers()
    clock.advance(29)
    assert not connection.closed()
    clock.advance(2)
    [(name, value)] = connection.answers()
    assert name == "close" and value["closeReason"] == 7
    assert connection.closed()


def test_session_limit(catalogue: Store) -> None:
    factory = factory_for(catalogue, Clock(), max_sessions=1)
    first = Connection(factory)
    second = Connection(factory)
    [(name, value)] = second.answers()
    assert name == "close" and value["closeReason"] == 4 and second.closed()
    first.send(z.init())
    assert first.answers()[0][0] == "initResponse"
    first.protocol.connectionLost(connectionDone)
    third = Connection(factory)
    third.send(z.init())
    assert third.answers()[0][0] == "initResponse"


def test_apdus_we_do_not_serve(catalogue: Store) -> None:
    connection = Connection(factory_for(catalogue, Clock()))
    connection.send(z.init())
    connection.answers()
    # An extended services request (tag 46) gets its refusal, and the session goes on.
    connection.send(bytes.fromhex("bf2e0782026573830101"))
    [(name, value)] = connection.answers()
    assert name == "extendedServicesResponse" and value["referenceId"] == b"es"
    assert value["diagnostics"][0][1]["condition"] == 221
    connection.send(z.search(z.term("猫", use=4)))
    assert connection.answers()[0][0] == "searchResponse"
    # A response APDU from a client (an access control response we never asked for): Close.
    connection.send(bytes.fromhex("bf1d00"))
    [(name, value)] = connection.answers()
    assert name == "close" and value["closeReason"] == 6
    assert b"accessControlResponse" in value["diagnosticInformation"]


def test_a_dribbled_indefinite_apdu_is_framed_without_rescanning(
    catalogue: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An indefinite-length APDU ends at its end-of-contents, so the framer walks its
    # children; a peer sending thousands of them 2 bytes at a time must not make it walk
    # them all again on each arrival (quadratic, on the reactor thread).
    connection = Connection(factory_for(catalogue, Clock()))
    connection.send(z.init())
    connection.answers()
    headers_read = 0
    read_header = ber.read_header

    def counting(data: bytes | bytearray, offset: int, end: int) -> ber.Header | None:
        nonlocal headers_read
        headers_read += 1
        return read_header(data, offset, end)

    monkeypatch.setattr(ber, "read_header", counting)
    stream = b"\xb6\x80" + b"\x04\x00" * 5000  # 10 kB of empty OCTET STRINGs, unterminated
    for at in range(0, len(stream), 2):
        connection.send(stream[at : at + 2])
    assert headers_read <= 2 * len(stream)  # a rescan each time would be 12.5 million
    assert not connection.closed() and connection.answers() == []
    connection.send(b"\x00\x00")  # end-of-contents: one APDU (not a valid searchRequest)
    [(name, value)] = connection.answers()
    assert name == "close" and value["closeReason"] == 6
    assert value["diagnosticInformation"].startswith(b"malformed APDU: searchRequest")


def test_a_dribbled_indefinite_apdu_is_refused_at_the_size_cap(catalogue: Store) -> None:
    connection = Connection(factory_for(catalogue, Clock(), max_request_bytes=2048))
    connection.send(z.init())
    connection.answers()
    connection.send(b"\xb6\x80")
    sent = 2
    while not connection.closed():
        connection.send(b"\x04\x00")
        sent += 2
    assert sent == 2048
    [(name, value)] = connection.answers()
    assert name == "close" and value["closeReason"] == 6
    assert b"2048" in value["diagnosticInformation"]
    # A definite child claiming more than the cap is refused at once.
    connection = Connection(factory_for(catalogue, Clock(), max_request_bytes=2048))
    connection.send(z.init())
    connection.answers()
    connection.send(b"\xb6\x80\x04\x82\x10\x00")
    [(name, value)] = connection.answers()
    assert name == "close" and value["closeReason"] == 6 and connection.closed()


def test_framer_keeps_its_place_and_starts_again_after_each_apdu() -> None:
    framer = ber.Framer(1 << 16)
    apdu = b"\xb6\x80\xa1\x80\x04\x01x\x00\x00\x04\x00\x00\x00"
    buffer = bytearray()
    for byte in apdu[:-1]:
        buffer.append(byte)
        assert framer.apdu_length(buffer) is None
    buffer += apdu[-1:] + z.close()
    assert framer.apdu_length(buffer) == len(apdu) == ber.apdu_length(buffer, 1 << 16)
    del buffer[: len(apdu)]
    assert framer.apdu_length(buffer) == len(z.close())
    assert framer.headers_read <= 2 * len(apdu) + 2


def test_a_connection_that_sends_no_init_is_closed_after_init_timeout(catalogue: Store) -> None:
    clock = Clock()
    factory = factory_for(catalogue, clock, init_timeout=30, idle_timeout=600)
    silent = Connection(factory)
    partial = Connection(factory)
    partial.send(z.init()[:10])  # an Init that never completes does not count
    clock.advance(20)
    partial.send(z.init()[10:12])
    greeted = Connection(factory)
    greeted.send(z.init())
    assert greeted.answers()[0][0] == "initResponse"
    assert factory.active == 3
    clock.advance(11)
    for connection in (silent, partial):
        [(name, value)] = connection.answers()
        assert name == "close" and value["closeReason"] == 7
        assert value["diagnosticInformation"] == b"no Init"
        assert connection.closed()
        connection.protocol.connectionLost(connectionDone)
    # After Init the idle timeout applies, from the Init.
    clock.advance(500)
    assert not greeted.closed()
    greeted.send(z.search(z.term("猫", use=4)))
    assert greeted.answers()[0][0] == "searchResponse"
    clock.advance(599)
    assert not greeted.closed()
    clock.advance(2)
    assert greeted.answers()[0][1]["closeReason"] == 7 and greeted.closed()
    greeted.protocol.connectionLost(connectionDone)
    assert factory.active == 0 and factory.caps.per_address == {} and factory.caps.pending == 0


def test_sessions_per_peer_address(catalogue: Store) -> None:
    factory = factory_for(catalogue, Clock(), max_sessions=10, max_sessions_per_peer=2)
    first, second = Connection(factory, "192.0.2.7", 1), Connection(factory, "192.0.2.7", 2)
    third = Connection(factory, "192.0.2.7", 3)
    [(name, value)] = third.answers()
    assert name == "close" and value["closeReason"] == 4 and third.closed()
    assert value["diagnosticInformation"] == (
        b"too many sessions: 2 connections open from 192.0.2.7, the most from one address"
        b" (max_sessions_per_peer); try again later"
    )
    third.protocol.connectionLost(connectionDone)
    elsewhere = Connection(factory, "198.51.100.1")  # another address is not held up
    elsewhere.send(z.init())
    assert elsewhere.answers()[0][0] == "initResponse"
    assert factory.caps.per_address == {"192.0.2.7": 2, "198.51.100.1": 1}
    assert factory.active == 3
    first.protocol.connectionLost(connectionDone)
    again = Connection(factory, "192.0.2.7", 4)
    again.send(z.init())
    assert again.answers()[0][0] == "initResponse"
    for connection in (second, again, elsewhere):
        connection.protocol.connectionLost(connectionDone)
    assert factory.caps.per_address == {} and factory.active == 0


def test_timeout_and_per_peer_settings() -> None:
    defaults = Z3950Settings()
    assert (defaults.init_timeout, defaults.max_sessions_per_peer) == (30, 20)
    read = settings_from_dict({"z3950": {"init_timeout": 5, "max_sessions_per_peer": 3}})
    assert (read.z3950.init_timeout, read.z3950.max_sessions_per_peer) == (5, 3)
    for name in ("init_timeout", "max_sessions_per_peer"):
        with pytest.raises(ConfigError, match=f"z3950.{name}: must be a positive number"):
            settings_from_dict({"z3950": {name: 0}})


def test_connections_without_init_have_a_small_budget(catalogue: Store) -> None:
    factory = factory_for(
        catalogue,
        Clock(),
        max_sessions=20,
        max_sessions_per_peer=10,
        max_uninitialised=5,
        max_uninitialised_per_peer=3,
    )
    silent = [Connection(factory, "192.0.2.7", n) for n in range(10)]
    assert [c.closed() for c in silent] == [False] * 3 + [True] * 7
    [(name, value)] = silent[3].answers()
    assert name == "close" and value["closeReason"] == 4
    assert b"3 connections without Init from 192.0.2.7" in value["diagnosticInformation"]
    assert b"(max_uninitialised_per_peer)" in value["diagnosticInformation"]
    for refused in silent[3:]:
        refused.protocol.connectionLost(connectionDone)
    others = [Connection(factory, "198.51.100.1"), Connection(factory, "198.51.100.2")]
    blocked = Connection(factory, "198.51.100.3")  # the budget in all is full
    assert blocked.closed()
    assert b"(max_uninitialised)" in blocked.answers()[0][1]["diagnosticInformation"]
    blocked.protocol.connectionLost(connectionDone)
    # An answered Init leaves the budget at once: a partner gets in and works.
    others[0].send(z.init())
    assert others[0].answers()[0][0] == "initResponse"
    assert factory.caps.pending == 4 and factory.active == 5
    partner = Connection(factory, "203.0.113.5")
    partner.send(z.init())
    partner.send(z.search(z.term("猫", use=4)))
    assert [name for name, _ in partner.answers()] == ["initResponse", "searchResponse"]
    for connection in [*silent[:3], *others, partner]:
        connection.protocol.connectionLost(connectionDone)
    assert factory.caps.pending == 0 and factory.active == 0
    assert factory.caps.pending_per_address == {} and factory.caps.per_address == {}


def test_a_rejected_init_leaves_the_connection_counted_as_without_init(catalogue: Store) -> None:
    factory = factory_for(catalogue, Clock())
    connection = Connection(factory)
    connection.send(z.init(versions=(5,)))  # no version in common: Init refused, then Close
    assert connection.answers()[0][0] == "initResponse" and connection.closed()
    assert factory.caps.pending == 1
    connection.protocol.connectionLost(connectionDone)
    assert factory.caps.pending == 0 and factory.active == 0


def test_trusted_networks_skip_both_per_address_caps_not_max_sessions(catalogue: Store) -> None:
    factory = factory_for(
        catalogue,
        Clock(),
        max_sessions=8,
        max_sessions_per_peer=2,
        max_uninitialised=5,
        max_uninitialised_per_peer=1,
        trusted_networks=("192.0.2.0/24",),
    )
    silent = [Connection(factory, "192.0.2.7", n) for n in range(3)]  # past the per-peer 1
    working = [Connection(factory, "192.0.2.7", n) for n in range(3, 6)]  # past the per-peer 2
    for connection in working:
        connection.send(z.init())
        assert connection.answers()[0][0] == "initResponse"
    assert not any(c.closed() for c in silent + working)
    assert factory.caps.per_address == {"192.0.2.7": 6} and factory.caps.pending == 3
    # Trusted connections still count in the budgets, which bind everyone else.
    untrusted = [Connection(factory, "198.51.100.1", n) for n in range(2)]
    assert [c.closed() for c in untrusted] == [False, True]
    detail = untrusted[1].answers()[0][1]["diagnosticInformation"]
    assert b"(max_uninitialised_per_peer)" in detail
    untrusted[1].protocol.connectionLost(connectionDone)
    eighth = Connection(factory, "192.0.2.8")
    assert not eighth.closed()
    ninth = Connection(factory, "192.0.2.9")  # past max_sessions, trusted or not
    assert ninth.closed()
    assert b"(max_sessions)" in ninth.answers()[0][1]["diagnosticInformation"]


class StalledFactory(Z3950Factory):
    """A factory whose thread pool never runs anything while `stalled`: each APDU handed to it
    waits in `held`, as behind slow searches on every thread, until `catch_up`."""

    stalled = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: list[tuple[Callable[..., Reply], tuple[Any, ...], Deferred[Reply]]] = []

    def call_in_thread(self, function: Callable[..., Reply], *args: Any) -> Deferred[Reply]:
        if not self.stalled:
            return maybeDeferred(function, *args)
        waiting: Deferred[Reply] = Deferred()
        self.held.append((function, args, waiting))
        return waiting

    def catch_up(self) -> None:
        self.stalled = False
        held, self.held = self.held, []
        for function, args, waiting in held:
            waiting.callback(function(*args))


def test_a_full_work_queue_is_answered_with_close_at_once_and_logged_once(
    catalogue: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="libgate.z3950")
    factory = StalledFactory(
        Z3950Settings(listen=(), threads=2, max_queued_requests=3),
        z.catalogue_service(catalogue),
        pool=None,
        reactor=Clock(),
    )
    # Two APDUs on the threads and three waiting: the most the queue takes.
    taken = [Connection(factory, f"192.0.2.{n}") for n in range(1, 6)]
    for connection in taken:
        connection.send(z.init())
    assert factory.in_flight == 5 and not any(c.answers() or c.closed() for c in taken)
    late = [Connection(factory, f"198.51.100.{n}") for n in range(1, 21)]
    for connection in late:
        connection.send(z.init())
        [(name, value)] = connection.answers()
        assert name == "close" and value["closeReason"] == 4 and connection.closed()
        assert value["diagnosticInformation"] == (
            b"server busy: too many requests waiting; try later"
        )
        connection.protocol.connectionLost(connectionDone)
    assert factory.in_flight == 5 and len(factory.held) == 5  # nothing was queued for them
    refusals = [r.getMessage() for r in caplog.records if "max_queued_requests" in r.getMessage()]
    assert len(refusals) == 1 and "3 APDUs waiting for a search thread" in refusals[0]
    # The pool catches up: every waiting APDU is answered, and new work is taken again.
    factory.catch_up()
    assert all(c.answers()[0][0] == "initResponse" for c in taken)
    assert factory.in_flight == 0
    taken[0].send(z.search(z.term("猫", use=4)))
    assert taken[0].answers()[0][0] == "searchResponse"


def test_the_new_limit_settings_are_read_and_checked() -> None:
    defaults = Z3950Settings()
    assert (defaults.max_uninitialised, defaults.max_uninitialised_per_peer) == (32, 8)
    assert (defaults.trusted_networks, defaults.max_queued_requests) == ((), 32)
    read = settings_from_dict(
        {"z3950": {"trusted_networks": ["10.1.0.0/16", "2001:db8::/48"], "max_uninitialised": 4}}
    )
    assert read.z3950.trusted_networks == ("10.1.0.0/16", "2001:db8::/48")
    assert read.z3950.max_uninitialised == 4
    with pytest.raises(ConfigError, match=r"z3950.trusted_networks\[0\]: 'partners'"):
        settings_from_dict({"z3950": {"trusted_networks": ["partners"]}})
    for name in ("max_uninitialised", "max_uninitialised_per_peer", "max_queued_requests"):
        with pytest.raises(ConfigError, match=f"z3950.{name}: must be a positive number"):
            settings_from_dict({"z3950": {name: 0}})
