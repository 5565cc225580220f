"""The Z39.50 connection pool without a network: associations over in-memory transports on a
fake clock (twisted's MemoryReactorClock records each connection asked for; the test plays the
target with our own target's codec). What is kept, handed out, expired and closed, and how a
search uses the pool: no connect and no Init on a reused association, one retry when the target
had closed it while idle, the retry under the same deadline, and nothing kept from a search
that failed, timed out or was cancelled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from gateway.catalogue.query import Query, Term
from gateway.config import UnionTarget
from gateway.z3950_codec import ber, oids
from gateway.z3950_codec.diagnostics import Diagnostic
from gateway.z3950_codec.messages import (
    Close,
    InitRequest,
    InitResponse,
    NamePlusRecord,
    PresentRequest,
    PresentResponse,
    RetrievalRecord,
    SearchRequest,
    SearchResponse,
)
from gateway.z3950_codec.origin import ReceivedDiagnostic
from union.errors import TargetProtocolError, TargetTimeout, TargetUnreachable
from union.fanout import TargetAnswer, TargetState, UnionSearch
from union.targets import Z3950Target
from union.z3950_client import Z3950Origin
from union.z3950_pool import CLOSE_SECONDS, PoolKey, Z3950Pool, session_survives, went_away
from union.z3950_session import OriginSession
from z3950 import codec

INIT_OK = InitResponse(
    versions=frozenset({2, 3}),
    options=frozenset({"search", "present"}),
    preferred_message_size=1 << 20,
    exceptional_record_size=1 << 20,
    result=True,
    implementation_id="t",
    implementation_name="target",
    implementation_version="1",
)
KEY = PoolKey("127.0.0.1", 2100, "main", "utf-8")
TARGET = UnionTarget("馆", "z3950:127.0.0.1:2100/main", timeout=10, max_records=5)
QUERY = Query(Term("title", "all", "猫"))
RECORD = b"00024nam  2200025   4500\x1e\x1d"


def requests(transport: StringTransport) -> list[Any]:
    """The APDUs the origin wrote, decoded as our target reads them."""
    data, found = transport.value(), []
    framer = ber.Framer(1 << 22)
    while data:
        length = framer.apdu_length(data)
        assert length is not None, "a partial APDU on the wire"
        found.append(codec.decode(data[:length]))
        data = data[length:]
    return found


def kinds(transport: StringTransport) -> list[str]:
    return [type(r).__name__ for r in requests(transport)]


def opened(clock: Clock) -> tuple[Z3950Origin, StringTransport]:
    """An association after a successful Init, its wire cleared."""
    origin = Z3950Origin(OriginSession("main"), clock, "127.0.0.1:2100/main")
    transport = StringTransport()
    origin.makeConnection(transport)
    origin.init(5)
    origin.dataReceived(codec.encode(INIT_OK))
    transport.clear()
    return origin, transport


def hung_up(transport: StringTransport) -> bool:
    return bool(transport.disconnecting or transport.disconnected)


# --- the pool ------------------------------------------------------------------------------


def test_a_clean_association_is_handed_to_the_next_search_and_to_one_only() -> None:
    clock = Clock()
    pool = Z3950Pool(clock)
    origin, transport = opened(clock)
    pool.give_back(KEY, origin, clean=True)
    assert pool.idle(KEY) == 1 and transport.value() == b""  # kept open, nothing sent
    assert pool.take(PoolKey("127.0.0.1", 2100, "main", "gbk")) is None  # another encoding
    assert pool.take(KEY) is origin
    assert pool.take(KEY) is None  # a second search at the same time gets its own
    assert not clock.getDelayedCalls()  # taken: its idle lifetime no longer runs


def test_at_most_n_idle_per_target_the_freshest_kept() -> None:
    clock = Clock()
    pool = Z3950Pool(clock, idle_per_target=2)
    (a, wire_a), (b, wire_b), (c, wire_c) = opened(clock), opened(clock), opened(clock)
    for origin in (a, b, c):
        pool.give_back(KEY, origin, clean=True)
    assert pool.idle(KEY) == 2
    assert kinds(wire_a) == ["Close"]  # the oldest closed politely
    assert wire_b.value() == wire_c.value() == b""
    assert pool.take(KEY) is c and pool.take(KEY) is b


def test_no_idle_connections_means_every_association_is_closed() -> None:
    clock = Clock()
    pool = Z3950Pool(clock, idle_per_target=0)
    origin, transport = opened(clock)
    pool.give_back(KEY, origin, clean=True)
    assert pool.idle(KEY) == 0 and kinds(transport) == ["Close"]


def test_an_idle_association_is_closed_politely_after_its_idle_lifetime() -> None:
    clock = Clock()
    pool = Z3950Pool(clock, idle_seconds=60)
    origin, transport = opened(clock)
    pool.give_back(KEY, origin, clean=True)
    clock.advance(59)
    assert pool.idle(KEY) == 1 and transport.value() == b""
    clock.advance(1)
    assert pool.idle(KEY) == 0 and kinds(transport) == ["Close"]
    assert not hung_up(transport)  # waiting for the target's Close
    origin.dataReceived(codec.encode(Close(close_reason=0)))
    assert hung_up(transport)
    # A target that never answers the Close is hung up on all the same.
    origin, transport = opened(clock)
    pool.give_back(KEY, origin, clean=True)
    clock.advance(60)
    assert kinds(transport) == ["Close"] and not hung_up(transport)
    clock.advance(CLOSE_SECONDS)
    assert hung_up(transport)


def test_an_association_in_use_again_gets_a_new_idle_lifetime() -> None:
    clock = Clock()
    pool = Z3950Pool(clock, idle_seconds=60)
    origin, transport = opened(clock)
    pool.give_back(KEY, origin, clean=True)
    clock.advance(50)
    assert pool.take(KEY) is origin
    pool.give_back(KEY, origin, clean=True)
    clock.advance(50)
    assert pool.idle(KEY) == 1 and transport.value() == b""


def test_what_a_search_left_unclean_or_unusable_is_never_kept() -> None:
    clock = Clock()
    pool = Z3950Pool(clock)
    # The search said so (a diagnostic that leaves the session in doubt): Close, politely.
    origin, transport = opened(clock)
    pool.give_back(KEY, origin, clean=False)
    assert pool.idle(KEY) == 0 and kinds(transport) == ["Close"]
    # Timed out: the connection was aborted; no Close (its answer could not be told apart).
    origin, transport = opened(clock)
    origin.search(QUERY, 1).addErrback(lambda f: f.trap(TargetTimeout))
    clock.advance(1)
    pool.give_back(KEY, origin, clean=True)
    assert pool.idle(KEY) == 0 and kinds(transport) == ["SearchRequest"]
    # Still waiting for an answer (an operation pending): hung up, never kept.
    origin, transport = opened(clock)
    origin.search(QUERY, 5)
    pool.give_back(KEY, origin, clean=True)
    assert pool.idle(KEY) == 0 and hung_up(transport)
    # Cancelled (aborted by its search), lost, or closed by the target.
    for end in (
        lambda o: o.abort(),
        lambda o: o.connectionLost(Failure(ConnectionDone())),
        lambda o: o.dataReceived(codec.encode(Close(close_reason=7))),
    ):
        origin, transport = opened(clock)
        end(origin)
        pool.give_back(KEY, origin, clean=True)
        assert pool.idle(KEY) == 0 and hung_up(transport)
        assert transport.value() == b""


def test_an_association_the_target_closed_while_idle_is_never_handed_out() -> None:
    clock = Clock()
    pool = Z3950Pool(clock)
    first, first_wire = opened(clock)
    second, _ = opened(clock)
    pool.give_back(KEY, first, clean=True)
    pool.give_back(KEY, second, clean=True)
    # lackOfActivity, as libgate's and Zebra's idle timeouts send it.
    second.dataReceived(codec.encode(Close(close_reason=7)))
    assert pool.take(KEY) is first
    pool.give_back(KEY, first, clean=True)
    first.connectionLost(Failure(ConnectionDone()))  # a target that just hangs up
    assert pool.take(KEY) is None
    assert first_wire.value() == b""


def test_closing_the_pool_closes_every_idle_association_and_later_ones() -> None:
    clock = Clock()
    pool = Z3950Pool(clock)
    other = PoolKey("127.0.0.1", 2101, "main", "gbk")
    (a, wire_a), (b, wire_b) = opened(clock), opened(clock)
    pool.give_back(KEY, a, clean=True)
    pool.give_back(other, b, clean=True)
    closed: list[Any] = []
    pool.close().addBoth(closed.append)
    assert kinds(wire_a) == kinds(wire_b) == ["Close"]
    assert pool.idle(KEY) == pool.idle(other) == 0
    assert closed == []  # until the targets answered (or CLOSE_SECONDS passed)
    a.dataReceived(codec.encode(Close(close_reason=0)))
    b.dataReceived(codec.encode(Close(close_reason=0)))
    assert closed == [None] and hung_up(wire_a) and hung_up(wire_b)
    # A search that ends after the pool closed: its association is closed, not kept.
    late, wire = opened(clock)
    pool.give_back(KEY, late, clean=True)
    assert pool.idle(KEY) == 0 and kinds(wire) == ["Close"]


def test_which_diagnostics_leave_the_session_usable() -> None:
    def diagnostic(condition: int) -> ReceivedDiagnostic:
        return ReceivedDiagnostic(condition, "", oids.DIAG_BIB1)

    assert session_survives([])
    assert session_survives([diagnostic(114)])  # an index the target lacks
    assert session_survives([diagnostic(13)])  # present out of range
    for condition in (1, 2, 100, 109):
        assert not session_survives([diagnostic(114), diagnostic(condition)])


def test_which_failures_say_the_target_had_closed_the_association() -> None:
    clock = Clock()
    origin, _ = opened(clock)
    assert went_away(origin, TargetUnreachable("t", "search", "the target hung up"))
    assert not went_away(origin, TargetTimeout("t", "search", "no answer within 10 s"))
    assert not went_away(origin, TargetProtocolError("t", "search", "not BER"))  # garbage
    origin.dataReceived(codec.encode(Close(close_reason=7)))
    assert went_away(origin, TargetProtocolError("t", "search", "the target closed"))


# --- searches through the pool -------------------------------------------------------------


@dataclass
class Wire:
    """One connection the code under test asked the fake reactor for, the test its target."""

    protocol: IProtocol
    transport: StringTransport = field(default_factory=StringTransport)

    def answer(self, message: Any) -> None:
        self.protocol.dataReceived(codec.encode(message))

    def hang_up(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionDone()))


class Targets:
    """The fake reactor's connections, accepted in turn."""

    def __init__(self, reactor: MemoryReactorClock) -> None:
        self.reactor = reactor
        self.wires: list[Wire] = []

    def accept(self) -> Wire:
        """The next connection asked for (in the order asked), now made."""
        _host, _port, factory, _timeout, _bind = self.reactor.tcpClients[len(self.wires)]
        protocol = factory.buildProtocol(None)
        assert protocol is not None
        wire = Wire(protocol)
        wire.protocol.makeConnection(wire.transport)
        self.wires.append(wire)
        return wire

    @property
    def asked(self) -> int:
        return len(self.reactor.tcpClients)


