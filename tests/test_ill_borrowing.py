"""Borrowing for our readers, end to end inside one store pair: a Beijing university (PKU, the
borrower) and Shanghai Library (SHL, the lender), each its own store and engine. Messages go
from one outbox to the other engine by hand (no HTTP); a third partner (TSU) is played here.
Both storage engines."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.circulation.engine import SELF_CHECK
from gateway.circulation.ill import IllForm, IllRequestView, InterlibraryLoan
from gateway.circulation.ill_outbox import claim_due, record_delivered
from gateway.circulation.ill_types import (
    AgencyId,
    Confirmation,
    ErrorType,
    Header,
    ReasonForMessage,
    Request,
    RequestingAgencyMessage,
    Status,
    SupplyingAgencyMessage,
)
from gateway.notify.outbox import claim_next, list_notices, mark_failed_attempt
from gateway.store import Store, open_store
from gateway.store.migrate import migrate
from tests.conftest import _with_search_path, postgres_base_url
from tests.ill_support import PKU, SHL, TSU, URLS, library_ill

LEASE = timedelta(minutes=5)
FORM = IllForm(
    title="书名T-MING",
    author="某某",
    publisher="上海古籍出版社",
    year="2001",
    language="chi",
    material_type="Book",
    recipient="甲",
    email="a@example.cn",
    phone="13800000000",
    delivery="物流",
    reference="MY-001",
    note="课程用书",
)


@pytest.fixture
def second_store(request, tmp_path: Path, store_url: str) -> Iterator[Store]:
    """Another store on the same engine as `store`."""
    if store_url.startswith("sqlite"):
        opened = open_store(f"sqlite:///{tmp_path / 'lender.db'}")
        migrate(opened)
        yield opened
        opened.close()
        return
    admin = request.getfixturevalue("postgres_admin")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin.execute(f'CREATE SCHEMA "{schema}"')
    base = postgres_base_url()
    assert base is not None
    opened = open_store(_with_search_path(base, schema))
    migrate(opened)
    yield opened
    opened.close()
    admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


class Pair:
    """The borrower and the lender, and the third partner's messages kept for the test."""

    def __init__(self, store: Store, second: Store, tmp_path: Path, **borrower: object) -> None:
        (tmp_path / "pku").mkdir()
        (tmp_path / "shl").mkdir()
        self.pku_engine, self.clock, self.pku = library_ill(
            store, tmp_path / "pku", PKU, [TSU, SHL], request_prefix="PK", **borrower
        )
        self.shl_engine, self.shl_clock, self.shl = library_ill(
            second, tmp_path / "shl", SHL, [PKU], renewals=1
        )
        self.pku_store, self.shl_store = store, second
        self.to_tsu: list[Request | RequestingAgencyMessage] = []

    def advance(self, **delta: float) -> None:
        self.clock.advance(**delta)
        self.shl_clock.advance(**delta)

    def relay(self) -> int:
        """Deliver every due message both ways until both outboxes are quiet."""
        moved = 0
        while True:
            batch = 0
            for source, engines in (
                (self.pku_store, {URLS[SHL]: self.shl, URLS[TSU]: None}),
                (self.shl_store, {URLS[PKU]: self.pku}),
            ):
                for out in claim_due(source, self.clock.now(), "relay", LEASE, 100):
                    target = engines[out.url]
                    message = out.message
                    if target is None:
                        assert not isinstance(message, SupplyingAgencyMessage)
                        self.to_tsu.append(message)
                        confirmation = None
                    elif isinstance(message, Request):
                        confirmation = target.on_request(message)
                    elif isinstance(message, SupplyingAgencyMessage):
                        confirmation = target.on_supplying_agency_message(message)
                    else:
                        confirmation = target.on_requesting_agency_message(message)
                    confirmation = confirmation or Confirmation.accepted()  # TSU reads it later
                    assert confirmation.ok, confirmation
                    record_delivered(source, out.id, self.clock.now(), confirmation)
                    batch += 1
            moved += batch
            if not batch:
                return moved

    def tsu_answers(
        self,
        status: Status,
        reason_for_message: ReasonForMessage = ReasonForMessage.REQUEST_RESPONSE,
        **values: Any,
    ) -> None:
        """TSU answers PKU's last request to it."""
        last = self.to_tsu[-1]
        head = Header(
            requesting_agency=AgencyId.parse(PKU),
            supplying_agency=AgencyId.parse(TSU),
            timestamp=self.clock.now(),
            requesting_agency_request_id=last.header.requesting_agency_request_id,
        )
        answer = SupplyingAgencyMessage(
            header=head,
            reason_for_message=reason_for_message,
            status=status,
            last_change=self.clock.now(),
            **values,
        )
        assert self.pku.on_supplying_agency_message(answer).ok

    def file(self, form: IllForm) -> str:
        """Reader A's request: its number."""
        filed = self.pku.request("A", form)
        assert filed.ok and filed.request is not None and filed.request.number, filed.reasons
        return filed.request.number

    def view(self, ill: InterlibraryLoan, number: str | None) -> IllRequestView:
        found = ill.show(number or "")
        assert found is not None
        return found

    def state(self, ill: InterlibraryLoan, number: str | None) -> tuple[str, str]:
        view = self.view(ill, number)
        return view.request.state, view.request.status


