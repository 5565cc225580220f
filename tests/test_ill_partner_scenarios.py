"""One real `libgate serve` against a mock ISO 18626 partner (tests/ill_mock_partner.py) that
plays ReShare's and CrossLink illmock's behaviour, in both roles.

libgate as borrower, the mock as its lenders: Unfilled then the next lender of the rota, cancel
yes (before shipping) and no (after), renew yes then no, Overdue, Recalled, a partner that is
down at first (the request waits in the outbox and is delivered when it starts: nothing lost),
ReShare's `#seq:N#` note tokens.

libgate as lender, the mock as requester: WillSupply for a title we hold, Unfilled / NotHeld
for one we do not, Unfilled / PolicyProblem when suspended (I2), ERROR confirmations for an
unknown agency (I7), a duplicate request id, bad XML and ShippedForward, a StatusRequest's
StatusRequestResponse, Cancel before shipping answered CancelResponse Y.

Every message libgate sends the mock, and every confirmation it answers the mock with, is
checked against the v1.2 XSD in the mock (`invalid` must stay empty).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.circulation.ill_outbox import pending
from gateway.circulation.ill_types import (
    Action,
    BibliographicInfo,
    ErrorType,
    PatronInfo,
    ReasonForMessage,
    Request,
    RequestingAgencyMessage,
    ServiceInfo,
    Status,
    SupplyingAgencyMessage,
)
from gateway.store import open_store
from ill.reading import read_confirmation
from tests.conftest import FIXTURES
from tests.ill_mock_partner import MockPartner, requesting_header
from tests.ill_serve_support import history, ill_config, run, run_json, show, until, until_state
from tests.serve_support import free_port, running_gateway

pytestmark = pytest.mark.slow

US = "ISIL:CN-SHL"  # libgate
MOCK_A, MOCK_B = "ISIL:US-MOCKA", "ISIL:US-MOCKB"  # two lenders the first mock plays
LATE = "ISIL:US-LATE"  # a lender whose server is down at first
STRANGER = "ISIL:XX-NOBODY"  # not a partner
RECORD = "SHL000000001"  # our one lendable copy (参考外借资料, on the shelf)
SEED_COPY = "54122100517423"
READER = "P0001"


@dataclass
class Setting:
    config: Path
    store_url: str
    mock: MockPartner
    late: MockPartner


def partners(mock: MockPartner, late: MockPartner) -> list[tuple[str, str, str]]:
    return [
        (MOCK_A, "Mock A", mock.url),
        (MOCK_B, "Mock B", mock.url),
        (LATE, "Late", late.url),
    ]


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setting]:
    home = tmp_path_factory.mktemp("ill_partner")
    ill_port = free_port()
    ours = f"http://127.0.0.1:{ill_port}/iso18626"
    mock, late = MockPartner(free_port(), ours), MockPartner(free_port(), ours)
    store_url = f"sqlite:///{home / 'shl.db'}"
    config = ill_config(
        home,
        store_url=store_url,
        agency=US,
        ill_port=ill_port,
        partners=partners(mock, late),
        ill_extra="renewals = 1",
    )
    for args in (
        ["init"],
        ["load", "--database", "main", str(FIXTURES / "marc" / "demo_main.iso")],
        ["patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv")],
        ["ill", "readers", "confirm", READER],
    ):
        assert run(config, *args)[0] == 0
    mock.start()
    try:
        with running_gateway(config, [ill_port]):
            yield Setting(config, store_url, mock, late)
    finally:
        mock.stop()
        late.stop()
    assert mock.invalid == [] and late.invalid == []


@pytest.fixture(autouse=True)
def all_valid(setting: Setting) -> Iterator[None]:
    yield
    assert setting.mock.invalid == [], setting.mock.invalid
    assert setting.late.invalid == [], setting.late.invalid


def file_request(setting: Setting, note: str, *lenders: str, title: str = "明代政治史") -> str:
    """Our reader's request to `lenders` in order; its number."""
    args = ["ill", "request", READER, "--title", title, "--recipient", "张伟"]
    args += ["--email", "zhangwei@example.edu.cn", "--note", note]
    for lender in lenders:
        args += ["--lender", lender]
    code, filed = run_json(setting.config, *args)
    assert code == 0, filed
    return str(filed["request"]["number"])