def found(hits: int) -> SearchResponse:
    return SearchResponse(
        result_count=hits,
        number_of_records_returned=0,
        next_result_set_position=1,
        search_status=True,
    )


def presented(count: int) -> PresentResponse:
    records = tuple(
        NamePlusRecord("main", RetrievalRecord(oids.UNIMARC, octets=RECORD)) for _ in range(count)
    )
    return PresentResponse(
        number_of_records_returned=count,
        next_result_set_position=count + 1,
        present_status=0,
        records=records,
    )


def searched(
    z3950: Z3950Target, target: UnionTarget = TARGET
) -> tuple[list[Any], list[bool], Callable[[], None]]:
    """A search started: (its result when it comes, whether it reported searching, cancel)."""
    results: list[Any] = []
    searching: list[bool] = []
    answer = z3950.search(target, QUERY, lambda: searching.append(True))
    answer.addBoth(results.append)
    return results, searching, answer.cancel


def first_search(targets: Targets, z3950: Z3950Target) -> Wire:
    """A search on a new association, answered in full: the association is then idle."""
    results, searching, _ = searched(z3950)
    wire = targets.accept()
    wire.answer(INIT_OK)
    assert searching == [True]
    wire.answer(found(2))
    wire.answer(presented(2))
    (answer,) = results
    assert isinstance(answer, TargetAnswer) and (answer.hits, len(answer.records)) == (2, 2)
    assert kinds(wire.transport) == ["InitRequest", "SearchRequest", "PresentRequest"]
    wire.transport.clear()
    return wire