@pytest.fixture
def pair(store: Store, second_store: Store, tmp_path: Path) -> Pair:
    made = Pair(store, second_store, tmp_path, service_fee=500)
    assert made.pku.confirm_reader("A").ok
    return made


def notice_kinds(store: Store) -> list[str]:
    return [n.kind for n in list_notices(store)]


def test_the_seed_story_unfilled_then_next_lender_to_loan_completed(pair: Pair) -> None:
    number = pair.file(FORM)
    assert number == "PK00000001"
    # The service fee is on the reader's account (帐务日志), once per request.
    [fee] = pair.pku_engine.fees_of("A")
    assert (fee.amount, fee.kind) == (500, "processing")
    pair.relay()
    [asked] = pair.to_tsu  # the first lender of the rota
    assert isinstance(asked, Request) and asked.bibliographic.title == "书名T-MING"
    assert asked.header.requesting_agency_request_id == number
    assert asked.patron.patron_id == "A" and asked.delivery.method == "物流"
    pair.tsu_answers(Status.UNFILLED, reason_unfilled="NotHeld")
    assert pair.state(pair.pku, number) == ("sent", "")  # sent on to SHL
    pair.relay()
    assert pair.state(pair.pku, number) == ("will_supply", "WillSupply")
    shl_number = pair.shl.list_requests()[0].number or ""
    assert shl_number == "ST00000001"
    assert pair.view(pair.pku, number).request.supplying_agency_request_id == shl_number
    assert pair.shl.ship(shl_number).ok
    pair.relay()
    assert pair.state(pair.pku, number) == ("shipped", "Loaned")
    # Arrival: Received to the lender, and a copy on our hold shelf for the reader.
    arrived = pair.pku.receive(number)
    assert arrived.ok and arrived.request.barcode == "ILL-PK00000001"
    pair.relay()
    assert pair.view(pair.shl, shl_number).messages[-1].action == "Received"
    barcode = "ILL-PK00000001"
    item = pair.pku_engine.item_info(barcode)
    assert item is not None and item.state == "on_hold_shelf" and item.hold_patron_barcode == "A"
    refused = pair.pku_engine.checkout("B", barcode, SELF_CHECK)
    assert not refused.ok and refused.reasons[0].code == "trapped_for_another"  # R14
    # Nobody else may queue for a borrowed copy: it goes back to its lender after the reader.
    queued = pair.pku_engine.place_hold("B", item_barcode=barcode)
    assert not queued.ok and [r.code for r in queued.reasons] == ["ill_copy_not_holdable"]
    picked = pair.pku_engine.checkout("A", barcode, SELF_CHECK)  # pickup over SIP2
    assert picked.ok and picked.fulfilled_hold_id
    # The reader's return at the desk ends the local loan; the copy waits for its lender.
    back = pair.pku_engine.checkin(barcode)
    assert back.ok and back.to_desk and back.trapped_for is None
    assert pair.state(pair.pku, number)[0] == "checked_in"
    assert pair.pku_engine.item_info(barcode).state == "unavailable"
    assert pair.pku.return_to_lender(number).ok
    pair.relay()
    assert pair.state(pair.shl, shl_number)[0] == "returning"
    assert pair.shl_engine.checkin("M2").ok  # at Shanghai's desk
    pair.relay()
    assert pair.state(pair.pku, number) == ("completed", "LoanCompleted")
    assert pair.state(pair.shl, shl_number) == ("completed", "LoanCompleted")
    assert notice_kinds(pair.pku_store) == ["ill_accepted", "ill_arrived"]
    history = pair.view(pair.pku, number).messages
    assert [(m.direction, m.kind[:7], m.status or m.action) for m in history] == [
        ("out", "Request", ""),
        ("in", "Supplyi", "Unfilled"),
        ("out", "Request", ""),
        ("in", "Supplyi", "WillSupply"),
        ("in", "Supplyi", "Loaned"),
        ("out", "Request", "Received"),
        ("out", "Request", "ShippedReturn"),
        ("in", "Supplyi", "LoanCompleted"),
    ]
    [line] = [s for s in pair.pku.stats() if s.partner == SHL]
    assert (line.role, line.status, line.requests, line.fees) == (
        "borrower",
        "LoanCompleted",
        1,
        500,
    )


