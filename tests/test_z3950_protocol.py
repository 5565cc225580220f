"""The Twisted adapter over an in-memory transport and a fake clock: APDUs arriving in pieces
or back to back, a stream that is not BER, an oversize APDU, idle timeouts, the session
limit and APDUs we do not serve."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from gateway.config import Z3950Settings
from gateway.store import Store, open_store
from gateway.store.migrate import migrate
from tests import z3950_support as z
from z3950 import ber
from z3950.server import Z3950Factory, Z3950Protocol


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("z3950-protocol")
    store = open_store(f"sqlite:///{path / 'z.db'}")
    migrate(store)
    z.load_catalogue(store, path)
    yield store
    store.close()


class Connection:
    def __init__(self, factory: Z3950Factory) -> None:
        self.protocol: Z3950Protocol = factory.buildProtocol(None)  # type: ignore[assignment]
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def answers(self) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
        data = self.transport.value()
        self.transport.clear()
        found = []
        while data:
            length = ber.apdu_length(data, 1 << 24)
            assert length is not None
            found.append(z.answer(data[:length]))
            data = data[length:]
        return found

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting


def factory_for(store: Store, clock: Clock, **settings: object) -> Z3950Factory:
    return Z3950Factory(
        Z3950Settings(listen=(), **settings),  # type: ignore[arg-type]
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
    assert connection.closed


def test_a_stream_that_is_not_ber_gets_close_protocol_error(catalogue: Store) -> None:
    connection = Connection(factory_for(catalogue, Clock()))
    connection.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    [(name, value)] = connection.answers()
    assert name == "close" and value["closeReason"] == 6
    assert connection.closed
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
    assert not connection.closed
    clock.advance(2)
    [(name, value)] = connection.answers()
    assert name == "close" and value["closeReason"] == 7
    assert connection.closed


def test_session_limit(catalogue: Store) -> None:
    factory = factory_for(catalogue, Clock(), max_sessions=1)
    first = Connection(factory)
    second = Connection(factory)
    [(name, value)] = second.answers()
    assert name == "close" and value["closeReason"] == 4 and second.closed
    first.send(z.init())
    assert first.answers()[0][0] == "initResponse"
    first.protocol.connectionLost(None)
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