def action(setting: Setting, what: str, number: str) -> dict[str, Any]:
    code, done = run_json(setting.config, "ill", what, number)
    assert code == 0, done
    return dict(done["request"])


# --- libgate as borrower ------------------------------------------------------------------------


def test_unfilled_then_the_next_lender_then_cancel_yes(setting: Setting) -> None:
    number = file_request(setting, "#UNFILLED,WILLSUPPLY#", MOCK_A, MOCK_B)
    supplied = until_state(setting.config, number, "will_supply")
    assert (supplied["partner"], supplied["status"]) == (MOCK_B, "WillSupply")
    assert supplied["supplying_agency_request_id"].startswith("MOCK-")
    assert history(supplied) == [
        ("out", "Request"),
        ("in", "Unfilled"),
        ("out", "Request"),
        ("in", "WillSupply"),
    ]
    # ReShare's sequence tokens come through in the notes, and change nothing.
    assert all(
        m["note"].startswith("#seq:") for m in supplied["messages"] if m["direction"] == "in"
    )
    asked = setting.mock.messages(number, Request)
    assert [str(r.header.supplying_agency) for r in asked] == [MOCK_A, MOCK_B]
    # The next lender is asked afresh: no supplier id of the first one goes with it.
    assert [r.header.supplying_agency_request_id for r in asked] == ["", ""]
    assert all(r.header.requesting_agency_request_id == number for r in asked)
    # Cancel before the lender shipped: yes.
    assert action(setting, "cancel", number)["state"] == "cancel_pending"
    cancelled = until_state(setting.config, number, "cancelled")
    assert cancelled["status"] == "Cancelled"
    [cancel] = setting.mock.messages(number, RequestingAgencyMessage)
    assert cancel.action is Action.CANCEL and str(cancel.header.supplying_agency) == MOCK_B
    assert cancel.header.supplying_agency_request_id == supplied["supplying_agency_request_id"]


def test_cancel_no_renew_yes_then_no_and_the_loan_completed(setting: Setting) -> None:
    number = file_request(setting, "#SHIPS_ON_CANCEL#", MOCK_A)
    until_state(setting.config, number, "will_supply")
    # The lender had already shipped when our Cancel arrived: no, and Loaned with a due date.
    action(setting, "cancel", number)
    shipped = until_state(setting.config, number, "shipped")
    assert shipped["status"] == "Loaned" and shipped["due_at"]
    assert ("in", "Loaned") in history(shipped)
    first_due = shipped["due_at"]
    # Renew: yes (a new due date), then no (the due date stays).
    action(setting, "renew", number)
    renewed = until(
        lambda: (s := show(setting.config, number))["due_at"] != first_due and s,
        "the renewed due date",
    )
    assert renewed["due_at"] > first_due and renewed["state"] == "shipped"
    action(setting, "renew", number)
    answers = until(
        lambda: a if len(a := renew_answers(setting, number)) == 2 else None,
        "two renew answers",
    )
    assert answers == ["Y", "N"]
    assert show(setting.config, number)["due_at"] == renewed["due_at"]
    # Received, shipped back, LoanCompleted.
    assert action(setting, "receive", number)["barcode"] == f"ILL-{number}"
    assert action(setting, "return", number)["state"] == "returned"
    done = until_state(setting.config, number, "completed")
    assert done["status"] == "LoanCompleted"
    actions = [m.action for m in setting.mock.messages(number, RequestingAgencyMessage)]
    assert actions == [
        Action.CANCEL,
        Action.RENEW,
        Action.RENEW,
        Action.RECEIVED,
        Action.SHIPPED_RETURN,
    ]