def test_the_next_search_skips_connect_and_init() -> None:
    reactor = MemoryReactorClock()
    pool = Z3950Pool(reactor)
    z3950, targets = Z3950Target(reactor, pool), Targets(reactor)
    wire = first_search(targets, z3950)
    assert pool.idle(KEY) == 1
    results, searching, _ = searched(z3950)
    assert targets.asked == 1 and searching == [True]  # searching at once: no connect, no Init
    (search,) = requests(wire.transport)
    assert isinstance(search, SearchRequest) and search.replace_indicator
    assert search.result_set_name == "default"  # the new result set replaces the last one
    wire.answer(found(0))
    assert results == [TargetAnswer(0, ())]
    assert pool.idle(KEY) == 1  # no hits is a clean end too


def test_two_searches_at_once_each_get_their_own_association() -> None:
    reactor = MemoryReactorClock()
    pool = Z3950Pool(reactor)
    z3950, targets = Z3950Target(reactor, pool), Targets(reactor)
    wire = first_search(targets, z3950)
    one, _, _ = searched(z3950)
    two, _, _ = searched(z3950)
    assert targets.asked == 2  # the idle one went to the first; the second connects
    fresh = targets.accept()
    fresh.answer(INIT_OK)
    assert kinds(wire.transport) == ["SearchRequest"]
    assert kinds(fresh.transport) == ["InitRequest", "SearchRequest"]
    wire.answer(found(0))
    fresh.answer(found(0))
    assert one == two == [TargetAnswer(0, ())]
    assert pool.idle(KEY) == 2


