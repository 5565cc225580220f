"""The decisions SIP2 used to take itself, now the engine's, on both storage engines: offline
returns, held copies returned at a kiosk, who may lift a block, a hold's status, the payment
currency. And the RERO shape: an action refuses with every reason at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.circulation.availability import ShelfState
from gateway.circulation.checks import (
    CHECKIN_CHECKS,
    CHECKOUT_CHECKS,
    PLACE_HOLD_CHECKS,
    RENEW_CHECKS,
)
from gateway.circulation.engine import (
    DESK,
    SELF_CHECK,
    CheckinResult,
    CheckoutResult,
    Engine,
    HoldResult,
)
from gateway.circulation.reasons import reason
from gateway.circulation.states import Channel, CirculationState, HoldState, LoanState
from gateway.store import Store
from tests.circulation_support import FixedClock, build_library


@pytest.fixture
def library(store: Store, tmp_path: Path) -> tuple[Engine, FixedClock, Store]:
    engine, clock = build_library(store, tmp_path)
    return engine, clock, store


def codes(result) -> list[str]:
    return [r.code for r in result.reasons]


def loan_open(store: Store, barcode: str) -> bool:
    with store.read() as tx:
        return bool(
            tx.scalar(
                "SELECT count(*) FROM loans l JOIN items i ON i.id = l.item_pk"
                " WHERE i.barcode = ? AND l.returned_at IS NULL",
                (barcode,),
            )
        )


def events(store: Store, action: str) -> list[tuple[str, dict[str, Any]]]:
    with store.read() as tx:
        rows = tx.execute(
            "SELECT channel, details FROM circulation_events WHERE action = ? ORDER BY id",
            (action,),
        )
    return [(channel, json.loads(details)) for channel, details in rows]


# --- offline returns -----------------------------------------------------------------------------


def test_an_offline_return_at_a_kiosk_is_recorded_and_trapped_not_refused(library) -> None:
    engine, _, store = library
    assert engine.checkout("A", "O1").ok
    assert engine.place_hold("B", record=("main", "T-ONE")).ok
    online = engine.checkin("O1", SELF_CHECK)  # R7: refused, nothing changes
    assert not online.ok and [r.rule for r in online.reasons] == ["R7"]
    assert online.to_desk and loan_open(store, "O1")
    offline = engine.checkin("O1", SELF_CHECK, offline=True)
    assert isinstance(offline, CheckinResult)
    assert offline.ok and offline.offline and offline.to_desk
    assert offline.trapped_for is not None and offline.trapped_for.barcode == "B"  # R6
    assert offline.pickup_desk == "二楼借书处" and offline.pickup_deadline
    assert not loan_open(store, "O1")
    assert engine.item_info("O1").state == ShelfState.ON_HOLD_SHELF
    ((channel, details),) = events(store, "checkin")
    assert channel == "selfcheck" and details == {"offline": True}


def test_an_offline_return_without_holds_goes_back_on_the_shelf(library) -> None:
    engine, _, _ = library
    assert engine.checkout("A", "O1").ok
    back = engine.checkin("O1", SELF_CHECK, offline=True)
    assert back.ok and not back.to_desk and back.trapped_for is None
    assert engine.item_info("O1").available


def test_checkin_has_no_desk_trap_switch(library) -> None:
    engine, _, _ = library
    with pytest.raises(TypeError):
        engine.checkin("O1", SELF_CHECK, desk_trap=True)


# --- a held copy returned at a kiosk goes to the desk ---------------------------------------------


def test_a_trapped_copy_dropped_at_a_kiosk_is_sent_to_the_desk(library) -> None:
    engine, _, _ = library
    assert engine.checkout("A", "O1").ok
    assert engine.place_hold("B", record=("main", "T-ONE")).ok
    assert engine.checkin("O1", DESK).trapped_for is not None
    again = engine.checkin("O1", SELF_CHECK)
    assert codes(again) == ["not_on_loan"] and again.to_desk


def test_a_copy_of_a_title_with_a_queue_dropped_at_a_kiosk_is_sent_to_the_desk(library) -> None:
    engine, _, store = library
    assert engine.checkout("A", "W1").ok
    with store.write() as tx:  # W2 went missing; B then holds the title
        tx.execute("UPDATE items SET status = '丢失' WHERE barcode = 'W2'")
    assert engine.place_hold("B", record=("main", "T-TWO")).ok
    found = engine.checkin("W2", SELF_CHECK)  # W2 turns up in the kiosk's return slot
    assert codes(found) == ["not_on_loan"] and found.to_desk
    plain = engine.checkin("X1", SELF_CHECK)  # nobody waits for X1's title: the shelf
    assert codes(plain) == ["not_on_loan"] and not plain.to_desk


# --- only the desk lifts a block ------------------------------------------------------------------


def test_only_the_desk_lifts_a_block(library) -> None:
    engine, _, store = library
    assert engine.block_patron("B", "card lost", channel=SELF_CHECK).ok  # anyone may block
    refused = engine.enable_patron("B", channel=SELF_CHECK)
    assert not refused.ok and codes(refused) == ["enable_at_desk"]
    assert "服务台" in refused.reasons[0].zh and "service desk" in refused.reasons[0].en
    assert engine.patron_summary("B").patron.status == "blocked"
    assert events(store, "patron_enabled") == []
    enabled = engine.enable_patron("B", channel=DESK)
    assert enabled.ok and enabled.patron is not None and enabled.patron.status == "active"
    assert [channel for channel, _ in events(store, "patron_enabled")] == ["desk"]


def test_a_kiosk_enabling_an_unknown_reader_learns_both_obstacles(library) -> None:
    engine, _, _ = library
    assert codes(engine.enable_patron("NOBODY", channel=SELF_CHECK)) == [
        "enable_at_desk",
        "patron_unknown",
    ]
    assert codes(engine.enable_patron("NOBODY", channel=DESK)) == ["patron_unknown"]


# --- hold status ----------------------------------------------------------------------------------


def test_hold_status_reports_a_waiting_and_a_ready_hold(library) -> None:
    engine, _, _ = library
    assert engine.checkout("A", "O1").ok
    placed = engine.place_hold("B", record=("main", "T-ONE"))
    assert engine.place_hold("C", record=("main", "T-ONE")).ok
    waiting = engine.hold_status("C", record=("main", "T-ONE"))
    assert isinstance(waiting, HoldResult) and waiting.ok
    assert waiting.hold_state == HoldState.WAITING and waiting.queue_position == 2
    assert waiting.expires_at and waiting.record is not None
    assert waiting.record.title == "书名T-ONE"
    engine.checkin("O1", DESK)  # trapped for B
    ready = engine.hold_status("B", item_barcode="O1")
    assert ready.ok and ready.hold_id == placed.hold_id
    assert ready.hold_state == HoldState.READY and ready.queue_position is None
    assert ready.pickup_desk == "二楼借书处" and ready.pickup_deadline
    assert engine.hold_status("C", item_barcode="O1").queue_position == 1


def test_hold_status_refuses_with_a_reason(library) -> None:
    engine, _, _ = library
    none = engine.hold_status("A", record=("main", "T-ONE"))
    assert not none.ok and codes(none) == ["hold_unknown"] and none.reasons[0].rule == "R12"
    assert codes(engine.hold_status("NOBODY", record=("main", "T-ONE"))) == ["patron_unknown"]
    assert codes(engine.hold_status("A", item_barcode="NOCOPY")) == ["item_unknown"]
    assert codes(engine.hold_status("A", record=("main", "NOREC"))) == ["record_unknown"]


# --- currency in pay_fee --------------------------------------------------------------------------


def test_pay_fee_refuses_a_foreign_currency_and_records_nothing(library) -> None:
    engine, _, store = library
    assert engine.add_fee("A", 500).ok
    foreign = engine.pay_fee("A", 500, currency="USD", channel=SELF_CHECK)
    assert not foreign.ok and codes(foreign) == ["currency_not_accepted"]
    assert "CNY" in foreign.reasons[0].zh and "CNY" in foreign.reasons[0].en
    assert foreign.balance == 500 and events(store, "fee_paid") == []
    # every obstacle at once: a foreign currency and more than is owed
    both = engine.pay_fee("A", 900, currency="JPY")
    assert codes(both) == ["currency_not_accepted", "payment_exceeds_balance"]
    assert engine.pay_fee("A", 200, currency="cny").ok  # the code, whatever its case
    assert engine.pay_fee("A", 300).balance == 0  # none said: the library's


# --- all the reasons at once ----------------------------------------------------------------------


def test_checkout_names_every_obstacle(library) -> None:
    engine, _, _ = library
    for barcode in ("O1", "X1", "W1"):
        assert engine.checkout("A", barcode).ok  # A (本科生) is at max_loans 3
    assert engine.block_patron("A").ok
    refused = engine.checkout("A", "R1")
    assert isinstance(refused, CheckoutResult) and not refused.ok
    assert codes(refused) == ["patron_blocked", "item_not_circulating", "too_many_loans"]
    assert refused.reasons[1].rule == "R1"
    assert "不外借" in refused.message("zh") and "limit" in refused.message("en")


def test_place_hold_names_every_obstacle(library) -> None:
    engine, _, _ = library
    assert engine.checkout("A", "O1").ok
    assert engine.block_patron("A").ok
    refused = engine.place_hold("A", record=("main", "T-ONE"))
    assert codes(refused) == ["patron_blocked", "title_on_loan_to_you"]
    assert [r.rule for r in refused.reasons] == ["", "R3"]


def test_renew_names_every_obstacle(library) -> None:
    engine, _, _ = library
    assert engine.checkout("A", "O1").ok
    assert engine.renew("A", "O1").ok  # the one renewal 本科生 may make
    assert engine.place_hold("B", record=("main", "T-ONE")).ok
    assert engine.block_patron("A").ok
    refused = engine.renew("A", "O1")
    assert codes(refused) == ["patron_blocked", "renew_held_by_other", "renewals_exhausted"]


def test_each_action_declares_its_checks() -> None:
    # The lists are the one place a reader finds what an action checks; the rules they
    # enforce are named there (R1, R14 for checkout; R5 for renew; R7 for checkin; R1-R4, R15
    # for a hold).
    names = {check.__name__ for check in CHECKOUT_CHECKS}
    assert {"copy_circulates", "copy_not_trapped_for_another", "within_loan_limit"} <= names
    assert "nobody_else_waits" in {check.__name__ for check in RENEW_CHECKS}
    assert "self_check_cannot_return_a_held_title" in {c.__name__ for c in CHECKIN_CHECKS}
    assert len(PLACE_HOLD_CHECKS) == 8
    assert "not_a_borrowed_copy" in {check.__name__ for check in PLACE_HOLD_CHECKS}


# --- availability through the policy's predicate --------------------------------------------------


def test_a_reading_room_copy_on_the_shelf_is_library_use_only(library) -> None:
    engine, _, store = library
    with store.read() as tx:
        record_pk = int(tx.scalar("SELECT record_pk FROM items WHERE barcode = 'R1'"))
        ming_pk = int(tx.scalar("SELECT record_pk FROM items WHERE barcode = 'M1'"))
    (copy,) = engine.availability([record_pk])[record_pk].copies
    assert copy.state == ShelfState.LIBRARY_USE_ONLY and not copy.available
    item = engine.item_info("R1")
    assert item is not None and item.state == ShelfState.LIBRARY_USE_ONLY
    assert item.circulation == CirculationState.LIBRARY_USE_ONLY
    assert not item.available and not item.circulates
    assert engine.checkout("A", "M1").ok
    states = {c.barcode: c.state for c in engine.availability([ming_pk])[ming_pk].copies}
    assert states == {"M1": ShelfState.ON_LOAN, "M2": ShelfState.AVAILABLE}


def test_a_copy_with_another_status_word_is_unavailable(library) -> None:
    engine, _, store = library
    with store.write() as tx:
        tx.execute("UPDATE items SET status = '丢失' WHERE barcode = 'X1'")
    item = engine.item_info("X1")
    assert item is not None and item.state == ShelfState.UNAVAILABLE and not item.available
    assert item.circulation == "lost"


def test_a_copys_circulation_state_comes_from_the_availability_rule(library) -> None:
    engine, _, _store = library
    policy = engine.policy
    on_shelf = policy.circulation.on_shelf_status

    def where(status: str, item_type: str, on_loan: bool = False, trapped: bool = False):
        return policy.circulation_state(status, item_type, on_loan=on_loan, trapped=trapped)

    assert where(on_shelf, "普通外借资料") == CirculationState.AVAILABLE
    assert where(on_shelf, "阅览资料") == CirculationState.LIBRARY_USE_ONLY
    assert where(on_shelf, "no such type") == CirculationState.LIBRARY_USE_ONLY  # closed
    assert where(on_shelf, "阅览资料", on_loan=True) == CirculationState.ON_LOAN
    assert where(on_shelf, "普通外借资料", trapped=True) == CirculationState.ON_HOLD_SHELF
    assert where(policy.circulation.on_loan_status, "普通外借资料") == CirculationState.ON_LOAN
    assert where("丢失", "普通外借资料") == CirculationState.LOST
    assert where("剔旧?", "阅览资料") == CirculationState.OTHER


def test_a_readers_open_holds_come_in_the_order_they_were_placed(library) -> None:
    engine, _, _store = library
    assert engine.checkout("A", "O1").ok
    assert engine.checkout("A", "M1").ok
    assert engine.checkout("C", "M2").ok
    assert engine.place_hold("B", record=("main", "T-ONE")).ok  # waits
    assert engine.place_hold("B", record=("main", "T-MING")).ok
    assert engine.checkin("M1", DESK).ok  # trapped for B: ready
    summary = engine.patron_summary("B")
    assert summary is not None
    assert [(h.record_id, h.state) for h in summary.open_holds] == [
        ("T-ONE", HoldState.WAITING),
        ("T-MING", HoldState.READY),
    ]


def test_channels_keep_their_words() -> None:
    assert (DESK, SELF_CHECK, Channel.SYSTEM) == ("desk", "selfcheck", "system")
    assert reason("patron_unknown", patron="X").zh.startswith("读者证号 X")


def test_a_readers_loan_is_on_loan_until_its_due_date_then_overdue(library) -> None:
    engine, clock, _store = library
    assert engine.checkout("A", "O1").ok
    summary = engine.patron_summary("A")
    assert summary is not None
    assert [loan.state for loan in summary.loans] == [LoanState.ON_LOAN]
    clock.advance(days=31)  # the 本科生 loan period is 30 days
    summary = engine.patron_summary("A")
    assert summary is not None
    assert [loan.state for loan in summary.loans] == [LoanState.OVERDUE]