@pytest.mark.parametrize("scenario, status", [("OVERDUE", "Overdue"), ("RECALLED", "Recalled")])
def test_overdue_and_recalled(setting: Setting, scenario: str, status: str) -> None:
    number = file_request(setting, f"#LOANED_{scenario}#", MOCK_A)
    until(
        lambda: show(setting.config, number)["status"] == status,
        f"{status} at the borrower",
    )
    shown = show(setting.config, number)
    assert shown["state"] == "shipped" and shown["due_at"]
    assert history(shown)[-3:] == [("in", "WillSupply"), ("in", "Loaned"), ("in", status)]


def renew_answers(setting: Setting, number: str) -> list[str]:
    shown = show(setting.config, number)
    return [m["answer"] for m in shown["messages"] if m["reason_for_message"] == "RenewResponse"]


def outbox(setting: Setting) -> list[Any]:
    with open_store(setting.store_url) as store:
        return pending(store)


def test_a_partner_down_at_first_gets_the_request_when_it_starts(setting: Setting) -> None:
    number = file_request(setting, "#WILLSUPPLY#", LATE)
    # Nothing listens: the Request stays queued, tried again after a failure.
    tried = until(
        lambda: [e for e in outbox(setting) if e.url == setting.late.url and e.attempts >= 1],
        "a failed attempt",
    )
    assert tried[0].state == "queued" and tried[0].last_error
    assert show(setting.config, number)["state"] == "sent"
    setting.late.start()
    supplied = until_state(setting.config, number, "will_supply")
    assert supplied["partner"] == LATE
    # Delivered once, nothing lost, nothing left.
    assert len(setting.late.messages(number, Request)) == 1
    until(lambda: not [e for e in outbox(setting) if e.url == setting.late.url], "outbox empty")


# --- libgate as lender --------------------------------------------------------------------------


def partner_request(
    request_id: str, *, record_id: str = "", title: str = "", note: str = ""
) -> Request:
    return Request(
        header=requesting_header(request_id, MOCK_A, US),
        bibliographic=BibliographicInfo(title=title, supplier_unique_record_id=record_id),
        service=ServiceInfo(note=note),
        patron=PatronInfo(patron_id="MOCK-READER", name="Ann Reader"),
    )


def partner_action(request_id: str, what: Action, number: str = "") -> RequestingAgencyMessage:
    return RequestingAgencyMessage(
        requesting_header(request_id, MOCK_A, US, number), what, note="#seq:7#"
    )


def answers_to(setting: Setting, request_id: str, count: int) -> list[SupplyingAgencyMessage]:
    def probe() -> list[SupplyingAgencyMessage] | None:
        found = setting.mock.messages(request_id, SupplyingAgencyMessage)
        answers = [m for m in found if isinstance(m, SupplyingAgencyMessage)]
        return answers if len(answers) >= count else None

    return until(probe, f"{count} answers to {request_id}")


