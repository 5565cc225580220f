"""Every reservation rule R1-R15, by name, on both engines. Each test fails if its rule breaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.circulation.engine import DESK, SELF_CHECK, Engine
from gateway.store import Store
from tests.circulation_support import FixedClock, build_library


@pytest.fixture
def library(store: Store, tmp_path: Path) -> tuple[Engine, FixedClock, Store]:
    engine, clock = build_library(store, tmp_path)
    return engine, clock, store


def codes(outcome) -> list[str]:
    return [r.code for r in outcome.reasons]


def rules(outcome) -> list[str]:
    return [r.rule for r in outcome.reasons]


def hold_state(store: Store, hold_id: int) -> str:
    with store.read() as tx:
        return str(tx.scalar("SELECT state FROM holds WHERE id = ?", (hold_id,)))


def item_status(store: Store, barcode: str) -> str:
    with store.read() as tx:
        return str(tx.scalar("SELECT status FROM items WHERE barcode = ?", (barcode,)))


def test_R1_only_titles_with_a_circulating_copy_accept_holds(library) -> None:
    engine, _, _ = library
    refused = engine.place_hold("A", record=("main", "T-READ"))
    assert not refused.ok and rules(refused) == ["R1"]
    assert codes(engine.checkout("A", "R1")) == ["item_not_circulating"]


def test_R2_no_hold_while_a_copy_is_on_the_shelf(library) -> None:
    engine, _, _ = library
    refused = engine.place_hold("A", record=("main", "T-TWO"))
    assert rules(refused) == ["R2"] and "直接借阅" in refused.reasons[0].zh
    assert engine.checkout("B", "W1").ok
    assert rules(engine.place_hold("A", record=("main", "T-TWO"))) == ["R2"]  # W2 still there
    assert engine.checkout("C", "W2").ok
    assert engine.place_hold("A", record=("main", "T-TWO")).ok


def test_R3_no_hold_on_a_title_you_have_on_loan(library) -> None:
    engine, _, _ = library
    assert engine.checkout("A", "O1").ok
    assert rules(engine.place_hold("A", record=("main", "T-ONE"))) == ["R3"]
    assert engine.place_hold("B", record=("main", "T-ONE")).ok


def test_R4_hold_limit_and_no_second_hold_on_a_title(library) -> None:
    engine, _, _ = library
    for barcode in ("O1", "X1", "M1"):
        assert engine.checkout("D", barcode).ok
    assert engine.checkout("C", "M2").ok
    assert engine.place_hold("A", record=("main", "T-ONE")).ok
    duplicate = engine.place_hold("A", record=("main", "T-ONE"))
    assert codes(duplicate) == ["already_held"] and rules(duplicate) == ["R4"]
    assert engine.place_hold("A", item_barcode="X1").ok  # by a copy of the title
    over = engine.place_hold("A", record=("main", "T-MING"))  # 本科生 may hold 2
    assert codes(over) == ["too_many_holds"] and rules(over) == ["R4"]


def test_R5_no_renewal_when_another_reader_waits(library) -> None:
    engine, _, _ = library
    assert engine.checkout("A", "O1").ok
    assert engine.renew("A", "O1").ok
    assert engine.checkout("D", "X1").ok
    assert engine.place_hold("B", record=("main", "T-X")).ok
    for channel in (DESK, SELF_CHECK):
        refused = engine.renew("D", "X1", channel)
        assert rules(refused) == ["R5"]
    renewals = engine.renew_all("D", SELF_CHECK).renewals
    assert [rules(o) for o in renewals] == [["R5"]]


def test_R6_desk_return_traps_for_the_oldest_waiting_hold(library) -> None:
    engine, clock, store = library
    assert engine.checkout("A", "O1").ok
    first = engine.place_hold("B", record=("main", "T-ONE"))
    clock.advance(hours=1)
    second = engine.place_hold("C", record=("main", "T-ONE"))
    returned = engine.checkin("O1", DESK)
    assert returned.ok and returned.trapped_for is not None and returned.trapped_for.barcode == "B"
    assert [r.rule for r in returned.notes] == ["R6"]
    assert (
        hold_state(store, first.hold_id) == "ready"
        and hold_state(store, second.hold_id) == "waiting"
    )
    assert returned.pickup_desk == "二楼借书处"  # R10
    assert item_status(store, "O1") == "预约到书"
    with store.read() as tx:
        notice = tx.one("SELECT kind, to_address, body FROM notices WHERE kind = 'hold_ready'")
    assert notice is not None and notice[1] == "b@example.cn" and "二楼借书处" in notice[2]


def test_R7_self_check_refuses_to_return_a_held_title_and_changes_nothing(library) -> None:
    engine, _, store = library
    assert engine.checkout("A", "O1").ok
    hold = engine.place_hold("B", record=("main", "T-ONE"))
    with store.read() as tx:
        before = (
            tx.execute("SELECT * FROM loans"),
            tx.execute("SELECT * FROM holds"),
            tx.execute("SELECT status FROM items"),
        )
    refused = engine.checkin("O1", SELF_CHECK)
    assert not refused.ok and rules(refused) == ["R7"] and "服务台" in refused.reasons[0].zh
    with store.read() as tx:
        after = (
            tx.execute("SELECT * FROM loans"),
            tx.execute("SELECT * FROM holds"),
            tx.execute("SELECT status FROM items"),
        )
    assert after == before
    assert hold_state(store, hold.hold_id) == "waiting"
    assert engine.checkin("O1", DESK).ok  # staff return it by hand


def test_self_check_return_without_holds_is_fine(library) -> None:
    engine, _, store = library
    assert engine.checkout("A", "O1").ok
    assert engine.checkin("O1", SELF_CHECK).ok
    assert item_status(store, "O1") == "归还"
    assert codes(engine.checkin("O1", SELF_CHECK)) == ["not_on_loan"]


def test_R8_waiting_hold_expires_after_60_days(library) -> None:
    engine, clock, store = library
    assert engine.checkout("A", "O1").ok
    hold = engine.place_hold("B", record=("main", "T-ONE"))
    clock.advance(days=59, hours=23)
    assert engine.process_expiry().expired == 0
    clock.advance(hours=1)
    report = engine.process_expiry()
    assert report.expired == 1 and hold_state(store, hold.hold_id) == "expired"
    assert engine.process_expiry().expired == 0  # twice changes nothing
    with store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM notices WHERE kind = 'hold_expired'") == 1


def test_R9_ready_hold_not_collected_in_7_days_goes_to_the_next_reader(library) -> None:
    engine, clock, store = library
    assert engine.checkout("A", "O1").ok
    first = engine.place_hold("B", record=("main", "T-ONE"))
    second = engine.place_hold("D", record=("main", "T-ONE"))
    engine.checkin("O1", DESK)
    clock.advance(days=7, seconds=1)
    report = engine.process_expiry()
    assert report.no_shows == 1 and report.trapped == 1
    assert hold_state(store, first.hold_id) == "no_show"
    assert hold_state(store, second.hold_id) == "ready"
    clock.advance(days=8)
    engine.process_expiry()
    assert hold_state(store, second.hold_id) == "no_show"
    assert item_status(store, "O1") == "归还"  # no one left: back on the shelf


def test_R10_pickup_place_is_the_desk_of_the_copys_location(library) -> None:
    engine, _, _ = library
    assert engine.checkout("A", "M2").ok  # 综合阅览室-1楼 → 一楼借书处
    assert engine.checkout("C", "M1").ok
    assert engine.place_hold("B", record=("main", "T-MING")).ok
    assert engine.checkin("M2", DESK).pickup_desk == "一楼借书处"


def test_R11_more_than_two_no_shows_suspend_holds_for_60_days(library) -> None:
    engine, clock, store = library
    assert engine.checkout("D", "O1").ok
    for round_number in range(3):
        assert engine.place_hold("B", record=("main", "T-ONE")).ok, round_number
        engine.checkin("O1", DESK)
        clock.advance(days=8)
        engine.process_expiry()
        assert engine.checkout("D", "O1").ok
    with store.read() as tx:
        until, count = tx.one(
            "SELECT hold_suspended_until, no_show_count FROM patrons WHERE barcode = 'B'"
        )
    assert until is not None and count == 0  # the count starts again after the suspension
    refused = engine.place_hold("B", record=("main", "T-ONE"))
    assert rules(refused) == ["R15"]
    clock.advance(days=60)
    assert engine.place_hold("B", record=("main", "T-ONE")).ok


def test_R11_two_no_shows_do_not_suspend(library) -> None:
    engine, clock, store = library
    assert engine.checkout("D", "O1").ok
    for _ in range(2):
        assert engine.place_hold("B", record=("main", "T-ONE")).ok
        engine.checkin("O1", DESK)
        clock.advance(days=8)
        engine.process_expiry()
        assert engine.checkout("D", "O1").ok
    assert engine.place_hold("B", record=("main", "T-ONE")).ok


def test_R12_cancel_any_time_and_a_ready_copy_moves_on(library) -> None:
    engine, _, store = library
    assert engine.checkout("A", "O1").ok
    first = engine.place_hold("B", record=("main", "T-ONE"))
    second = engine.place_hold("C", record=("main", "T-ONE"))
    assert engine.cancel_hold("C", record=("main", "T-ONE")).ok
    assert hold_state(store, second.hold_id) == "cancelled"
    engine.checkin("O1", DESK)
    third = engine.place_hold("D", item_barcode="O1")
    assert engine.cancel_hold("B", item_barcode="O1").ok  # a ready hold: not a no-show
    assert hold_state(store, first.hold_id) == "cancelled"
    assert hold_state(store, third.hold_id) == "ready"
    with store.read() as tx:
        assert tx.scalar("SELECT no_show_count FROM patrons WHERE barcode = 'B'") == 0
    assert rules(engine.cancel_hold("B", item_barcode="O1")) == ["R12"]


def test_R13_notices_only_with_an_email_and_in_the_same_transaction(library) -> None:
    engine, _, store = library
    assert engine.checkout("A", "O1").ok
    assert engine.place_hold("C", record=("main", "T-ONE")).ok  # C has no email
    assert engine.place_hold("B", record=("main", "T-ONE")).ok
    with store.read() as tx:
        rows = tx.execute("SELECT kind, to_address, subject FROM notices")
    assert rows == [("hold_placed", "b@example.cn", "预约成功：书名T-ONE")]


def test_R14_a_trapped_copy_goes_only_to_its_reader(library) -> None:
    engine, _, store = library
    assert engine.checkout("A", "O1").ok
    hold = engine.place_hold("B", record=("main", "T-ONE"))
    engine.checkin("O1", DESK)
    for channel in (DESK, SELF_CHECK):
        assert rules(engine.checkout("A", "O1", channel)) == ["R14"]  # not even the returner
        assert rules(engine.checkout("D", "O1", channel)) == ["R14"]
    picked = engine.checkout("B", "O1", SELF_CHECK)
    assert picked.ok and [r.code for r in picked.notes] == ["hold_fulfilled"]
    assert hold_state(store, hold.hold_id) == "fulfilled"


def test_R15_suspended_reader_cannot_place_holds(library) -> None:
    engine, clock, store = library
    assert engine.checkout("A", "O1").ok
    with store.write() as tx:
        tx.execute(
            "UPDATE patrons SET hold_suspended_until = '2026-04-01T00:00:00Z' WHERE barcode = 'B'"
        )
    refused = engine.place_hold("B", record=("main", "T-ONE"))
    assert rules(refused) == ["R15"] and "2026-04-01" in refused.reasons[0].zh
    clock.set(clock.now().replace(month=4, day=2))
    assert engine.place_hold("B", record=("main", "T-ONE")).ok


def test_loan_limit_and_renewal_limit(library) -> None:
    engine, _, _ = library
    for barcode in ("O1", "X1", "W1"):
        assert engine.checkout("A", barcode).ok
    assert codes(engine.checkout("A", "W2")) == ["too_many_loans"]
    assert engine.renew("A", "O1").ok
    assert codes(engine.renew("A", "O1")) == ["renewals_exhausted"]
    assert codes(engine.renew("B", "O1")) == ["loan_unknown"]


def test_every_action_is_in_the_audit_log(library) -> None:
    engine, _, store = library
    engine.checkout("A", "O1")
    engine.place_hold("B", record=("main", "T-ONE"))
    engine.checkin("O1", DESK)
    engine.checkout("B", "O1")
    with store.read() as tx:
        actions = [r[0] for r in tx.execute("SELECT action FROM circulation_events ORDER BY id")]
    assert actions == [
        "checkout",
        "hold_placed",
        "checkin",
        "hold_trapped",
        "hold_fulfilled",
        "checkout",
    ]


def test_availability_view(library) -> None:
    engine, _, store = library
    engine.checkout("A", "O1")
    engine.place_hold("B", record=("main", "T-ONE"))
    engine.place_hold("C", record=("main", "T-ONE"))
    with store.read() as tx:
        record_pk = tx.scalar("SELECT id FROM bib_records WHERE record_id = 'T-ONE'")
    view = engine.availability([record_pk])[record_pk]
    assert view.hold_queue == 2
    (copy,) = view.copies
    assert not copy.available and copy.due_at is not None and not copy.on_hold_shelf
    engine.checkin("O1", DESK)
    (copy,) = engine.availability([record_pk])[record_pk].copies
    assert copy.on_hold_shelf and copy.pickup_desk == "二楼借书处"


def test_the_audit_log_is_append_only(library) -> None:
    engine, _, store = library
    engine.checkout("A", "O1")
    for statement in (
        "UPDATE circulation_events SET action = 'x'",
        "DELETE FROM circulation_events",
    ):
        with pytest.raises(Exception, match="append-only"), store.write() as tx:
            tx.execute(statement)
    with store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM circulation_events") == 1
