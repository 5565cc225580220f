"""The union search's fan-out on a test clock: targets answer in any order, a slow target costs
its own timeout and nothing else, a failing one is reported, results are merged as they
arrive, and the whole ends by its deadline with what came."""

from __future__ import annotations

import io
from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from gateway.catalogue.query import Query, Term
from gateway.config import UnionTarget
from marc.iso2709 import frame_records
from tests.conftest import FIXTURES
from union.fanout import RawRecord, TargetAnswer, TargetState, UnionSearch

QUERY = Query(Term("any", "all", "明代"))
UTF8 = FIXTURES / "marc/real/cnmarc/bnu_cnmarc_10_utf8.iso"
GBK = FIXTURES / "marc/real/cnmarc/bnu_cnmarc_10_gbk.iso"


def records(path, syntax: str = "unimarc") -> tuple[RawRecord, ...]:
    frames = frame_records(io.BytesIO(path.read_bytes()))
    return tuple(RawRecord(str(c.number), c.data, syntax) for c in frames)


class Scripted:
    """A target whose answer the test gives by hand (the network is tested elsewhere)."""

    def __init__(self) -> None:
        self.answer: Deferred[TargetAnswer] = Deferred()
        self.on_searching: Callable[[], None] | None = None
        self.cancelled = False

    def search(self, target, query, on_searching) -> Deferred[TargetAnswer]:
        self.on_searching = on_searching

        def cancelled(_: Deferred[TargetAnswer]) -> None:
            self.cancelled = True

        self.answer = Deferred(cancelled)
        return self.answer


def start(clock: Clock, timeouts: dict[str, float], overall: float = 30, on_change=None):
    targets = [
        UnionTarget(name, f"z3950:127.0.0.1:{2100 + i}/main", timeout=t)
        for i, (name, t) in enumerate(timeouts.items())
    ]
    scripted = {t.name: Scripted() for t in targets}
    search = UnionSearch(
        targets, QUERY, "明代", lambda t: scripted[t.name], clock, overall, on_change=on_change
    )
    return search, scripted


def test_each_change_is_told_as_it_happens_and_the_last_after_the_end() -> None:
    """What a live page follows: a target connected, a target's records arrived (they are in
    the merged view when it is told), a deadline; told once more when the search has ended."""
    clock = Clock()
    seen: list[tuple[dict[str, str], int, bool]] = []
    holder: list[UnionSearch] = []

    def changed() -> None:
        search = holder[0]
        states = {name: s.state.value for name, s in search.statuses.items()}
        seen.append((states, len(search.merged()), search.finished))

    search, targets = start(clock, {"a": 5, "b": 5}, on_change=changed)
    holder.append(search)
    assert targets["a"].on_searching is not None
    targets["a"].on_searching()
    assert seen[-1] == ({"a": "searching", "b": "connecting"}, 0, False)
    targets["a"].answer.callback(TargetAnswer(1, records(UTF8)[:1]))
    assert seen[-1] == ({"a": "ok", "b": "connecting"}, 1, False)
    told = len(seen)
    clock.advance(5)  # b's deadline: the last target final ends the search, told once
    assert seen[told:] == [({"a": "ok", "b": "timeout"}, 1, True)]
    told = len(seen)
    clock.advance(60)
    assert len(seen) == told  # nothing after the end


def test_a_cancelled_search_ends_at_once_and_drops_every_target_on_its_way() -> None:
    clock = Clock()
    search, targets = start(clock, {"a": 30, "b": 30})
    targets["a"].answer.callback(TargetAnswer(1, records(UTF8)[:1]))
    search.cancel()
    assert search.finished and targets["b"].cancelled and not targets["a"].cancelled
    assert search.statuses["b"].state is TargetState.TIMEOUT
    assert search.statuses["b"].error == "the search was stopped"
    assert len(search.merged()) == 1


def test_targets_answer_in_any_order_and_the_same_works_merge() -> None:
    clock = Clock()
    search, targets = start(clock, {"北京师范大学": 10, "北师大GBK": 10})
    targets["北京师范大学"].on_searching()
    assert search.statuses["北京师范大学"].state is TargetState.SEARCHING
    assert search.statuses["北师大GBK"].state is TargetState.CONNECTING
    clock.advance(0.2)
    targets["北师大GBK"].answer.callback(TargetAnswer(42, records(GBK)))
    assert not search.finished
    first = search.merged()
    assert 1 < len(first) <= 10 and all(m.targets == ["北师大GBK"] for m in first)
    clock.advance(0.3)
    targets["北京师范大学"].answer.callback(TargetAnswer(40, records(UTF8)))
    assert search.finished
    merged = search.merged()
    assert len(merged) == len(first)  # the same records from both: one result each
    assert all(m.targets == ["北师大GBK", "北京师范大学"] for m in merged)
    gbk = search.statuses["北师大GBK"]
    assert (gbk.state, gbk.hits, gbk.ms) == (TargetState.OK, 42, 200)


def test_a_slow_target_costs_its_timeout_and_nothing_else() -> None:
    clock = Clock()
    search, targets = start(clock, {"fast": 5, "silent": 2})
    targets["fast"].answer.callback(TargetAnswer(10, records(UTF8)[:3]))
    clock.advance(1.9)
    assert not search.finished
    clock.advance(0.1)
    assert search.finished
    silent = search.statuses["silent"]
    assert silent.state is TargetState.TIMEOUT and silent.ms == 2000
    assert targets["silent"].cancelled
    assert "within 2 s" in silent.error
    assert len(search.merged()) == 3


def test_the_overall_deadline_returns_what_arrived() -> None:
    clock = Clock()
    search, targets = start(clock, {"a": 60, "b": 60}, overall=3)
    targets["a"].answer.callback(TargetAnswer(1, records(UTF8)[:1]))
    clock.advance(3)
    assert search.finished
    assert search.statuses["b"].state is TargetState.TIMEOUT
    assert len(search.merged()) == 1
    # The deadline dropped the target still on its way (its connection closes): nothing late
    # can arrive.
    assert targets["b"].cancelled and targets["b"].answer.called
    assert search.statuses["b"].state is TargetState.TIMEOUT and len(search.merged()) == 1


def test_failures_and_diagnostics_are_per_target() -> None:
    clock = Clock()
    search, targets = start(clock, {"down": 5, "no-index": 5, "ok": 5})
    targets["down"].answer.errback(ConnectionRefusedError("connection refused"))
    targets["no-index"].answer.callback(TargetAnswer(0, diagnostic="unsupported use attribute"))
    broken = RawRecord("x", b"00026nam  2200025   4500\x1e", "unimarc")
    targets["ok"].answer.callback(TargetAnswer(2, (broken, *records(UTF8)[:1])))
    assert search.finished
    states = {name: s.state for name, s in search.statuses.items()}
    assert states == {
        "down": TargetState.FAILED,
        "no-index": TargetState.DIAGNOSTIC,
        "ok": TargetState.OK,
    }
    assert "refused" in search.statuses["down"].error
    assert search.statuses["no-index"].error == "unsupported use attribute"
    assert len(search.statuses["ok"].rejected) == 1 and len(search.merged()) == 1