def test_lending_willsupply_status_unsupported_duplicate_cancel(setting: Setting) -> None:
    mock = setting.mock
    confirmed = mock.send(partner_request("MOCK-REQ-1", record_id=RECORD, note="#seq:1#"))
    assert confirmed.confirmation.ok
    [will] = answers_to(setting, "MOCK-REQ-1", 1)
    assert (will.status, will.reason_for_message) == (
        Status.WILL_SUPPLY,
        ReasonForMessage.REQUEST_RESPONSE,
    )
    number = will.header.supplying_agency_request_id
    assert number.startswith("ST") and len(number) == 10
    lent = show(setting.config, number)
    assert (lent["role"], lent["barcode"], lent["partner"]) == ("lender", SEED_COPY, MOCK_A)
    # The same id again: ERROR, nothing new.
    again = mock.send(partner_request("MOCK-REQ-1", record_id=RECORD))
    assert not again.confirmation.ok
    assert again.confirmation.error_type is ErrorType.UNRECOGNISED_DATA_VALUE
    # StatusRequest: a StatusRequestResponse with the status as it is.
    assert mock.send(partner_action("MOCK-REQ-1", Action.STATUS_REQUEST, number)).confirmation.ok
    status = answers_to(setting, "MOCK-REQ-1", 2)[1]
    assert status.reason_for_message is ReasonForMessage.STATUS_REQUEST_RESPONSE
    assert status.status is Status.WILL_SUPPLY
    # ShippedForward is not something libgate does.
    forward = mock.send(partner_action("MOCK-REQ-1", Action.SHIPPED_FORWARD, number))
    assert forward.confirmation.error_type is ErrorType.UNSUPPORTED_ACTION_TYPE
    assert forward.action is Action.SHIPPED_FORWARD
    # Cancel before shipping: yes, Cancelled, the copy back on the shelf.
    assert mock.send(partner_action("MOCK-REQ-1", Action.CANCEL, number)).confirmation.ok
    cancel = answers_to(setting, "MOCK-REQ-1", 3)[2]
    assert cancel.reason_for_message is ReasonForMessage.CANCEL_RESPONSE
    assert (cancel.answer_yes_no, cancel.status) == (True, Status.CANCELLED)
    code, status_now = run_json(setting.config, "circ", "status", SEED_COPY)
    assert status_now["availability"]["copies"][0]["available"] is True
    assert len(mock.messages("MOCK-REQ-1", SupplyingAgencyMessage)) == 3


def test_lending_not_held(setting: Setting) -> None:
    assert setting.mock.send(partner_request("MOCK-REQ-2", title="一本没有的书")).confirmation.ok
    [unfilled] = answers_to(setting, "MOCK-REQ-2", 1)
    assert (unfilled.status, unfilled.reason_unfilled) == (Status.UNFILLED, "NotHeld")


def test_lending_refuses_an_unknown_agency(setting: Setting) -> None:
    stranger = Request(
        header=requesting_header("X-1", STRANGER, US),
        bibliographic=BibliographicInfo(supplier_unique_record_id=RECORD),
    )
    confirmed = setting.mock.send(stranger)
    assert not confirmed.confirmation.ok
    assert confirmed.confirmation.error_type is ErrorType.UNRECOGNISED_DATA_VALUE
    assert STRANGER in confirmed.confirmation.error_value
    assert run(setting.config, "ill", "show", "X-1")[0] == 3  # nothing stored


def test_bad_xml_is_badly_formed(setting: Setting) -> None:
    for body in (b"<ISO18626Message", b"<not-iso18626/>", b"\x00\xff"):
        data = setting.mock.post(body)
        assert setting.mock.valid(data, "confirmation of bad XML")
        confirmation = read_confirmation(data, 1 << 20)
        assert confirmation.confirmation.error_type is ErrorType.BADLY_FORMED_MESSAGE


def test_lending_suspended_is_unfilled_policy_problem(tmp_path: Path, setting: Setting) -> None:
    """I2, on a second short-lived libgate (suspended = true) with the same mock as partner."""
    ill_port = free_port()
    ours = f"http://127.0.0.1:{ill_port}/iso18626"
    mock = MockPartner(free_port(), ours)
    config = ill_config(
        tmp_path,
        store_url=f"sqlite:///{tmp_path / 'closed.db'}",
        agency=US,
        ill_port=ill_port,
        partners=[(MOCK_A, "Mock A", mock.url)],
        ill_extra="suspended = true",
    )
    assert run(config, "init")[0] == 0
    mock.start()
    try:
        with running_gateway(config, [ill_port]):
            assert mock.send(partner_request("MOCK-REQ-3", record_id=RECORD)).confirmation.ok
            [refused] = until(
                lambda: mock.messages("MOCK-REQ-3", SupplyingAgencyMessage) or None,
                "the suspended library's answer",
            )
    finally:
        mock.stop()
    assert isinstance(refused, SupplyingAgencyMessage)
    assert (refused.status, refused.reason_unfilled) == (Status.UNFILLED, "PolicyProblem")
    assert refused.note
    assert mock.invalid == []


