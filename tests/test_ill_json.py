"""ISO 18626 messages survive the outbox's JSON unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.circulation.ill_json import (
    MessageJsonError,
    confirmation_from_json,
    from_json,
    to_json,
)
from gateway.circulation.ill_types import (
    Action,
    AgencyId,
    BibliographicInfo,
    Confirmation,
    DeliveryInfo,
    ErrorType,
    Header,
    PatronInfo,
    PublicationInfo,
    ReasonForMessage,
    Request,
    RequestingAgencyMessage,
    ServiceInfo,
    Status,
    SupplyingAgencyMessage,
)

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HEADER = Header(
    requesting_agency=AgencyId("ISIL", "CN-PKU"),
    supplying_agency=AgencyId("ISIL", "CN-SHL"),
    timestamp=AT,
    requesting_agency_request_id="PKU-1",
    supplying_agency_request_id="ST00000001",
)

MESSAGES = [
    Request(
        header=HEADER,
        bibliographic=BibliographicInfo(
            title="剑桥中国明代史",
            author="牟复礼",
            supplier_unique_record_id="T-MING",
            isbn="9787500400000",
            other_ids=(("OCLC", "123"), ("LCCN", "x")),
        ),
        publication=PublicationInfo(
            publisher="中国社会科学出版社", year="1992", publication_type="Book"
        ),
        service=ServiceInfo(need_before=AT + timedelta(days=30), note="请尽快"),
        patron=PatronInfo(patron_id="P1", name="张三", email="z@pku.example", phone="1"),
        delivery=DeliveryInfo(recipient="张三", email="z@pku.example", method="Courier"),
        language="chi",
    ),
    SupplyingAgencyMessage(
        header=HEADER,
        reason_for_message=ReasonForMessage.RENEW_RESPONSE,
        status=Status.LOANED,
        last_change=AT.astimezone(timezone(timedelta(hours=8))),
        answer_yes_no=True,
        due_date=AT + timedelta(days=45),
        item_id="M2",
    ),
    SupplyingAgencyMessage(
        header=Header(AgencyId("ISIL", "CN-PKU"), None, AT, "PKU-2"),
        reason_for_message=ReasonForMessage.REQUEST_RESPONSE,
        status=Status.UNFILLED,
        last_change=AT,
        reason_unfilled="NotHeld",
    ),
    RequestingAgencyMessage(header=HEADER, action=Action.SHIPPED_RETURN, note="顺丰 123"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message) -> None:
    assert from_json(to_json(message)) == message


def test_confirmation_round_trip() -> None:
    for confirmation in (
        Confirmation.accepted(),
        Confirmation.error(ErrorType.UNSUPPORTED_ACTION_TYPE, "ShippedForward"),
    ):
        assert confirmation_from_json(to_json(confirmation)) == confirmation


def test_not_a_message() -> None:
    with pytest.raises(MessageJsonError):
        from_json('{"type": "Patron", "value": {}}')
