"""What a SIP2 self-check server asks of the engine, on both engines: fees and payments
(idempotent by transaction id), the reader's account summary and its flags, blocking a card,
a copy's circulation state, item properties and PIN checks."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any, TypedDict, Unpack

import pytest

from gateway.circulation import storage
from gateway.circulation.engine import DESK, SELF_CHECK, Engine
from gateway.circulation.money import format_amount, parse_amount
from gateway.circulation.policy import Policy
from gateway.config import ConfigError, settings_from_dict
from gateway.store import Store
from gateway.store.engine import IntegrityViolation
from tests.circulation_support import SETTINGS, FixedClock, build_library


@pytest.fixture
def library(store: Store, tmp_path: Path) -> tuple[Engine, FixedClock, Store]:
    engine, clock = build_library(store, tmp_path)
    return engine, clock, store


def codes(outcome) -> list[str]:
    return [r.code for r in outcome.reasons]


def note_codes(outcome) -> list[str]:
    return [r.code for r in outcome.notes]


def events(store: Store, action: str) -> list[dict[str, Any]]:
    with store.read() as tx:
        rows = tx.execute(
            "SELECT channel, details FROM circulation_events WHERE action = ? ORDER BY id",
            (action,),
        )
    return [{"channel": channel, **json.loads(details)} for channel, details in rows]


class Limits(TypedDict, total=False):
    """The [circulation] settings these tests change."""

    fee_limit: int
    overdue_limit: int


def with_circulation(engine: Engine, **changes: Unpack[Limits]) -> Engine:
    """The same library under a changed [circulation] section."""
    circulation = dataclasses.replace(SETTINGS.circulation, **changes)
    settings = dataclasses.replace(SETTINGS, circulation=circulation)
    return Engine(engine.store, Policy.from_settings(settings), engine.clock)


# --- fees ------------------------------------------------------------------------------------


def test_add_fee_records_it_with_the_configured_currency_and_an_audit_event(library) -> None:
    engine, _, store = library
    added = engine.add_fee("A", 350, kind="damage", description="书页撕破")
    assert added.ok and added.fee_id is not None and added.balance == 350
    assert note_codes(added) == ["fee_added"] and "3.50 CNY" in added.notes[0].zh
    second = engine.add_fee("A", 100, currency="JPY", channel=SELF_CHECK)
    assert second.ok and second.fee_id != added.fee_id
    fees = engine.fees_of("A")
    assert [(f.id, f.kind, f.amount, f.paid, f.outstanding, f.currency) for f in fees] == [
        (added.fee_id, "damage", 350, 0, 350, "CNY"),
        (second.fee_id, "other", 100, 0, 100, "JPY"),
    ]
    assert fees[0].description == "书页撕破" and fees[0].created_at == "2026-03-02T09:00:00Z"
    assert fees[0].closed_at is None
    logged = events(store, "fee_added")
    assert [(e["channel"], e["fee_id"], e["amount"]) for e in logged] == [
        (DESK, added.fee_id, 350),
        (SELF_CHECK, second.fee_id, 100),
    ]
    assert engine.fees_of("B") == [] and engine.fees_of("NOBODY") == []


def test_add_fee_refusals_change_nothing(library) -> None:
    engine, _, store = library
    assert codes(engine.add_fee("NOBODY", 100)) == ["patron_unknown"]
    assert codes(engine.add_fee("A", 0)) == ["fee_amount_invalid"]
    assert codes(engine.add_fee("A", -5)) == ["fee_amount_invalid"]
    refused = engine.add_fee("A", 100, kind="parking")
    assert codes(refused) == ["fee_kind_unknown"] and "replacement" in refused.reasons[0].en
    with store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM fees") == 0
    assert events(store, "fee_added") == []


def test_payment_goes_to_open_fees_oldest_first_and_closes_each_paid_fee(library) -> None:
    engine, clock, store = library
    first = engine.add_fee("A", 300, kind="overdue")
    clock.advance(hours=1)
    second = engine.add_fee("A", 500, kind="replacement")
    paid = engine.pay_fee("A", 400, payment_type="01", transaction_id="T-1", channel=SELF_CHECK)
    assert paid.ok and paid.amount_paid == 400 and paid.balance == 400
    assert paid.fee_id == first.fee_id and note_codes(paid) == ["fee_paid"]
    by_id = {f.id: f for f in engine.fees_of("A")}
    assert by_id[first.fee_id].outstanding == 0 and by_id[first.fee_id].closed_at is not None
    assert by_id[second.fee_id].paid == 100 and by_id[second.fee_id].closed_at is None
    summary = engine.patron_summary("A")
    assert summary is not None and [f.id for f in summary.fees] == [second.fee_id]
    assert summary.fees_total == 400
    clock.advance(hours=1)
    rest = engine.pay_fee("A", 400)
    assert rest.ok and rest.balance == 0 and rest.fee_id == second.fee_id
    assert all(f.closed_at for f in engine.fees_of("A"))
    assert codes(engine.pay_fee("A", 1)) == ["no_fees_due"]
    with store.read() as tx:
        rows = tx.execute(
            "SELECT fee_pk, amount, payment_type, transaction_id, part, channel"
            " FROM fee_payments ORDER BY id"
        )
    assert [tuple(r) for r in rows] == [
        (first.fee_id, 300, "01", "T-1", 0, SELF_CHECK),
        (second.fee_id, 100, "01", "T-1", 1, SELF_CHECK),
        (second.fee_id, 400, "cash", "", 0, DESK),
    ]
    logged = events(store, "fee_paid")
    assert logged[0]["applied"] == [
        {"fee_id": first.fee_id, "amount": 300},
        {"fee_id": second.fee_id, "amount": 100},
    ]
    assert logged[0]["transaction_id"] == "T-1" and logged[1]["balance"] == 0


def test_payment_of_one_named_fee(library) -> None:
    engine, _, _ = library
    older = engine.add_fee("A", 300)
    newer = engine.add_fee("A", 200)
    paid = engine.pay_fee("A", 200, fee_id=newer.fee_id)
    assert paid.ok and paid.fee_id == newer.fee_id and paid.balance == 300
    by_id = {f.id: f for f in engine.fees_of("A")}
    assert by_id[newer.fee_id].closed_at and by_id[older.fee_id].paid == 0
    over = engine.pay_fee("A", 301, fee_id=older.fee_id)
    assert codes(over) == ["payment_exceeds_balance"] and over.balance == 300
    assert codes(engine.pay_fee("A", 100, fee_id=newer.fee_id)) == ["no_fees_due"]  # paid
    other = engine.add_fee("B", 100)
    assert codes(engine.pay_fee("A", 100, fee_id=other.fee_id)) == ["fee_unknown"]  # not A's
    assert codes(engine.pay_fee("A", 100, fee_id=999999)) == ["fee_unknown"]


def test_overpayment_and_bad_amounts_are_refused_and_change_nothing(library) -> None:
    engine, _, store = library
    assert codes(engine.pay_fee("A", 100)) == ["no_fees_due"]
    engine.add_fee("A", 300)
    engine.add_fee("A", 200)
    over = engine.pay_fee("A", 501, transaction_id="T-OVER")
    assert not over.ok and codes(over) == ["payment_exceeds_balance"] and over.balance == 500
    assert "5.01 CNY" in over.reasons[0].en and "5.00 CNY" in over.reasons[0].en
    for amount in (0, -100):
        assert codes(engine.pay_fee("A", amount)) == ["payment_invalid"]
    assert codes(engine.pay_fee("NOBODY", 100)) == ["patron_unknown"]
    with store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM fee_payments") == 0
    # A refused payment did not use up its transaction id.
    assert engine.pay_fee("A", 500, transaction_id="T-OVER").balance == 0


def test_a_repeated_transaction_id_is_never_paid_twice(library) -> None:
    engine, _, store = library
    fee = engine.add_fee("A", 1000)
    first = engine.pay_fee("A", 300, transaction_id="SC-42", channel=SELF_CHECK)
    again = engine.pay_fee("A", 300, transaction_id="SC-42", channel=SELF_CHECK)
    assert first.ok and again.ok
    assert note_codes(again) == ["payment_already_recorded"] and "SC-42" in again.notes[0].en
    assert (again.amount_paid, again.balance, again.fee_id) == (300, 700, fee.fee_id)
    assert engine.fees_of("A")[0].paid == 300
    assert len(events(store, "fee_paid")) == 1
    # The same id from another reader is that reader's own payment.
    engine.add_fee("B", 500)
    assert note_codes(engine.pay_fee("B", 300, transaction_id="SC-42")) == ["fee_paid"]
    # Without a transaction id, each call is a new payment.
    assert engine.pay_fee("A", 100).balance == 600
    assert engine.pay_fee("A", 100).balance == 500


def test_a_payment_recorded_under_a_transaction_id_reads_by_name(library) -> None:
    engine, _, store = library
    fee = engine.add_fee("A", 1000)
    assert engine.pay_fee("A", 300, transaction_id="SC-7").ok
    with store.read() as tx:
        patron = storage.patron_by_barcode(tx, "A")
        assert patron is not None
        recorded = storage.payment_by_transaction(tx, patron.pk, "SC-7")
        assert storage.payment_by_transaction(tx, patron.pk, "SC-8") is None
    assert recorded is not None
    assert (recorded.amount, recorded.fee_id) == (300, fee.fee_id)


def test_the_database_refuses_a_second_payment_under_one_transaction_id(library) -> None:
    engine, _, store = library
    fee = engine.add_fee("A", 1000)
    assert engine.pay_fee("A", 100, transaction_id="T-9").ok
    with pytest.raises(IntegrityViolation), store.write() as tx:
        patron = storage.patron_by_barcode(tx, "A")
        assert patron is not None
        storage.insert_fee_payment(
            tx, fee.fee_id, patron.pk, 100, "2026-03-02T10:00:00Z", "cash", "T-9", 0, DESK
        )
    with store.write() as tx:  # without a transaction id any number of payments may be stored
        patron = storage.patron_by_barcode(tx, "A")
        assert patron is not None
        for _ in range(2):
            storage.insert_fee_payment(
                tx, fee.fee_id, patron.pk, 100, "2026-03-02T10:00:00Z", "cash", "", 0, DESK
            )


def _pay_at_once(engine: Engine, patron: str, transaction_ids: list[str]) -> list[str]:
    """Pay 300 under each id from its own thread, all at once; the outcome codes."""
    results: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(transaction_ids))

    def pay(transaction_id: str) -> None:
        start.wait()
        outcome = engine.pay_fee(patron, 300, transaction_id=transaction_id, channel=SELF_CHECK)
        with lock:
            results.extend(note_codes(outcome) + codes(outcome))

    threads = [threading.Thread(target=pay, args=(t,)) for t in transaction_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results)


def test_concurrent_resends_of_one_payment_apply_it_once(library) -> None:
    engine, _, _ = library
    engine.add_fee("A", 3000)
    results = _pay_at_once(engine, "A", ["SAME"] * 6 + [f"OWN-{i}" for i in range(4)])
    assert results == ["fee_paid"] * 5 + ["payment_already_recorded"] * 5
    assert engine.fees_of("A")[0].paid == 1500


def test_concurrent_payments_never_overpay(library) -> None:
    engine, _, _ = library
    engine.add_fee("B", 1000)
    results = _pay_at_once(engine, "B", [f"OWN-{i}" for i in range(6)])
    assert results == ["fee_paid"] * 3 + ["payment_exceeds_balance"] * 3
    [fee] = engine.fees_of("B")
    assert fee.paid == 900 and fee.outstanding == 100 and fee.closed_at is None


def test_fee_limit_refuses_checkout_until_paid_below_it(library) -> None:
    engine, _, _ = library
    strict = with_circulation(engine, fee_limit=500)
    strict.add_fee("A", 499)
    assert strict.checkout("A", "O1").ok  # under the limit
    strict.add_fee("A", 1)
    refused = strict.checkout("A", "X1", SELF_CHECK)
    assert codes(refused) == ["fees_exceed_limit"] and "5.00 CNY" in refused.reasons[0].zh
    summary = strict.patron_summary("A")
    assert summary is not None and summary.excessive_fees and summary.charge_denied
    assert [r.code for r in summary.reasons] == ["fees_exceed_limit"]
    assert not summary.hold_denied and not summary.renewal_denied  # the limit is on borrowing
    assert strict.renew("A", "O1").ok
    assert strict.pay_fee("A", 1).balance == 499
    assert strict.checkout("A", "X1", SELF_CHECK).ok
    # Without a limit (the default) fees never refuse a checkout.
    engine.add_fee("B", 100000)
    assert engine.checkout("B", "W1").ok
    unlimited = engine.patron_summary("B")
    assert unlimited is not None and not unlimited.excessive_fees and not unlimited.charge_denied


# --- the reader's account ----------------------------------------------------------------------


def test_patron_summary_lists_loans_holds_and_fees(library) -> None:
    engine, clock, _ = library
    assert engine.patron_summary("NOBODY") is None
    assert engine.checkout("A", "O1").ok
    assert engine.checkout("B", "X1").ok
    assert engine.place_hold("C", record=("main", "T-X")).ok  # C is first in X's queue
    assert engine.place_hold("A", record=("main", "T-X")).ok
    assert engine.place_hold("B", record=("main", "T-ONE")).ok
    engine.checkin("O1", DESK)  # trapped for B
    engine.add_fee("A", 250, kind="overdue")
    clock.advance(days=31)
    summary = engine.patron_summary("A")
    assert summary is not None and summary.patron.barcode == "A"
    assert summary.category.name == "本科生" and summary.currency == "CNY"
    assert summary.loans == ()  # O1 went back
    assert [(h.title, h.record_id, h.queue_position) for h in summary.waiting_holds] == [
        ("书名T-X", "T-X", 2)
    ]
    assert summary.waiting_holds[0].expires_at == "2026-05-01T09:00:00Z"
    assert summary.ready_holds == () and summary.fees_total == 250
    b = engine.patron_summary("B")
    assert b is not None
    [loan] = b.loans
    assert (loan.item_barcode, loan.database, loan.record_id, loan.title) == (
        "X1",
        "main",
        "T-X",
        "书名T-X",
    )
    assert loan.overdue and loan.due_at == "2026-04-01T09:00:00Z" and loan.renewals == 0
    assert not b.too_many_overdue and not b.charge_denied  # no overdue_limit: nothing refused
    strict = with_circulation(engine, overdue_limit=1)
    limited = strict.patron_summary("B")
    assert limited is not None and limited.too_many_overdue and limited.charge_denied
    assert codes(strict.checkout("B", "W1")) == ["too_many_overdue"]
    [ready] = b.ready_holds
    assert (ready.item_barcode, ready.title, ready.pickup_desk) == ("O1", "书名T-ONE", "二楼借书处")
    assert ready.pickup_deadline == "2026-03-09T09:00:00Z" and ready.queue_position is None
    c = engine.patron_summary("C")
    assert c is not None and c.waiting_holds[0].queue_position == 1
    assert not c.too_many_overdue and c.fees == () and c.fees_total == 0


def test_patron_summary_flags_at_the_limits_agree_with_the_actions(library) -> None:
    engine, _, _ = library
    fresh = engine.patron_summary("A")
    assert fresh is not None
    assert not (
        fresh.charge_denied
        or fresh.renewal_denied
        or fresh.hold_denied
        or fresh.too_many_charged
        or fresh.too_many_overdue
        or fresh.excessive_fees
    )
    assert fresh.reasons == () and fresh.hold_suspended_until is None
    for barcode in ("O1", "W1", "W2"):  # 本科生 may borrow 3
        assert engine.checkout("A", barcode).ok
    at_loans = engine.patron_summary("A")
    assert at_loans is not None and at_loans.too_many_charged and at_loans.charge_denied
    assert [r.code for r in at_loans.reasons] == ["too_many_loans"]
    assert codes(engine.checkout("A", "X1")) == ["too_many_loans"]
    assert not at_loans.hold_denied
    assert engine.checkout("B", "X1").ok
    assert engine.checkout("B", "M1").ok
    assert engine.checkout("C", "M2").ok
    assert engine.place_hold("A", record=("main", "T-X")).ok
    assert engine.place_hold("A", record=("main", "T-MING")).ok  # 本科生 may hold 2
    at_holds = engine.patron_summary("A")
    assert at_holds is not None and at_holds.hold_denied
    assert [r.code for r in at_holds.reasons] == ["too_many_loans", "too_many_holds"]
    assert engine.checkin("O1", DESK).ok
    below = engine.patron_summary("A")
    assert below is not None and not below.charge_denied and not below.too_many_charged
    assert engine.checkout("A", "O1").ok


def test_patron_summary_while_suspended_from_holds(library) -> None:
    engine, clock, _ = library
    assert engine.checkout("D", "O1").ok
    for _ in range(3):  # R11: a third no-show suspends
        assert engine.place_hold("B", record=("main", "T-ONE")).ok
        engine.checkin("O1", DESK)
        clock.advance(days=8)
        engine.process_expiry()
        assert engine.checkout("D", "O1").ok
    summary = engine.patron_summary("B")
    assert summary is not None and summary.hold_denied and summary.hold_suspended_until
    assert summary.hold_suspended_until > "2026-03-26"
    assert [r.rule for r in summary.reasons] == ["R15"]
    assert not summary.charge_denied and not summary.renewal_denied
    assert [r.rule for r in engine.place_hold("B", record=("main", "T-ONE")).reasons] == ["R15"]
    clock.advance(days=60)
    after = engine.patron_summary("B")
    assert after is not None and not after.hold_denied and after.hold_suspended_until is None


def test_block_and_enable_a_reader(library) -> None:
    engine, _, store = library
    assert engine.checkout("A", "O1").ok
    blocked = engine.block_patron("A", "card reported stolen 卡丢失", channel=SELF_CHECK)
    assert blocked.ok and blocked.patron is not None and blocked.patron.status == "blocked"
    assert codes(engine.checkout("A", "X1")) == ["patron_blocked"]
    assert codes(engine.renew("A", "O1")) == ["patron_blocked"]
    summary = engine.patron_summary("A")
    assert summary is not None
    assert summary.charge_denied and summary.renewal_denied and summary.hold_denied
    assert summary.reasons[0].code == "patron_blocked"
    assert engine.block_patron("A").ok  # blocking again is fine
    enabled = engine.enable_patron("A")
    assert enabled.ok and enabled.patron is not None and enabled.patron.status == "active"
    assert engine.checkout("A", "X1").ok
    assert engine.enable_patron("A").ok  # already active
    assert codes(engine.block_patron("NOBODY")) == ["patron_unknown"]
    assert codes(engine.enable_patron("NOBODY")) == ["patron_unknown"]
    assert [(e["channel"], e["was"], e["message"]) for e in events(store, "patron_blocked")] == [
        (SELF_CHECK, "active", "card reported stolen 卡丢失"),
        (DESK, "blocked", ""),
    ]
    assert [e["was"] for e in events(store, "patron_enabled")] == ["blocked", "active"]


def test_verify_patron_pin(library) -> None:
    engine, _, _ = library
    assert engine.verify_patron_pin("A", "0000") is True
    assert engine.verify_patron_pin("A", "0001") is False
    assert engine.verify_patron_pin("A", "") is False
    assert engine.verify_patron_pin("B", "") is False  # no PIN stored: nothing matches
    assert engine.verify_patron_pin("NOBODY", "0000") is None


# --- copies ------------------------------------------------------------------------------------


def test_item_info_on_the_shelf_and_not_circulating(library) -> None:
    engine, _, _ = library
    assert engine.item_info("NO-SUCH") is None
    shelf = engine.item_info("O1")
    assert shelf is not None
    assert (shelf.circulation, shelf.circulates, shelf.available) == ("available", True, True)
    assert (shelf.database, shelf.record_id, shelf.title) == ("main", "T-ONE", "书名T-ONE")
    assert shelf.author  # from the catalogue record
    assert (shelf.location, shelf.call_number, shelf.item_type) == (
        "中文书库",
        "K1/1",
        "普通外借资料",
    )
    assert shelf.copy.barcode == "O1" and shelf.copy.properties == ""
    assert shelf.due_at is None and shelf.loan_patron_barcode is None and shelf.hold_queue == 0
    reading_room = engine.item_info("R1")
    assert reading_room is not None
    # The engine says where it is (not "available", which a kiosk would show as 03).
    assert (reading_room.circulation, reading_room.circulates) == ("library_use_only", False)
    assert not reading_room.available


def test_item_info_on_loan_and_trapped(library) -> None:
    engine, _, _ = library
    assert engine.checkout("A", "O1").ok
    assert engine.place_hold("B", record=("main", "T-ONE")).ok
    assert engine.place_hold("C", record=("main", "T-ONE")).ok
    lent = engine.item_info("O1")
    assert lent is not None and lent.circulation == "on_loan" and not lent.available
    assert lent.due_at == "2026-04-01T09:00:00Z" and lent.loan_patron_barcode == "A"
    assert lent.hold_queue == 2 and lent.hold_patron_barcode is None
    engine.checkin("O1", DESK)
    trapped = engine.item_info("O1")
    assert trapped is not None and trapped.circulation == "on_hold_shelf"
    assert (trapped.hold_patron_barcode, trapped.hold_patron_name) == ("B", "乙")
    assert trapped.pickup_desk == "二楼借书处"
    assert trapped.pickup_deadline == "2026-03-09T09:00:00Z"
    assert trapped.hold_queue == 1 and trapped.due_at is None and not trapped.available


@pytest.mark.parametrize(
    ("status", "state"),
    [("丢失", "lost"), ("缺失", "missing"), ("修补", "in_process"), ("剔旧?", "other")],
)
def test_item_info_maps_other_status_words(library, status: str, state: str) -> None:
    engine, _, store = library
    with store.write() as tx:
        copy = storage.copy_by_barcode(tx, "X1")
        assert copy is not None
        storage.set_copy_status(tx, copy.pk, status)
    info = engine.item_info("X1")
    assert info is not None and info.circulation == state and not info.available
    assert info.copy.status == status


def test_update_item_properties(library) -> None:
    engine, _, store = library
    updated = engine.update_item_properties("O1", "书脊破损; spine damaged", channel=SELF_CHECK)
    assert updated.ok and updated.copy is not None
    assert updated.copy.properties == "书脊破损; spine damaged"
    assert updated.record == ("main", "T-ONE", "书名T-ONE")
    info = engine.item_info("O1")
    assert info is not None and info.copy.properties == "书脊破损; spine damaged"
    assert engine.update_item_properties("O1", "").ok
    assert codes(engine.update_item_properties("NO-SUCH", "x")) == ["item_unknown"]
    assert [
        (e["channel"], e["was"], e["properties"]) for e in events(store, "item_properties")
    ] == [
        (SELF_CHECK, "", "书脊破损; spine damaged"),
        (DESK, "书脊破损; spine damaged", ""),
    ]
    assert engine.checkout("A", "O1").ok  # properties never affect circulation


# --- configuration and money -------------------------------------------------------------------


def test_fee_settings_are_validated() -> None:
    settings = settings_from_dict({"circulation": {"currency": "JPY", "fee_limit": 1000}})
    assert settings.circulation.currency == "JPY" and settings.circulation.fee_limit == 1000
    assert settings_from_dict({}).circulation.fee_limit == 0
    with pytest.raises(ConfigError, match="circulation.fee_limit"):
        settings_from_dict({"circulation": {"fee_limit": -1}})
    with pytest.raises(ConfigError, match="circulation.currency"):
        settings_from_dict({"circulation": {"currency": "yuan"}})


def test_money_text() -> None:
    assert format_amount(1250, "CNY") == "12.50" and format_amount(5, "CNY") == "0.05"
    assert format_amount(-5, "CNY") == "-0.05" and format_amount(300, "JPY") == "300"
    assert parse_amount("12.5", "CNY") == 1250 and parse_amount("3", "CNY") == 300
    assert parse_amount("300", "JPY") == 300
    for bad in ("1.005", "abc", "nan", ""):
        with pytest.raises(ValueError):
            parse_amount(bad, "CNY")
    with pytest.raises(ValueError):
        parse_amount("1.5", "JPY")