def test_lending_a_loan_renewed_once_returned_and_completed(setting: Setting) -> None:
    """Ship, Renew yes then no ([ill] renewals = 1), ShippedReturn, the desk checkin."""
    mock = setting.mock
    assert mock.send(partner_request("MOCK-REQ-4", record_id=RECORD)).confirmation.ok
    [will] = answers_to(setting, "MOCK-REQ-4", 1)
    assert will.status is Status.WILL_SUPPLY
    number = will.header.supplying_agency_request_id
    action(setting, "ship", number)
    loaned = answers_to(setting, "MOCK-REQ-4", 2)[1]
    assert loaned.status is Status.LOANED and loaned.due_date is not None
    for _ in range(2):
        assert mock.send(partner_action("MOCK-REQ-4", Action.RENEW, number)).confirmation.ok
    yes, no = answers_to(setting, "MOCK-REQ-4", 4)[2:]
    assert (yes.reason_for_message, yes.answer_yes_no) == (ReasonForMessage.RENEW_RESPONSE, True)
    assert yes.due_date is not None and yes.due_date > loaned.due_date
    assert (no.reason_for_message, no.answer_yes_no) == (ReasonForMessage.RENEW_RESPONSE, False)
    # Cancel after shipping: no, and the status stays Loaned.
    assert mock.send(partner_action("MOCK-REQ-4", Action.CANCEL, number)).confirmation.ok
    refused = answers_to(setting, "MOCK-REQ-4", 5)[4]
    assert (refused.answer_yes_no, refused.status) == (False, Status.LOANED)
    for what in (Action.RECEIVED, Action.SHIPPED_RETURN):
        assert mock.send(partner_action("MOCK-REQ-4", what, number)).confirmation.ok
    until_state(setting.config, number, "returning")
    assert run(setting.config, "circ", "checkin", SEED_COPY)[0] == 0
    completed = answers_to(setting, "MOCK-REQ-4", 6)[5]
    assert completed.status is Status.LOAN_COMPLETED
    assert show(setting.config, number)["state"] == "completed"


def test_no_lender_left_ends_the_rota(setting: Setting) -> None:
    number = file_request(setting, "#UNFILLED#", MOCK_A)
    ended = until_state(setting.config, number, "end_of_rota")
    assert (ended["status"], ended["reason"]) == ("Unfilled", "NotHeld")


def test_borrower_tolerates_and_refuses_what_a_lender_says(setting: Setting) -> None:
    number = file_request(setting, "#LOANED#", MOCK_A)
    until_state(setting.config, number, "shipped")
    mine = setting.mock.transactions[(MOCK_A, number)].number

    def lender_says(request_id: str, status: Status) -> Any:
        return setting.mock.send(
            SupplyingAgencyMessage(
                header=requesting_header(request_id, US, MOCK_A, mine),
                reason_for_message=ReasonForMessage.STATUS_CHANGE,
                status=status,
                last_change=datetime.now(UTC).replace(microsecond=0),
                note="#seq:99# out of order",
            )
        )

    # A status that makes no sense now (WillSupply after Loaned) is confirmed and changes nothing.
    assert lender_says(number, Status.WILL_SUPPLY).confirmation.ok
    after = show(setting.config, number)
    assert (after["state"], after["status"]) == ("shipped", "Loaned")
    # A request we never made: ERROR, UnrecognisedDataValue.
    unknown = lender_says("ST99999999", Status.LOANED)
    assert unknown.confirmation.error_type is ErrorType.UNRECOGNISED_DATA_VALUE