def test_no_lender_left_tells_the_reader(pair: Pair) -> None:
    form = replace(FORM, lenders=(TSU,))
    number = pair.file(form)
    pair.relay()
    pair.tsu_answers(Status.RETRY_POSSIBLE, reason_retry="OnLoan")
    assert pair.state(pair.pku, number) == ("end_of_rota", "RetryPossible")
    assert notice_kinds(pair.pku_store) == ["ill_unfilled"]


def test_unfilled_as_a_notification_is_recorded_and_the_rota_stays(pair: Pair) -> None:
    """CrossLink's broker sends Unfilled or RetryPossible with reasonForMessage Notification
    while it works through its own lenders: confirmed, kept in the history, and the request
    still waits for TSU's answer (not sent on to SHL, the reader not told)."""
    number = pair.file(FORM)
    pair.relay()
    note = ReasonForMessage.NOTIFICATION
    pair.tsu_answers(Status.UNFILLED, note, reason_unfilled="NotHeld")
    pair.tsu_answers(Status.RETRY_POSSIBLE, note, reason_retry="OnLoan")
    assert pair.relay() == 0
    assert pair.state(pair.pku, number) == ("sent", "RequestReceived")  # TSU confirmed it
    assert pair.view(pair.pku, number).request.partner == TSU
    assert pair.shl.list_requests() == [] and len(pair.to_tsu) == 1
    history = pair.view(pair.pku, number).messages
    assert [(m.direction, m.status, m.reason_for_message) for m in history] == [
        ("out", "", ""),
        ("in", "Unfilled", "Notification"),
        ("in", "RetryPossible", "Notification"),
    ]
    pair.tsu_answers(Status.WILL_SUPPLY)  # the broker's own answer
    assert pair.state(pair.pku, number) == ("will_supply", "WillSupply")
    assert notice_kinds(pair.pku_store) == ["ill_accepted"]


def test_the_lenders_confirmation_makes_the_status_request_received(pair: Pair) -> None:
    """A request just filed has no ISO 18626 status (""); the lender's OK requestConfirmation
    makes it RequestReceived; an ERROR confirmation leaves it without one."""
    first = pair.file(FORM)
    assert pair.state(pair.pku, first) == ("sent", "")
    [request] = claim_due(pair.pku_store, pair.clock.now(), "test", LEASE, 10)
    record_delivered(pair.pku_store, request.id, pair.clock.now(), Confirmation.accepted())
    assert pair.state(pair.pku, first) == ("sent", "RequestReceived")
    second = pair.file(FORM)
    [request] = claim_due(pair.pku_store, pair.clock.now(), "test", LEASE, 10)
    refused = Confirmation.error(ErrorType.UNRECOGNISED_DATA_VALUE, "no such patron")
    record_delivered(pair.pku_store, request.id, pair.clock.now(), refused)
    assert pair.state(pair.pku, second) == ("sent", "")


def test_cancel_yes_before_shipping_and_no_after(pair: Pair) -> None:
    form = replace(FORM, lenders=(SHL,))
    first = pair.file(form)
    pair.relay()
    assert pair.pku.cancel(first).ok
    assert pair.state(pair.pku, first)[0] == "cancel_pending"
    pair.relay()
    assert pair.state(pair.pku, first) == ("cancelled", "Cancelled")
    assert pair.shl_engine.item_info("M2").state == "available"
    # Shanghai ships while our cancel is on its way: the answer is no, and it is on loan.
    second = pair.file(form)
    pair.relay()
    shl_number = pair.shl.list_requests()[-1].number or ""
    assert pair.shl.ship(shl_number).ok
    assert pair.pku.cancel(second).ok
    pair.relay()
    assert pair.state(pair.pku, second) == ("shipped", "Loaned")
    answers = [m for m in pair.view(pair.pku, second).messages if m.direction == "in"]
    assert (answers[-1].reason_for_message, answers[-1].answer) == ("CancelResponse", "N")
    assert not pair.pku.cancel(second).ok  # shipped: not possible any more


