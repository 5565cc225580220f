"""Lending to partners (we are Shanghai Library): I1, I2, I3, I6, I7 and the partner's actions,
on both storage engines."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway.catalogue.query import Query, Term
from gateway.catalogue.search import search
from gateway.catalogue.textindex import index_for
from gateway.circulation import ill_lending, ill_storage, storage
from gateway.circulation.clock import stamp
from gateway.circulation.engine import SELF_CHECK, Engine
from gateway.circulation.ill import InterlibraryLoan
from gateway.circulation.ill_borrowing import TEMPORARY_DATABASE
from gateway.circulation.ill_states import LenderEvent, lender_step
from gateway.circulation.ill_types import (
    Action,
    Confirmation,
    ErrorType,
    ReasonForMessage,
    ServiceInfo,
    Status,
    SupplyingAgencyMessage,
)
from gateway.circulation.policy import ILL_COPY_TYPE, Policy
from gateway.circulation.states import Channel
from gateway.store import Store, Transaction
from marc.bibliographic import BibRecord, Name
from tests.circulation_support import SETTINGS, build_library
from tests.ill_support import (
    PKU,
    SHL,
    TSU,
    action,
    ill_settings,
    library_ill,
    messages,
    partner_request,
)


@pytest.fixture
def lender(store: Store, tmp_path: Path):
    engine, clock, ill = library_ill(store, tmp_path, SHL, [PKU, TSU], renewals=1, loan_days=45)
    return engine, clock, ill, store


def answers(store, clock) -> list[SupplyingAgencyMessage]:
    found = messages(store, clock.now())
    sams = [m for m in found if isinstance(m, SupplyingAgencyMessage)]
    assert len(sams) == len(found)  # a lender only answers
    return sams


def available_copies(engine, store, title: str) -> int:
    hits = search(
        store, Query(Term("title", "all", title)), "main", availability=engine.policy.availability
    )
    return hits.hits[0].available


def test_I1_a_lendable_copy_on_the_shelf_is_supplied_and_numbered(lender) -> None:
    engine, clock, ill, store = lender
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok
    [answer] = answers(store, clock)
    assert answer.reason_for_message is ReasonForMessage.REQUEST_RESPONSE
    assert answer.status is Status.WILL_SUPPLY
    assert answer.header.supplying_agency_request_id == "ST00000001"  # I3
    assert answer.header.requesting_agency_request_id == "PKU-1"  # kept
    view = ill.show("ST00000001")
    assert view is not None
    assert (view.request.barcode, view.request.role, view.request.status) == (
        "M2",
        "lender",
        "WillSupply",
    )
    assert [m.direction for m in view.messages] == ["in", "out"]
    # I3: the next accepted request takes the next number, whoever asks.
    engine.checkin("M2")  # (the copy withdrawn: that request is unfilled, M2 back on the shelf)
    assert ill.on_request(partner_request("TSU-1", record_id="T-MING", requester=TSU)).ok
    assert ill.show("ST00000002") is not None


def test_I6_the_set_aside_copy_is_unavailable_everywhere_and_holdable(lender) -> None:
    engine, clock, ill, store = lender
    before = available_copies(engine, store, "书名T-MING")
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok
    assert available_copies(engine, store, "书名T-MING") == before - 1
    refused = engine.checkout("A", "M2", SELF_CHECK)  # a SIP2 self-check
    assert not refused.ok and refused.reasons[0].code == "item_on_loan"
    item = engine.item_info("M2")
    assert item is not None and item.state == "on_loan"
    # M1 is on the shelf: R2 still sends the reader to it; once it is lent, the title is holdable.
    assert engine.place_hold("A", record=("main", "T-MING")).reasons[0].code == "copy_available"
    assert engine.checkout("B", "M1").ok
    held = engine.place_hold("A", record=("main", "T-MING"))
    assert held.ok, held.reasons
    # The partner's loan ends at our desk: the copy is trapped for the local hold (R6).
    assert ill.ship("ST00000001").ok
    back = engine.checkin("M2")
    assert back.ok and back.trapped_for is not None and back.trapped_for.barcode == "A"
    statuses = [m.status for m in answers(store, clock)]
    assert statuses == [Status.WILL_SUPPLY, Status.LOANED, Status.LOAN_COMPLETED]
    assert ill.show("ST00000001").request.state == "completed"


def test_I1_refusals_with_their_reasons(lender) -> None:
    engine, clock, ill, store = lender
    assert ill.on_request(partner_request("PKU-1", record_id="NO-SUCH")).ok
    assert ill.on_request(partner_request("PKU-2", title="没有这本书的书名")).ok
    assert ill.on_request(partner_request("PKU-3", record_id="T-ONE")).ok  # 普通外借资料 only
    assert ill.on_request(partner_request("PKU-4", title="书名T-MING", author="某某")).ok
    assert ill.on_request(partner_request("PKU-5", record_id="T-MING")).ok  # M2 is out now
    found = answers(store, clock)
    assert [(m.status, m.reason_unfilled, m.reason_retry) for m in found] == [
        (Status.UNFILLED, "NotHeld", ""),
        (Status.UNFILLED, "NotHeld", ""),
        (Status.UNFILLED, "NotAvailableForILL", ""),
        (Status.WILL_SUPPLY, "", ""),
        (Status.RETRY_POSSIBLE, "", "OnLoan"),
    ]
    assert "没有可供馆际互借" in found[2].note
    # Only the accepted request has a number (I3); refused ones are kept by the partner's id.
    numbers = [r.number for r in ill.list_requests(role="lender")]
    assert numbers == [None, None, None, "ST00000001", None]
    assert ill.show("PKU-3").request.reason == "NotAvailableForILL"


def test_I2_a_suspended_service_refuses_with_a_note(store: Store, tmp_path: Path) -> None:
    _engine, clock, ill = library_ill(store, tmp_path, SHL, [PKU], suspended=True)
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok
    [answer] = answers(store, clock)
    assert (answer.status, answer.reason_unfilled) == (Status.UNFILLED, "PolicyProblem")
    assert "暂停" in answer.note


def test_I7_and_header_errors_are_confirmations_and_store_nothing(lender) -> None:
    engine, clock, ill, store = lender
    stranger = ill.on_request(partner_request("X-1", record_id="T-MING", requester="ISIL:CN-XXX"))
    assert not stranger.ok and stranger.error_type is ErrorType.UNRECOGNISED_DATA_VALUE
    assert "not a partner" in stranger.error_value
    wrong = ill.on_request(partner_request("PKU-1", record_id="T-MING", supplier="ISIL:CN-BJL"))
    assert not wrong.ok and "supplyingAgencyId" in wrong.error_value
    assert ill.list_requests() == [] and messages(store, clock.now()) == []
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok
    duplicate = ill.on_request(partner_request("PKU-1", record_id="T-ONE"))
    assert not duplicate.ok and "duplicate" in duplicate.error_value
    # The same id from another partner is another request.
    assert ill.on_request(partner_request("PKU-1", record_id="T-ONE", requester=TSU)).ok
    assert len(ill.list_requests()) == 2


def test_partner_actions(lender) -> None:
    engine, clock, ill, store = lender
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok
    messages(store, clock.now())
    renew_early = ill.on_requesting_agency_message(action("PKU-1", Action.RENEW))
    assert not renew_early.ok and renew_early.error_type is ErrorType.UNRECOGNISED_DATA_VALUE
    forward = ill.on_requesting_agency_message(action("PKU-1", Action.SHIPPED_FORWARD))
    assert not forward.ok and forward.error_type is ErrorType.UNSUPPORTED_ACTION_TYPE
    unknown = ill.on_requesting_agency_message(action("PKU-9", Action.CANCEL))
    assert not unknown.ok and "not found" in unknown.error_value
    assert ill.ship("ST00000001").ok
    [loaned] = answers(store, clock)
    start = clock.now()
    assert loaned.status is Status.LOANED and loaned.item_id == "M2"
    assert loaned.due_date == start + timedelta(days=45)
    clock.advance(days=10)
    # Renew: granted while `renewals` (1) last, from the due date; then refused.
    for what in (Action.RENEW, Action.RENEW, Action.CANCEL, Action.STATUS_REQUEST):
        assert ill.on_requesting_agency_message(action("PKU-1", what, number="ST00000001")).ok
    yes, no, cancel, status = answers(store, clock)
    assert (yes.reason_for_message, yes.answer_yes_no) == (ReasonForMessage.RENEW_RESPONSE, True)
    assert yes.due_date == start + timedelta(days=90)
    assert (no.answer_yes_no, no.due_date) == (False, start + timedelta(days=90))
    assert (cancel.reason_for_message, cancel.answer_yes_no, cancel.status) == (
        ReasonForMessage.CANCEL_RESPONSE,
        False,
        Status.LOANED,
    )
    assert status.reason_for_message is ReasonForMessage.STATUS_REQUEST_RESPONSE
    for what in (Action.RECEIVED, Action.NOTIFICATION, Action.SHIPPED_RETURN):
        assert ill.on_requesting_agency_message(action("PKU-1", what)).ok
    assert answers(store, clock) == []  # recorded, nothing to answer
    assert ill.show("ST00000001").request.state == "returning"
    assert engine.checkin("M2").ok
    [done] = answers(store, clock)
    assert done.status is Status.LOAN_COMPLETED
    assert engine.item_info("M2").state == "available"


def test_R5_a_local_reader_waiting_means_no_renewal(lender) -> None:
    engine, clock, ill, store = lender
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok
    assert ill.ship("ST00000001").ok
    assert engine.checkout("B", "M1").ok
    assert engine.place_hold("A", record=("main", "T-MING")).ok
    messages(store, clock.now())
    assert ill.on_requesting_agency_message(action("PKU-1", Action.RENEW)).ok
    [answer] = answers(store, clock)
    assert answer.answer_yes_no is False


def test_cancel_before_shipping_releases_the_copy(lender) -> None:
    engine, clock, ill, store = lender
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok
    assert ill.on_requesting_agency_message(action("PKU-1", Action.CANCEL)).ok
    _supply, cancelled = answers(store, clock)
    assert (cancelled.answer_yes_no, cancelled.status) == (True, Status.CANCELLED)
    assert engine.item_info("M2").state == "available"
    assert not ill.ship("ST00000001").ok  # nothing left to ship


def test_overdue_is_sent_once(lender) -> None:
    engine, clock, ill, store = lender
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok
    assert ill.ship("ST00000001").ok
    messages(store, clock.now())
    assert ill.process(clock.now() + timedelta(days=44)) == []
    assert ill.process(clock.now() + timedelta(days=46)) == ["ST00000001"]
    assert ill.process(clock.now() + timedelta(days=47)) == []
    [overdue] = answers(store, clock)
    assert (overdue.reason_for_message, overdue.status) == (
        ReasonForMessage.STATUS_CHANGE,
        Status.OVERDUE,
    )
    # Renewing an overdue loan brings it back to Loaned.
    assert ill.on_requesting_agency_message(action("PKU-1", Action.RENEW)).ok
    [renewed] = answers(store, clock)
    assert (renewed.answer_yes_no, renewed.status) == (True, Status.LOANED)


def test_staff_unfill(lender) -> None:
    engine, clock, ill, store = lender
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok
    bad = ill.unfill("ST00000001", "Lost")
    assert not bad.ok and bad.reasons[0].code == "ill_reason_unknown"
    assert ill.unfill("ST00000001", "PoorCondition", "书页破损").ok
    _supply, unfilled = answers(store, clock)
    assert (unfilled.status, unfilled.reason_unfilled, unfilled.note) == (
        Status.UNFILLED,
        "PoorCondition",
        "书页破损",
    )
    assert engine.item_info("M2").state == "available"
    assert not ill.unfill("ST00000001", "NotHeld").ok  # already unfilled
    assert not ill.unfill("ST00000009", "NotHeld").ok


def test_a_retry_after_retry_possible_is_decided_again(lender) -> None:
    engine, clock, ill, store = lender
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok  # M2 set aside
    asked = partner_request("TSU-1", record_id="T-MING", requester=TSU)
    assert ill.on_request(asked).ok
    assert ill.on_requesting_agency_message(action("PKU-1", Action.CANCEL)).ok  # M2 back
    again = ill.on_request(asked)  # the same id, not a retry: a duplicate
    assert not again.ok and "duplicate" in again.error_value
    retry = replace(asked, service=ServiceInfo(request_type="Retry"))
    assert ill.on_request(retry).ok
    found = answers(store, clock)
    assert [(m.header.requesting_agency_request_id, m.status) for m in found] == [
        ("PKU-1", Status.WILL_SUPPLY),
        ("TSU-1", Status.RETRY_POSSIBLE),
        ("PKU-1", Status.CANCELLED),
        ("TSU-1", Status.WILL_SUPPLY),
    ]
    assert found[-1].header.supplying_agency_request_id == "ST00000002"
    view = ill.show("ST00000002")
    assert view is not None and view.request.barcode == "M2" and view.request.partner == TSU


def _blocked_by(store: Store, pid: int) -> int:
    """How many PostgreSQL sessions wait for a lock that session `pid` holds."""
    with store.read() as tx:
        return int(
            tx.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE ? = ANY(pg_blocking_pids(pid))", (pid,)
            )
        )


def _desk_checkout(tx: Transaction, patron: str, barcode: str, now: datetime, on_loan: str) -> None:
    """What a desk checkout writes, in a transaction the test keeps open: the title and copy
    locked (storage.lock_copy, as loans.checkout takes them), the loan, the status."""
    copy = storage.lock_copy(tx, barcode)
    reader = storage.patron_by_barcode(tx, patron)
    assert copy is not None and reader is not None
    due = stamp(now + timedelta(days=30))
    storage.insert_loan(tx, copy, reader.pk, stamp(now), due, Channel.DESK)
    storage.set_copy_status(tx, copy.pk, on_loan)


def test_I6_a_copy_checked_out_while_a_partner_request_waits_is_not_set_aside(lender) -> None:
    """A desk checkout of M2 (the one lendable copy) is under way when a partner asks for its
    title: the request waits for the title and then sees M2 lent (RetryPossible/OnLoan); it
    never picks M2 from a read made before the checkout committed (on PostgreSQL that ended
    in the one-open-loan constraint, answered as a duplicate request id)."""
    engine, clock, ill, store = lender
    answered: list[Confirmation] = []
    with store.write() as tx:
        pid = int(tx.scalar("SELECT pg_backend_pid()")) if tx.dialect == "postgresql" else 0
        _desk_checkout(tx, "B", "M2", clock.now(), engine.policy.circulation.on_loan_status)
        asking = threading.Thread(
            target=lambda: answered.append(
                ill.on_request(partner_request("PKU-1", record_id="T-MING"))
            )
        )
        asking.start()
        if pid:  # the request is waiting for a lock the checkout holds (SQLite: its writer)
            deadline = time.monotonic() + 60
            while _blocked_by(store, pid) == 0 and asking.is_alive():
                assert time.monotonic() < deadline, "the partner request never reached a lock"
                time.sleep(0.01)
    asking.join()
    [confirmation] = answered
    assert confirmation.ok, confirmation.error_value
    [answer] = answers(store, clock)
    assert (answer.status, answer.reason_retry) == (Status.RETRY_POSSIBLE, "OnLoan")
    assert engine.item_info("M2").state == "on_loan"
    assert [r.barcode for r in ill.list_requests(role="lender")] == [""]


def test_I1_a_lendable_type_that_does_not_circulate_locally_is_supplied(
    store: Store, tmp_path: Path
) -> None:
    """I1 is on the shelf and ill_lendable; whether local readers may take the type home (R1)
    is not asked. 阅览资料 (reading room only) made lendable to partners: R1 is supplied."""
    _engine, clock = build_library(store, tmp_path)
    types = tuple(
        replace(t, ill_lendable=True) if t.name == "阅览资料" else t for t in SETTINGS.item_types
    )
    policy = Policy.from_settings(replace(SETTINGS, item_types=types))
    assert not policy.availability.circulates("阅览资料")
    engine = Engine(store, policy, clock)
    ill = InterlibraryLoan(engine, ill_settings(SHL, [PKU]))
    assert ill.on_request(partner_request("PKU-1", record_id="T-READ")).ok
    [answer] = answers(store, clock)
    assert (answer.status, answer.reason_retry) == (Status.WILL_SUPPLY, "")
    view = ill.show("ST00000001")
    assert view is not None and view.request.barcode == "R1"
    assert engine.item_info("R1").state == "on_loan"


def test_I6_a_desk_checkin_during_shipping_completes_the_loan(lender) -> None:
    """Staff ship ST00000001 while M2 is checked in at a desk: the checkin reads the request
    under its lock, after the ship committed, so the partner hears Loaned then LoanCompleted
    (not Unfilled for a copy it has been sent)."""
    engine, clock, ill, store = lender
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok
    returned: list[bool] = []
    with store.write() as tx:
        pid = int(tx.scalar("SELECT pg_backend_pid()")) if tx.dialect == "postgresql" else 0
        row = ill_storage.request_by_number(tx, "ST00000001", lock=True)  # as ship() does
        assert row is not None
        ill_lending.advance(tx, row, lender_step(row.state, LenderEvent.SHIP), clock.now())
        desk = threading.Thread(target=lambda: returned.append(engine.checkin("M2").ok))
        desk.start()
        if pid:  # the checkin waits for the request's lock (SQLite: for the writer)
            deadline = time.monotonic() + 60
            while _blocked_by(store, pid) == 0 and desk.is_alive():
                assert time.monotonic() < deadline, "the checkin never reached a lock"
                time.sleep(0.01)
    desk.join()
    assert returned == [True]
    statuses = [m.status for m in answers(store, clock)]
    assert statuses == [Status.WILL_SUPPLY, Status.LOANED, Status.LOAN_COMPLETED]
    assert ill.show("ST00000001").request.state == "completed"


def test_cancel_after_retry_possible_or_unfilled_is_yes(lender) -> None:
    """The partner cancels before our RetryPossible or Unfilled reached it: CancelResponse Y,
    Cancelled; no copy was set aside, so none moves."""
    engine, clock, ill, store = lender
    assert engine.checkout("B", "M2").ok  # the one lendable copy of T-MING is out
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok  # RetryPossible
    assert ill.on_request(partner_request("PKU-2", record_id="T-ONE")).ok  # Unfilled
    for asked in ("PKU-1", "PKU-2"):
        assert ill.on_requesting_agency_message(action(asked, Action.CANCEL)).ok
    _retry, _unfilled, *cancels = answers(store, clock)
    assert [(m.reason_for_message, m.answer_yes_no, m.status) for m in cancels] == [
        (ReasonForMessage.CANCEL_RESPONSE, True, Status.CANCELLED)
    ] * 2
    assert [ill.show(n).request.state for n in ("PKU-1", "PKU-2")] == ["cancelled"] * 2
    assert engine.item_info("M2").state == "on_loan"


def test_received_before_shipping_is_recorded(lender) -> None:
    """Our own borrower may send Received while the request is WillSupply here (its copy
    came before our Loaned): confirmed and kept, nothing answered, nothing changes."""
    engine, clock, ill, store = lender
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok
    answers(store, clock)
    assert ill.on_requesting_agency_message(action("PKU-1", Action.RECEIVED)).ok
    assert answers(store, clock) == []
    view = ill.show("ST00000001")
    assert view.request.state == "will_supply"
    assert view.messages[-1].action == "Received"
    assert ill.ship("ST00000001").ok


def test_a_partners_text_is_kept_within_bounds(lender) -> None:
    """A partner's request is stored within I4's limits (title 240, note 50, other fields
    240) and the notes of its later messages within 500 characters, each cut with an
    ellipsis; the request is still decided and the action still confirmed."""
    engine, clock, ill, store = lender
    asked = partner_request("PKU-1", record_id="T-MING")
    asked = replace(
        asked,
        bibliographic=replace(asked.bibliographic, title="书" * 300, author="某" * 1000),
        service=ServiceInfo(note="注" * 100_000),
    )
    assert ill.on_request(asked).ok
    kept = ill.show("ST00000001").request
    assert (len(kept.title), len(kept.author), len(kept.note)) == (240, 240, 50)
    assert kept.title == "书" * 239 + "…" and kept.note.endswith("注…")
    told = replace(action("PKU-1", Action.NOTIFICATION), note="话" * 100_000)
    assert ill.on_requesting_agency_message(told).ok
    notes = [m.note for m in ill.show("ST00000001").messages if m.direction == "in"]
    assert [len(n) for n in notes] == [500, 500]
    assert notes[1] == "话" * 499 + "…"


def test_a_title_we_borrowed_is_not_found_for_a_partner(lender) -> None:
    """A borrowed book's temporary title (database `ill`, as the borrower's receive makes it),
    indexed by a reindex like every record, is not one of ours: a partner asking for it by
    title and author is told NotHeld, not NotAvailableForILL."""
    engine, clock, ill, store = lender
    bib = BibRecord(
        format="unimarc", control_number="ST99999999", title="外馆借来之书", names=(Name("某乙"),)
    )
    shelf = engine.policy.circulation.on_hold_shelf_status
    with store.write() as tx:
        record_pk = ill_storage.insert_temporary_record(
            tx, TEMPORARY_DATABASE, "ST99999999", bib.title, "某乙", bib.to_json()
        )
        ill_storage.insert_temporary_copy(tx, "ILL-ST99999999", record_pk, "", ILL_COPY_TYPE, shelf)
    index_for(store).rebuild(store)
    hits = search(
        store,
        Query(Term("title", "all", "外馆借来之书")),
        TEMPORARY_DATABASE,
        availability=engine.policy.availability,
    )
    assert hits.total == 1  # indexed: only the lookup can leave it out
    assert ill.on_request(partner_request("PKU-1", title="外馆借来之书", author="某乙")).ok
    [answer] = answers(store, clock)
    assert (answer.status, answer.reason_unfilled) == (Status.UNFILLED, "NotHeld")
