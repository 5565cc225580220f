"""The Z39.50 connection pool against real targets: a Zebra (Debian idzebra-2.0) and a
`libgate serve`, each behind a small TCP relay of the test's own that counts the connections
it accepts and records every APDU each way. Shows that consecutive searches share one
association, concurrent ones get one each, an idle one is closed politely after
`idle_seconds`, one the target closed while idle is searched again on a new one, a timed-out
search's connection is never reused, and the CLI and the portal's searcher close or keep their
pool as they should.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.threads import blockingCallFromThread
from twisted.python.failure import Failure

from gateway.catalogue.query import Query, Term
from gateway.config import UnionSettings, UnionTarget, settings_from_dict
from gateway.z3950_codec import ber
from gateway.z3950_codec.messages import Close
from gateway.z3950_codec.origin import decode_response
from tests.conftest import FIXTURES
from tests.serve_support import free_port, running_gateway
from tests.sru_support import reactor_in_thread
from tests.support import cnmarc, iso
from tests.zebra_support import ZEBRA, running_zebra
from union.fanout import TargetAnswer, TargetState, UnionSearch
from union.searcher import ReactorUnionSearcher
from union.targets import Z3950Target
from union.z3950_pool import PoolKey, Z3950Pool
from z3950 import codec

CAT_HISTORY = cnmarc("U-CAT-ZH", "猫的历史", barcodes=("U-C1",), year="2005")
QUERY = Query(Term("title", "all", "猫的历史"))
LONG = 30.0  # a deadline no answering target comes near: what is asserted is the outcome
LIBGATE_IDLE_TIMEOUT = 3  # seconds: the libgate target's own [z3950] idle_timeout
WAIT_SECONDS = 20.0  # at most this long for what a target or the pool does by itself


# --- a counting relay ----------------------------------------------------------------------


def apdus(data: bytes) -> list[bytes]:
    framer, found = ber.Framer(1 << 22), []
    while data:
        length = framer.apdu_length(data)
        if length is None:
            break
        found.append(data[:length])
        data = data[length:]
    return found


class Leg(Protocol):
    """One connection the relay accepted (the origin's side), joined to its own connection to
    the target."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.to_target = bytearray()  # what the origin sent
        self.from_target = bytearray()  # what the target sent (and was passed on)
        self.open = True
        self.upstream: Protocol | None = None
        self.waiting: list[bytes] = []
        self.gone = ""  # "" | "hang up" | "close": the target's side was dropped (stale())

    def connectionMade(self) -> None:
        self.relay.legs.append(self)
        endpoint = TCP4ClientEndpoint(self.relay.reactor, "127.0.0.1", self.relay.target_port)
        connectProtocol(endpoint, Upstream(self)).addCallbacks(self._joined, self._no_target)

    def _joined(self, upstream: Protocol) -> None:
        self.upstream = upstream
        for data in self.waiting:
            upstream.transport.write(data)
        self.waiting.clear()

    def _no_target(self, _: Failure) -> None:
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        self.to_target += data
        if self.gone == "close":  # as a target that closed the association while idle says
            self.transport.write(codec.encode(Close(close_reason=7)))
        if self.gone:
            self.transport.loseConnection()
        elif self.upstream is None:
            self.waiting.append(data)
        else:
            self.upstream.transport.write(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.open = False
        if self.upstream is not None:
            self.upstream.transport.loseConnection()

    def drop_target_side(self, how: str) -> None:
        """The target's side of the association ends; the origin hears of it only when it
        next sends (then it is hung up on, after a Close when `how` is "close")."""
        self.gone = how
        if self.upstream is not None:
            self.upstream.transport.loseConnection()

    def sent(self) -> list[str]:
        return [type(codec.decode(apdu)).__name__ for apdu in apdus(bytes(self.to_target))]

    def answered(self) -> list[Any]:
        return [decode_response(apdu) for apdu in apdus(bytes(self.from_target))]


class Upstream(Protocol):
    def __init__(self, leg: Leg) -> None:
        self.leg = leg

    def dataReceived(self, data: bytes) -> None:
        if self.leg.relay.holding:
            return  # a target that has stopped answering
        self.leg.from_target += data
        self.leg.transport.write(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.leg.gone:
            self.leg.transport.loseConnection()


class Relay:
    """127.0.0.1:`port` → 127.0.0.1:`target_port`, each accepted connection a `Leg`."""

    def __init__(self, reactor: Any, target_port: int) -> None:
        self.reactor = reactor
        self.target_port = target_port
        self.legs: list[Leg] = []
        self.holding = False
        factory = Factory.forProtocol(lambda: Leg(self))
        self.listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.port = self.listening.getHost().port

    @property
    def accepted(self) -> int:
        return len(self.legs)

    @property
    def open_legs(self) -> int:
        return sum(1 for leg in self.legs if leg.open)

    def stale(self, how: str) -> None:
        for leg in self.legs:
            if leg.open:
                leg.drop_target_side(how)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reactor() -> Any:
    return reactor_in_thread()


@pytest.fixture(scope="module")
def zebra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if not ZEBRA:
        pytest.fail("zebrasrv and zebraidx are missing: apt-get install idzebra-2.0 (.ci/run does)")
    home = tmp_path_factory.mktemp("zebra")
    (home / "extra.iso").write_bytes(iso(CAT_HISTORY))
    records = [FIXTURES / "marc/demo_main.iso", home / "extra.iso"]
    with running_zebra(home, records, free_port()) as port:
        yield port


@pytest.fixture(scope="module")
def libgate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The Z39.50 port of a `libgate serve` whose target closes an association idle for
    LIBGATE_IDLE_TIMEOUT seconds."""
    home = tmp_path_factory.mktemp("libgate")
    port = free_port()
    config = home / "libgate.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{home / "l.db"}"

[sru]
listen = []

[sip2]
listen = []

[z3950]
listen = ["tcp:{port}:interface=127.0.0.1"]
idle_timeout = {LIBGATE_IDLE_TIMEOUT}
""",
        encoding="utf-8",
    )
    (home / "extra.iso").write_bytes(iso(CAT_HISTORY))
    for args in (
        ["init"],
        ["load", "--database", "main", str(FIXTURES / "marc/demo_main.iso")],
        ["load", "--database", "main", str(home / "extra.iso")],
    ):
        run = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
    with running_gateway(config, [port]):
        yield port


def on_reactor(reactor: Any, work: Callable[[], Any]) -> Any:
    return blockingCallFromThread(reactor, work)


@pytest.fixture
def relay_to(reactor: Any) -> Iterator[Callable[[int], Relay]]:
    """Relays made by the test, stopped after it."""
    made: list[Relay] = []

    def make(target_port: int) -> Relay:
        relay: Relay = on_reactor(reactor, lambda: Relay(reactor, target_port))
        made.append(relay)
        return relay

    yield make
    for relay in made:
        on_reactor(reactor, relay.listening.stopListening)


@pytest.fixture
def pool(reactor: Any) -> Iterator[Z3950Pool]:
    made = Z3950Pool(reactor, idle_per_target=2, idle_seconds=60)
    yield made
    on_reactor(reactor, made.close)


def target_at(relay: Relay, database: str, timeout: float = LONG) -> UnionTarget:
    return UnionTarget("馆", f"z3950:127.0.0.1:{relay.port}/{database}", timeout=timeout)


def search(reactor: Any, pool: Z3950Pool, target: UnionTarget) -> TargetAnswer:
    z3950 = Z3950Target(reactor, pool)
    answer: TargetAnswer = on_reactor(reactor, lambda: z3950.search(target, QUERY, lambda: None))
    return answer


def wait_until(reactor: Any, holds: Callable[[], bool], what: str) -> None:
    """Poll (on the reactor thread) until `holds`, for at most WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not on_reactor(reactor, holds):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_SECONDS:g} s: {what}")
        time.sleep(0.05)


TARGETS = ["zebra", "libgate"]
DATABASES = {"zebra": "Default", "libgate": "main"}


@pytest.fixture(params=TARGETS)
def target_port(request: pytest.FixtureRequest) -> tuple[str, int]:
    return request.param, request.getfixturevalue(request.param)


# --- the tests -----------------------------------------------------------------------------


def test_consecutive_searches_share_one_association(
    reactor: Any, pool: Z3950Pool, relay_to: Callable[[int], Relay], target_port: tuple[str, int]
) -> None:
    name, port = target_port
    relay = relay_to(port)
    target = target_at(relay, DATABASES[name])
    answers = [search(reactor, pool, target) for _ in range(3)]
    assert [(a.hits, len(a.records), a.diagnostic) for a in answers] == [(1, 1, "")] * 3
    assert relay.accepted == 1
    (leg,) = relay.legs
    assert leg.sent() == ["InitRequest"] + ["SearchRequest", "PresentRequest"] * 3
    assert pool.idle(PoolKey.of(target)) == 1


def test_concurrent_searches_each_get_their_own_association(
    reactor: Any, pool: Z3950Pool, relay_to: Callable[[int], Relay], zebra: int
) -> None:
    relay = relay_to(zebra)
    target = target_at(relay, "Default")
    z3950 = Z3950Target(reactor, pool)

    def both() -> Deferred[list[TargetAnswer]]:
        return gatherResults(
            [z3950.search(target, QUERY, lambda: None), z3950.search(target, QUERY, lambda: None)]
        )

    answers = on_reactor(reactor, both)
    assert [a.hits for a in answers] == [1, 1]
    assert relay.accepted == 2
    for leg in relay.legs:
        assert leg.sent() == ["InitRequest", "SearchRequest", "PresentRequest"]
    assert pool.idle(PoolKey.of(target)) == 2
    # Both kept: two more at once take one each, and nothing new is connected.
    assert [a.hits for a in on_reactor(reactor, both)] == [1, 1]
    assert relay.accepted == 2


def test_an_idle_association_is_closed_politely_after_idle_seconds(
    reactor: Any, relay_to: Callable[[int], Relay], zebra: int
) -> None:
    relay = relay_to(zebra)
    target = target_at(relay, "Default")
    short = Z3950Pool(reactor, idle_per_target=2, idle_seconds=0.5)
    assert search(reactor, short, target).hits == 1
    wait_until(reactor, lambda: relay.open_legs == 0, "the idle association closed")
    (leg,) = relay.legs
    assert leg.sent() == ["InitRequest", "SearchRequest", "PresentRequest", "Close"]
    assert isinstance(leg.answered()[-1], Close)  # and Zebra answered it
    assert short.idle(PoolKey.of(target)) == 0
    # The next search makes a new association, and it works.
    assert search(reactor, short, target).hits == 1
    assert relay.accepted == 2
    on_reactor(reactor, short.close)


@pytest.mark.parametrize("how", ["hang up", "close"])
def test_an_association_the_target_dropped_while_idle_is_retried_on_a_new_one(
    reactor: Any, pool: Z3950Pool, relay_to: Callable[[int], Relay], zebra: int, how: str
) -> None:
    relay = relay_to(zebra)
    target = target_at(relay, "Default")
    assert search(reactor, pool, target).hits == 1
    # The target's side goes (Zebra sees its connection end); our side hears of it only when
    # the next search sends its Search: the relay then hangs up (after a Close, for "close").
    on_reactor(reactor, lambda: relay.stale(how))
    answer = search(reactor, pool, target)
    assert (answer.hits, len(answer.records), answer.diagnostic) == (1, 1, "")
    assert relay.accepted == 2
    stale, fresh = relay.legs
    assert stale.sent()[-1] == "SearchRequest"  # sent on the stale one, never answered
    assert fresh.sent() == ["InitRequest", "SearchRequest", "PresentRequest"]
    assert pool.idle(PoolKey.of(target)) == 1


def test_after_libgates_own_idle_timeout_the_next_search_uses_a_new_association(
    reactor: Any, pool: Z3950Pool, relay_to: Callable[[int], Relay], libgate: int
) -> None:
    relay = relay_to(libgate)
    target = target_at(relay, "main")
    assert search(reactor, pool, target).hits == 1
    # libgate closes the association after LIBGATE_IDLE_TIMEOUT s without an APDU.
    wait_until(reactor, lambda: relay.open_legs == 0, "libgate closed the idle association")
    first = relay.legs[0]
    close = first.answered()[-1]
    assert isinstance(close, Close) and close.close_reason == 7  # lackOfActivity
    assert search(reactor, pool, target).hits == 1
    assert relay.accepted == 2
    assert relay.legs[1].sent() == ["InitRequest", "SearchRequest", "PresentRequest"]


def test_a_timed_out_search_leaves_its_connection_out_of_the_pool(
    reactor: Any, pool: Z3950Pool, relay_to: Callable[[int], Relay], zebra: int
) -> None:
    relay = relay_to(zebra)
    target = target_at(relay, "Default", timeout=1.0)
    assert search(reactor, pool, target).hits == 1
    key = PoolKey.of(target)
    assert pool.idle(key) == 1
    relay.holding = True  # the target stops answering
    z3950 = Z3950Target(reactor, pool)

    def union_search() -> Deferred[UnionSearch]:
        running = UnionSearch([target], QUERY, "猫的历史", lambda _: z3950, reactor, LONG)
        return running.done

    timed_out = on_reactor(reactor, union_search)
    assert timed_out.statuses["馆"].state is TargetState.TIMEOUT
    assert pool.idle(key) == 0
    wait_until(reactor, lambda: relay.open_legs == 0, "the timed-out connection dropped")
    relay.holding = False
    assert search(reactor, pool, target).hits == 1
    assert relay.accepted == 2
    assert relay.legs[0].sent() == ["InitRequest"] + ["SearchRequest", "PresentRequest"] + [
        "SearchRequest"
    ]


def test_the_cli_closes_its_pool_at_the_end(
    tmp_path: Path, relay_to: Callable[[int], Relay], zebra: int, reactor: Any
) -> None:
    relay = relay_to(zebra)
    config = tmp_path / "libgate.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{tmp_path / "c.db"}"

[[union.targets]]
name = "Zebra"
url = "z3950:127.0.0.1:{relay.port}/Default"
""",
        encoding="utf-8",
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "--config",
            str(config),
            "union",
            "search",
            "--json",
            "猫的历史",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    (status,) = json.loads(run.stdout)["targets"]
    assert (status["status"], status["hits"]) == ("ok", 1)
    wait_until(reactor, lambda: relay.open_legs == 0, "the command's connection closed")
    (leg,) = relay.legs
    assert leg.sent() == ["InitRequest", "SearchRequest", "PresentRequest", "Close"]


def test_the_portals_searcher_keeps_its_pool_between_searches(
    reactor: Any, relay_to: Callable[[int], Relay], zebra: int
) -> None:
    relay = relay_to(zebra)
    base = settings_from_dict({})
    target = target_at(relay, "Default")
    settings = replace(base, union=UnionSettings(targets=(target,), timeout=LONG))
    searcher = ReactorUnionSearcher(settings, reactor)
    for _ in range(2):
        outcome = searcher.search("猫的历史", None, LONG)  # from this (non-reactor) thread
        (library,) = outcome.libraries
        assert (library.state, library.hits) == ("ok", 1)
    assert relay.accepted == 1
    assert relay.legs[0].sent() == ["InitRequest"] + ["SearchRequest", "PresentRequest"] * 2
    on_reactor(reactor, searcher.pool.close)
    wait_until(reactor, lambda: relay.open_legs == 0, "the searcher's pool closed")
    assert relay.legs[0].sent()[-1] == "Close"