def test_renew_and_overdue(pair: Pair) -> None:
    form = replace(FORM, lenders=(SHL,))
    number = pair.file(form)
    pair.relay()
    shl_number = pair.shl.list_requests()[0].number or ""
    assert pair.shl.ship(shl_number).ok
    pair.relay()
    first_due = pair.view(pair.pku, number).request.due_at
    assert pair.pku.renew(number).ok
    pair.relay()
    renewed_due = pair.view(pair.pku, number).request.due_at
    assert renewed_due is not None and first_due is not None and renewed_due > first_due
    assert pair.pku.renew(number).ok  # Shanghai allows one renewal: this one is refused
    pair.relay()
    assert pair.view(pair.pku, number).request.due_at == renewed_due
    pair.advance(days=100)
    assert pair.shl.process() == [shl_number]
    pair.relay()
    assert pair.state(pair.pku, number) == ("shipped", "Overdue")
    assert "ill_overdue" in notice_kinds(pair.pku_store)


def test_I4_and_I7_refusals_store_nothing(pair: Pair) -> None:
    cases: dict[str, dict[str, Any]] = {
        "ill_title_missing": {"title": "  "},
        "ill_title_too_long": {"title": "书" * 241},
        "ill_recipient_missing": {"recipient": ""},
        "ill_email_missing": {"email": ""},
        "ill_email_invalid": {"email": "not-an-address"},
        "ill_note_too_long": {"note": "注" * 51},
        "ill_partner_unknown": {"lenders": ("ISIL:CN-XXX",)},
    }
    for code, change in cases.items():
        refused = pair.pku.request("A", replace(FORM, **change))
        assert not refused.ok
        assert [r.code for r in refused.reasons] == [code]
        rule = "I7" if code == "ill_partner_unknown" else "I4"
        assert refused.reasons[0].rule == rule
        assert refused.reasons[0].zh and refused.reasons[0].en
    assert pair.pku.request("A", replace(FORM, title="书" * 240)).ok
    # I7: a reader the ILL staff did not confirm, or whose registration was revoked.
    unregistered = pair.pku.request("B", FORM)
    assert [r.code for r in unregistered.reasons] == ["ill_reader_not_registered"]
    assert pair.pku.revoke_reader("A").ok
    assert [r.code for r in pair.pku.request("A", FORM).reasons] == ["ill_reader_not_registered"]
    assert not pair.pku.confirm_reader("NOBODY").ok
    assert len(pair.pku.list_requests()) == 1  # only the 240-character title
    assert len(pair.pku_engine.fees_of("A")) == 1


def test_unknown_senders_and_requests_are_errors(pair: Pair) -> None:
    number = pair.file(FORM)
    pair.relay()

    def answer(supplier: str, request_id: str) -> SupplyingAgencyMessage:
        head = Header(AgencyId.parse(PKU), AgencyId.parse(supplier), pair.clock.now(), request_id)
        return SupplyingAgencyMessage(
            header=head,
            reason_for_message=ReasonForMessage.STATUS_CHANGE,
            status=Status.LOANED,
            last_change=pair.clock.now(),
        )

    stranger = pair.pku.on_supplying_agency_message(answer("ISIL:CN-XXX", number))
    assert not stranger.ok and "not a partner" in stranger.error_value
    unknown = pair.pku.on_supplying_agency_message(answer(TSU, "PK99999999"))
    assert not unknown.ok and "not found" in unknown.error_value
    not_asked = pair.pku.on_supplying_agency_message(answer(SHL, number))  # TSU was asked
    assert not not_asked.ok
    # An answer that makes no sense now is tolerated: confirmed, recorded, nothing moves.
    completed = SupplyingAgencyMessage(
        header=Header(AgencyId.parse(PKU), AgencyId.parse(TSU), pair.clock.now(), number),
        reason_for_message=ReasonForMessage.STATUS_CHANGE,
        status=Status.LOAN_COMPLETED,
        last_change=pair.clock.now(),
    )
    assert pair.pku.on_supplying_agency_message(completed).ok
    assert pair.state(pair.pku, number) == ("sent", "RequestReceived")  # as TSU confirmed


def test_a_failing_mail_fails_nothing(pair: Pair) -> None:
    """I5: the reader's notices are only queued; the request stands whatever the mail does."""
    form = replace(FORM, lenders=(SHL,))
    number = pair.file(form)
    pair.relay()
    notice = claim_next(pair.pku_store, pair.clock.now(), "mailer", LEASE)
    assert notice is not None and notice.kind == "ill_accepted"
    mark_failed_attempt(pair.pku_store, notice, pair.clock.now(), "Unknown SMTP host", 1, 30)
    assert pair.state(pair.pku, number) == ("will_supply", "WillSupply")


def test_a_named_lender_is_the_only_one_asked(pair: Pair) -> None:
    form = replace(FORM, lenders=(SHL,))
    pair.pku.request("A", form)
    sent = claim_due(pair.pku_store, pair.clock.now(), "t", LEASE, 10)
    assert [(type(m.message).__name__, m.url) for m in sent] == [("Request", URLS[SHL])]