@pytest.mark.parametrize(
    "closed_by_target",
    [Wire.hang_up, lambda wire: wire.answer(Close(close_reason=7))],
    ids=["hung up", "Close"],
)
def test_a_reused_association_the_target_had_closed_is_retried_once_on_a_new_one(
    closed_by_target: Callable[[Wire], None],
) -> None:
    reactor = MemoryReactorClock()
    pool = Z3950Pool(reactor)
    z3950, targets = Z3950Target(reactor, pool), Targets(reactor)
    stale = first_search(targets, z3950)
    results, searching, _ = searched(z3950)
    assert kinds(stale.transport) == ["SearchRequest"]
    closed_by_target(stale)  # before any answer: it had closed the association while idle
    assert targets.asked == 2 and results == []
    fresh = targets.accept()
    fresh.answer(INIT_OK)
    fresh.answer(found(1))
    fresh.answer(presented(1))
    (answer,) = results
    assert isinstance(answer, TargetAnswer) and answer.hits == 1
    assert searching == [True]  # once: the retry is the same search
    assert pool.take(KEY) is not None and pool.take(KEY) is None  # the new one, kept


def test_the_retry_is_made_once_only() -> None:
    reactor = MemoryReactorClock()
    pool = Z3950Pool(reactor)
    z3950, targets = Z3950Target(reactor, pool), Targets(reactor)
    stale = first_search(targets, z3950)
    results, _, _ = searched(z3950)
    stale.hang_up()
    fresh = targets.accept()
    fresh.answer(INIT_OK)
    fresh.hang_up()  # the new association fails too: that is the search's failure
    assert targets.asked == 2
    (failure,) = results
    assert isinstance(failure, Failure) and failure.check(TargetUnreachable)
    assert pool.idle(KEY) == 0


def test_no_retry_after_the_first_answer_or_on_a_new_association() -> None:
    reactor = MemoryReactorClock()
    pool = Z3950Pool(reactor)
    z3950, targets = Z3950Target(reactor, pool), Targets(reactor)
    wire = first_search(targets, z3950)
    results, _, _ = searched(z3950)
    wire.answer(found(3))
    wire.hang_up()  # during Present: the target was there, so this is a failure
    assert targets.asked == 1 and results[0].check(TargetUnreachable)
    results, _, _ = searched(z3950)  # nothing idle: a new association
    fresh = targets.accept()
    fresh.answer(INIT_OK)
    fresh.hang_up()
    assert targets.asked == 2 and results[0].check(TargetUnreachable)


def test_the_retry_runs_under_the_targets_own_deadline() -> None:
    reactor = MemoryReactorClock()
    pool = Z3950Pool(reactor)
    z3950, targets = Z3950Target(reactor, pool), Targets(reactor)
    stale = first_search(targets, z3950)
    target = UnionTarget("馆", TARGET.url, timeout=4)
    search = UnionSearch([target], QUERY, "猫", lambda _: z3950, reactor, timeout=30)
    reactor.advance(3)
    stale.hang_up()  # 3 s into the search: the retry has 1 s left, not 4
    fresh = targets.accept()
    fresh.answer(INIT_OK)  # then the target says nothing
    reactor.advance(1)
    status = search.statuses["馆"]
    assert (status.state, status.ms) == (TargetState.TIMEOUT, 4000)
    assert hung_up(fresh.transport)  # the retry's association is dropped at the deadline
    assert pool.idle(KEY) == 0


def test_a_search_cancelled_while_connecting_gives_nothing_back() -> None:
    reactor = MemoryReactorClock()
    pool = Z3950Pool(reactor)
    z3950, targets = Z3950Target(reactor, pool), Targets(reactor)
    results, _, cancel = searched(z3950)
    cancel()
    assert results[0].check(Exception)
    connector = reactor.connectors[0]
    assert connector.stoppedConnecting  # the connection being made was given up
    assert targets.asked == 1 and pool.idle(KEY) == 0


def test_a_timed_out_search_leaves_nothing_in_the_pool() -> None:
    reactor = MemoryReactorClock()
    pool = Z3950Pool(reactor)
    z3950, targets = Z3950Target(reactor, pool), Targets(reactor)
    wire = first_search(targets, z3950)
    search = UnionSearch([TARGET], QUERY, "猫", lambda _: z3950, reactor, timeout=30)
    assert kinds(wire.transport) == ["SearchRequest"]
    reactor.advance(TARGET.timeout)
    assert search.statuses["馆"].state is TargetState.TIMEOUT
    assert hung_up(wire.transport) and pool.idle(KEY) == 0
    wire.answer(found(5))  # the late answer reaches nobody
    assert pool.idle(KEY) == 0
    # The next search makes a new association.
    searched(z3950)
    assert targets.asked == 2


def test_a_diagnostic_that_leaves_the_session_in_doubt_is_not_kept() -> None:
    reactor = MemoryReactorClock()
    pool = Z3950Pool(reactor)
    z3950, targets = Z3950Target(reactor, pool), Targets(reactor)
    wire = first_search(targets, z3950)
    for condition, kept in ((114, 1), (2, 0)):
        results, _, _ = searched(z3950)
        wire.answer(
            SearchResponse(
                result_count=0,
                number_of_records_returned=0,
                next_result_set_position=1,
                search_status=False,
                result_set_status=3,
                records=Diagnostic(condition, "x"),
            )
        )
        (answer,) = results
        assert isinstance(answer, TargetAnswer) and answer.diagnostic.startswith(
            f"diagnostic {condition}"
        )
        assert pool.idle(KEY) == kept
    assert kinds(wire.transport)[-1] == "Close"  # the doubtful one was closed politely


def test_a_query_the_target_cannot_be_sent_keeps_the_association() -> None:
    reactor = MemoryReactorClock()
    pool = Z3950Pool(reactor)
    z3950, targets = Z3950Target(reactor, pool), Targets(reactor)
    wire = first_search(targets, z3950)
    results: list[Any] = []
    unsayable = Query(Term("no-such-index", "all", "猫"))
    z3950.search(TARGET, unsayable, lambda: None).addBoth(results.append)
    (answer,) = results
    assert isinstance(answer, TargetAnswer) and answer.diagnostic
    assert wire.transport.value() == b"" and pool.idle(KEY) == 1


def test_requests_on_the_wire_are_those_of_a_session() -> None:
    # The reused association's requests are the standard's: Search then Present, no Init.
    reactor = MemoryReactorClock()
    pool = Z3950Pool(reactor)
    z3950, targets = Z3950Target(reactor, pool), Targets(reactor)
    wire = first_search(targets, z3950)
    searched(z3950)
    wire.answer(found(1))
    sent = requests(wire.transport)
    assert [type(r) for r in sent] == [SearchRequest, PresentRequest]
    assert not any(isinstance(r, InitRequest) for r in sent)
