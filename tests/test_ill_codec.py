"""The ISO 18626 codec without a server: the 29 OCLC samples are read (or answered with their
error), everything we write validates against the v1.2 XSD and reads back equal, and hostile or
broken input only ever raises MessageError carrying the errorType to answer with."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from gateway.circulation.ill_types import (
    Action,
    AgencyId,
    BibliographicInfo,
    Confirmation,
    DeliveryInfo,
    ErrorType,
    Header,
    Message,
    PatronInfo,
    PublicationInfo,
    ReasonForMessage,
    ReasonRetry,
    ReasonUnfilled,
    Request,
    RequestingAgencyMessage,
    ServiceInfo,
    Status,
    SupplyingAgencyMessage,
)
from ill.reading import read_confirmation, read_message
from ill.wire import ConfirmationHeader, MessageError, MessageKind, format_date_time
from ill.writing import write_confirmation, write_message
from tests.conftest import FIXTURES

ISO = FIXTURES / "iso18626"
SAMPLES = ISO / "samples"
LIMIT = 102400
NS = "http://illtransactions.org/2013/iso18626"
BAD = ErrorType.BADLY_FORMED_MESSAGE


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(ISO / "ISO-18626-v1_2.xsd"), parser))


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def assert_valid(schema: etree.XMLSchema, data: bytes) -> None:
    document = etree.fromstring(data)
    assert schema.validate(document), schema.error_log


# Every sample, and what libgate makes of it: the message type it reads, or (for the five
# confirmations, which a partner never POSTs as a message) BadlyFormedMessage.
SAMPLE_OUTCOMES: dict[str, type | ErrorType] = {
    "NewRequest.xml": Request,
    "RequestConfirmationSample1.xml": BAD,
    "RequestConfirmationSampleError.xml": BAD,
    "RequestFullWSILLMappingSample1.xml": Request,
    "RequestSample1.xml": Request,
    "RequestSample1ForISOService.xml": Request,
    "RequestSample2ForISOService.xml": Request,
    "RequestingAgencyConfirmationReceivedSample1.xml": BAD,
    "RequestingAgencyMessageCancel.xml": RequestingAgencyMessage,
    "RequestingAgencyMessageConfirmationSample1.xml": BAD,
    "RequestingAgencyMessageNotification1.xml": RequestingAgencyMessage,
    "RequestingAgencyMessageReceived.xml": RequestingAgencyMessage,
    "RequestingAgencyMessageRenew.xml": RequestingAgencyMessage,
    "RequestingAgencyMessageReturned.xml": RequestingAgencyMessage,
    "RequestingAgencyMessageSample1.xml": RequestingAgencyMessage,
    "SupplyingAgencyMessageCancelNo.xml": SupplyingAgencyMessage,
    "SupplyingAgencyMessageCancelYes.xml": SupplyingAgencyMessage,
    "SupplyingAgencyMessageClosedSupplied.xml": SupplyingAgencyMessage,
    "SupplyingAgencyMessageConfirmationSample1.xml": BAD,
    "SupplyingAgencyMessageLoaned.xml": SupplyingAgencyMessage,
    "SupplyingAgencyMessageNotification1.xml": SupplyingAgencyMessage,
    "SupplyingAgencyMessageNotificationSample1.xml": SupplyingAgencyMessage,
    "SupplyingAgencyMessageOverdue.xml": SupplyingAgencyMessage,
    "SupplyingAgencyMessageRecall.xml": SupplyingAgencyMessage,
    "SupplyingAgencyMessageRefused.xml": SupplyingAgencyMessage,
    "SupplyingAgencyMessageRenewNo.xml": SupplyingAgencyMessage,
    "SupplyingAgencyMessageRenewYes.xml": SupplyingAgencyMessage,
    "SupplyingAgencyMessageSample1.xml": SupplyingAgencyMessage,
    "SupplyingAgencyMessageShippedCopy.xml": SupplyingAgencyMessage,
}


def test_the_table_covers_all_29_samples() -> None:
    assert sorted(p.name for p in SAMPLES.glob("*.xml")) == sorted(SAMPLE_OUTCOMES)
    assert len(SAMPLE_OUTCOMES) == 29


@pytest.mark.parametrize("name", sorted(SAMPLE_OUTCOMES))
def test_every_sample_is_valid_v1_2_and_read_or_answered(
    name: str, schema: etree.XMLSchema
) -> None:
    data = sample(name)
    assert_valid(schema, data)  # the fixture itself is what the standard allows
    expected = SAMPLE_OUTCOMES[name]
    if isinstance(expected, ErrorType):
        with pytest.raises(MessageError) as raised:
            read_message(data, LIMIT)
        assert raised.value.error_type is expected
        assert "is an answer, not a message" in raised.value.error_value
        # ... and our answer to it is itself a valid confirmation
        assert_valid(schema, answer(raised.value))
    else:
        message = read_message(data, LIMIT)
        assert type(message) is expected
        # what we read, we can say again: the message written back validates and reads equal
        written = write_message(message)
        assert_valid(schema, written)
        assert read_message(written, LIMIT) == message


def answer(error: MessageError) -> bytes:
    return write_confirmation(
        error.kind,
        error.header,
        error.confirmation,
        datetime(2026, 12, 7, 8, 0, tzinfo=UTC),
        reason_for_message=error.reason_for_message,
        action=error.action,
    )


CONFIRMATION_SAMPLES = {
    "RequestConfirmationSample1.xml": (MessageKind.REQUEST, Confirmation.accepted()),
    "RequestConfirmationSampleError.xml": (
        MessageKind.REQUEST,
        Confirmation.error(BAD, "Some explanation of the error here"),
    ),
    "RequestingAgencyConfirmationReceivedSample1.xml": (
        MessageKind.REQUESTING_AGENCY_MESSAGE,
        Confirmation.accepted(),
    ),
    # messageStatus OK with an errorData beside it: OK is what counts
    "RequestingAgencyMessageConfirmationSample1.xml": (
        MessageKind.REQUESTING_AGENCY_MESSAGE,
        Confirmation.accepted(),
    ),
    "SupplyingAgencyMessageConfirmationSample1.xml": (
        MessageKind.SUPPLYING_AGENCY_MESSAGE,
        Confirmation.accepted(),
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIRMATION_SAMPLES))
def test_the_confirmation_samples_are_read_as_confirmations(name: str) -> None:
    kind, confirmation = CONFIRMATION_SAMPLES[name]
    received = read_confirmation(sample(name), LIMIT)
    assert received.kind is kind
    assert received.confirmation == confirmation
    assert received.header.requesting_agency is not None


def test_confirmation_samples_echo_header_action_and_reason() -> None:
    received = read_confirmation(sample("SupplyingAgencyMessageConfirmationSample1.xml"), LIMIT)
    assert received.reason_for_message is ReasonForMessage.NOTIFICATION
    assert received.header == ConfirmationHeader(
        supplying_agency=AgencyId("ISIL", "US-ocolcwe"),
        requesting_agency=AgencyId("ISIL", "US-ocolcm"),
        timestamp=datetime(2018, 2, 8, 8, 34, 54, tzinfo=UTC),
        requesting_agency_request_id="Request-ID-001",
        multiple_item_request_id="what's this",
    )
    assert received.timestamp_received == datetime(2018, 2, 8, 8, 35, tzinfo=UTC)
    action = read_confirmation(sample("RequestingAgencyMessageConfirmationSample1.xml"), LIMIT)
    assert action.action is Action.NOTIFICATION


def test_a_messages_is_not_a_confirmation() -> None:
    with pytest.raises(MessageError) as raised:
        read_confirmation(sample("NewRequest.xml"), LIMIT)
    assert raised.value.error_type is BAD


def test_new_request_sample_fields() -> None:
    request = read_message(sample("NewRequest.xml"), LIMIT)
    assert isinstance(request, Request)
    assert request.header == Header(
        requesting_agency=AgencyId("ISIL", "OCLC-BCDEF"),
        supplying_agency=AgencyId("ISIL", "OCLC-ABCDE"),
        timestamp=datetime(2021, 3, 2, 5, 0, tzinfo=UTC),
        requesting_agency_request_id="168166854",
    )
    assert request.bibliographic == BibliographicInfo(
        title="Harry Potter and the Half-Blood Prince",
        author="Rowling, J. K.; GrandPré, Mary",
        isbn="9780439784542",
        other_ids=(("OCLC", "57358293"),),
    )
    assert request.publication.publication_type == "Book"
    assert request.publication.publisher.startswith("New York, NY : Arthur A. Levine Books")
    assert request.service == ServiceInfo(
        request_type="New",
        service_type="Loan",
        need_before=datetime(2021, 4, 2, tzinfo=UTC),
        note="test request",
    )
    assert request.delivery == DeliveryInfo(
        address="6565 Kilgour Place, MC 455, Rotterdam, 3000 DR, MA",
        email="library@example.com",
    )


def test_full_request_sample_fields() -> None:
    request = read_message(sample("RequestSample1.xml"), LIMIT)
    assert isinstance(request, Request)
    assert request.patron == PatronInfo(patron_id="Patron-1234", name="Given Surname")
    assert request.delivery.recipient == "Librarian Name"
    assert request.delivery.method == "Normal"  # serviceLevel
    assert request.service.service_type == "CopyOrLoan"
    assert request.publication == PublicationInfo(
        publisher="Publisher", place="New York", year="2010-03-02", publication_type="Book"
    )
    patron = read_message(sample("RequestSample2ForISOService.xml"), LIMIT)
    assert isinstance(patron, Request)
    assert patron.patron.patron_id == "1234"


def test_supplying_agency_sample_fields() -> None:
    refused = read_message(sample("SupplyingAgencyMessageRefused.xml"), LIMIT)
    assert isinstance(refused, SupplyingAgencyMessage)
    assert refused.status is Status.UNFILLED
    assert refused.reason_for_message is ReasonForMessage.REQUEST_RESPONSE
    assert refused.reason_unfilled == ReasonUnfilled.NOT_HELD
    assert refused.header.supplying_agency_request_id == "168134645"

    loaned = read_message(sample("SupplyingAgencyMessageLoaned.xml"), LIMIT)
    assert isinstance(loaned, SupplyingAgencyMessage)
    assert loaned.status is Status.LOANED
    assert loaned.due_date == datetime(2021, 3, 11, 5, 0, tzinfo=UTC)
    assert loaned.note == "test request\n                Loan condition: OTHER (none)"

    full = read_message(sample("SupplyingAgencyMessageSample1.xml"), LIMIT)
    assert isinstance(full, SupplyingAgencyMessage)
    assert full.answer_yes_no is True
    assert full.reason_retry == ReasonRetry.AT_BINDERY
    assert full.reason_unfilled == ReasonUnfilled.NOT_ON_SHELF
    assert full.item_id == "Item-0001"
    assert full.expected_delivery_date == datetime(2018, 3, 12, 12, tzinfo=UTC)

    no = read_message(sample("SupplyingAgencyMessageCancelNo.xml"), LIMIT)
    assert isinstance(no, SupplyingAgencyMessage)
    assert no.answer_yes_no is False and no.reason_for_message is ReasonForMessage.CANCEL_RESPONSE


def test_requesting_agency_sample_fields() -> None:
    expected = {
        "RequestingAgencyMessageCancel.xml": Action.CANCEL,
        "RequestingAgencyMessageNotification1.xml": Action.NOTIFICATION,
        "RequestingAgencyMessageReceived.xml": Action.RECEIVED,
        "RequestingAgencyMessageRenew.xml": Action.RENEW,
        "RequestingAgencyMessageReturned.xml": Action.SHIPPED_RETURN,
        "RequestingAgencyMessageSample1.xml": Action.STATUS_REQUEST,
    }
    for name, action in expected.items():
        message = read_message(sample(name), LIMIT)
        assert isinstance(message, RequestingAgencyMessage)
        assert message.action is action, name
    notification = read_message(sample("RequestingAgencyMessageNotification1.xml"), LIMIT)
    assert notification.header.supplying_agency_request_id == "supply-id-001"
    assert isinstance(notification, RequestingAgencyMessage)
    assert notification.note.startswith("Your message with timestamp")


# Messages we write: every status, action and reason, CJK text.

AT = datetime(2026, 12, 7, 9, 30, 15, tzinfo=UTC)
SHL = AgencyId("ISIL", "CN-SHL")
PKU = AgencyId("ISIL", "CN-PKU")


def header(**changes: object) -> Header:
    base = Header(
        requesting_agency=PKU,
        supplying_agency=SHL,
        timestamp=AT,
        requesting_agency_request_id="PKU-2026-0001",
        supplying_agency_request_id="ST00000001",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def seed_request() -> Request:
    """The seed's form: a reader at a Beijing university asks Shanghai Library."""
    return Request(
        header=header(supplying_agency_request_id=""),
        bibliographic=BibliographicInfo(
            title="红楼梦：脂砚斋重评石头记",
            author="曹雪芹 著；脂砚斋 评",
            supplier_unique_record_id="CAL012345678",
            subtitle="庚辰本",
            edition="第2版",
            isbn="9787020002207",
            issn="1002-1234",
            other_ids=(("CALIS", "CAL-0001"), ("OCLC", "12345")),
        ),
        publication=PublicationInfo(
            publisher="人民文学出版社", place="北京", year="1982", publication_type="Book"
        ),
        service=ServiceInfo(
            request_type="New",
            service_type="Loan",
            need_before=datetime(2027, 1, 15, 16, 0, tzinfo=timezone(timedelta(hours=8))),
            note="#seq:1# 请尽快寄出，谢谢",
        ),
        patron=PatronInfo(
            patron_id="2019010203", name="王小明", email="wxm@pku.edu.cn", phone="010-62751234"
        ),
        delivery=DeliveryInfo(
            recipient="李老师（馆际互借处）",
            address="北京市海淀区颐和园路5号 北京大学图书馆 100871",
            email="ill@lib.pku.edu.cn",
            method="Courier",
        ),
    )


def supplying(
    status: Status, reason: ReasonForMessage, **changes: object
) -> SupplyingAgencyMessage:
    message = SupplyingAgencyMessage(
        header=header(),
        reason_for_message=reason,
        status=status,
        last_change=AT,
    )
    return dataclasses.replace(message, **changes)  # type: ignore[arg-type]


def messages_we_write() -> list[Message]:
    written: list[Message] = [
        seed_request(),
        # the smallest request: header and title
        Request(
            header=header(supplying_agency_request_id=""),
            bibliographic=BibliographicInfo(title="论语"),
        ),
    ]
    for status in Status:
        written.append(supplying(status, ReasonForMessage.STATUS_CHANGE, note=f"状态：{status}"))
    for reason in ReasonForMessage:
        written.append(supplying(Status.WILL_SUPPLY, reason))
    written += [
        supplying(
            Status.LOANED,
            ReasonForMessage.REQUEST_RESPONSE,
            due_date=AT + timedelta(days=45),
            item_id="SHL0001234",
            note="请于到期日前归还",
        ),
        supplying(
            Status.UNFILLED,
            ReasonForMessage.REQUEST_RESPONSE,
            reason_unfilled=ReasonUnfilled.POLICY_PROBLEM,
            note="上海图书馆馆际互借服务暂停",
        ),
        supplying(
            Status.RETRY_POSSIBLE,
            ReasonForMessage.REQUEST_RESPONSE,
            reason_retry=ReasonRetry.ON_LOAN,
        ),
        supplying(Status.CANCELLED, ReasonForMessage.CANCEL_RESPONSE, answer_yes_no=True),
        supplying(Status.LOANED, ReasonForMessage.CANCEL_RESPONSE, answer_yes_no=False),
        supplying(
            Status.LOANED,
            ReasonForMessage.RENEW_RESPONSE,
            answer_yes_no=True,
            due_date=datetime(2027, 3, 1, 23, 59, 59, 500000, tzinfo=timezone(timedelta(hours=8))),
        ),
        supplying(
            Status.EXPECT_TO_SUPPLY,
            ReasonForMessage.REQUEST_RESPONSE,
            expected_delivery_date=AT + timedelta(days=3),
        ),
    ]
    for action in Action:
        written.append(
            RequestingAgencyMessage(header=header(), action=action, note=f"{action}：备注")
        )
    written.append(
        RequestingAgencyMessage(header=header(supplying_agency_request_id=""), action=Action.CANCEL)
    )
    return written


MESSAGES = messages_we_write()


def test_the_written_messages_cover_every_status_action_and_reason() -> None:
    sams = [m for m in MESSAGES if isinstance(m, SupplyingAgencyMessage)]
    rams = [m for m in MESSAGES if isinstance(m, RequestingAgencyMessage)]
    assert {m.status for m in sams} == set(Status)
    assert {m.reason_for_message for m in sams} == set(ReasonForMessage)
    assert {m.action for m in rams} == set(Action)


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_we_write_validates_and_reads_back_equal(
    message: Message, schema: etree.XMLSchema
) -> None:
    data = write_message(message)
    assert_valid(schema, data)
    root = etree.fromstring(data)
    assert root.get(f"{{{NS}}}version") == "1.2"
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert read_message(data, LIMIT) == message


def test_cjk_is_sent_as_utf8_text() -> None:
    data = write_message(seed_request())
    assert "红楼梦：脂砚斋重评石头记".encode() in data
    assert "王小明".encode() in data


def test_dates_carry_their_zone() -> None:
    data = write_message(seed_request()).decode()
    assert "<ill:timestamp>2026-12-07T09:30:15Z</ill:timestamp>" in data
    assert "<ill:needBeforeDate>2027-01-15T16:00:00+08:00</ill:needBeforeDate>" in data
    assert format_date_time(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"


def test_a_message_without_a_supplier_is_not_sent() -> None:
    with pytest.raises(ValueError):
        write_message(
            RequestingAgencyMessage(header=header(supplying_agency=None), action=Action.CANCEL)
        )


def test_text_xml_cannot_carry_is_left_out() -> None:
    message = RequestingAgencyMessage(
        header=header(), action=Action.NOTIFICATION, note="a\x00b\x1bc\r\nd"
    )
    read = read_message(write_message(message), LIMIT)
    assert isinstance(read, RequestingAgencyMessage)
    assert read.note == "abc\r\nd"  # \r survives as &#13;


CONFIRMATIONS = [
    Confirmation.accepted(),
    *(Confirmation.error(error_type, f"{error_type}：说明") for error_type in ErrorType),
    Confirmation.error(BAD, ""),
]


@pytest.mark.parametrize("kind", [*MessageKind, None])
@pytest.mark.parametrize("confirmation", CONFIRMATIONS, ids=lambda c: str(c.error_type or "OK"))
def test_every_confirmation_we_write_validates_and_reads_back(
    kind: MessageKind | None, confirmation: Confirmation, schema: etree.XMLSchema
) -> None:
    echo = ConfirmationHeader.echoing(header())
    received_at = AT + timedelta(seconds=2)
    data = write_confirmation(
        kind,
        echo,
        confirmation,
        received_at,
        reason_for_message=ReasonForMessage.STATUS_CHANGE,
        action=Action.RENEW,
    )
    assert_valid(schema, data)
    read = read_confirmation(data, LIMIT)
    assert read.kind is (kind or MessageKind.REQUEST)
    assert read.confirmation == confirmation
    assert read.header == echo
    assert read.timestamp_received == received_at
    # reasonForMessage belongs to the SAM confirmation only, action to the RAM one only
    expected_reason = (
        ReasonForMessage.STATUS_CHANGE if kind is MessageKind.SUPPLYING_AGENCY_MESSAGE else None
    )
    expected_action = Action.RENEW if kind is MessageKind.REQUESTING_AGENCY_MESSAGE else None
    assert read.reason_for_message is expected_reason
    assert read.action is expected_action


def test_a_confirmation_with_nothing_read_still_validates(schema: etree.XMLSchema) -> None:
    data = write_confirmation(None, ConfirmationHeader(), Confirmation.error(BAD, "not XML"), AT)
    assert_valid(schema, data)
    read = read_confirmation(data, LIMIT)
    assert read.header.timestamp == AT  # our own time stands in for the unread one


# Errors, each with its errorType, kind and echo.


def replaced(name: str, old: str, new: str) -> bytes:
    text = sample(name).decode()
    assert old in text
    return text.replace(old, new).encode()


def refused(data: bytes, limit: int = LIMIT) -> MessageError:
    with pytest.raises(MessageError) as raised:
        read_message(data, limit)
    return raised.value


def test_an_action_outside_the_seven_is_unsupported_and_echoes_the_header(
    schema: etree.XMLSchema,
) -> None:
    error = refused(replaced("RequestingAgencyMessageRenew.xml", ">Renew<", ">HoldReturn<"))
    assert error.error_type is ErrorType.UNSUPPORTED_ACTION_TYPE
    assert "'HoldReturn'" in error.error_value
    assert error.kind is MessageKind.REQUESTING_AGENCY_MESSAGE
    assert error.header.requesting_agency == AgencyId("ISIL", "OCLC-BCDEF")
    assert error.header.requesting_agency_request_id is not None
    assert error.action is None  # an unknown action is not echoed (the XSD could not take it)
    assert_valid(schema, answer(error))


def test_an_unknown_reason_for_message_is_unsupported() -> None:
    error = refused(replaced("SupplyingAgencyMessageOverdue.xml", ">StatusChange<", ">Gossip<"))
    assert error.error_type is ErrorType.UNSUPPORTED_REASON_FOR_MESSAGE_TYPE
    assert error.kind is MessageKind.SUPPLYING_AGENCY_MESSAGE


def test_an_unknown_status_is_an_unrecognised_value_and_echoes_the_reason(
    schema: etree.XMLSchema,
) -> None:
    error = refused(replaced("SupplyingAgencyMessageOverdue.xml", ">Overdue<", ">HoldReturn<"))
    assert error.error_type is ErrorType.UNRECOGNISED_DATA_VALUE
    assert error.reason_for_message is ReasonForMessage.STATUS_CHANGE
    assert "status 'HoldReturn'" in error.error_value
    assert_valid(schema, answer(error))


@pytest.mark.parametrize(
    ("name", "old", "new", "error_type", "says"),
    [
        (
            "SupplyingAgencyMessageRenewYes.xml",
            ">Y<",
            ">Yes<",
            ErrorType.UNRECOGNISED_DATA_VALUE,
            "answerYesNo",
        ),
        ("RequestSample1.xml", ">New<", ">Old<", ErrorType.UNRECOGNISED_DATA_VALUE, "requestType"),
        (
            "RequestSample1.xml",
            ">CopyOrLoan<",
            ">Borrow<",
            ErrorType.UNRECOGNISED_DATA_VALUE,
            "serviceType",
        ),
        (
            "SupplyingAgencyMessageLoaned.xml",
            "2021-03-11T05:00:00Z",
            "next tuesday",
            BAD,
            "dueDate",
        ),
        (
            "SupplyingAgencyMessageLoaned.xml",
            "2021-03-11T05:00:00Z",
            "2021-02-30T05:00:00Z",
            BAD,
            "dueDate",
        ),
        ("NewRequest.xml", "2021-03-02T05:00:00Z", "2021-03-02T25:00:00Z", BAD, "timestamp"),
        (
            "NewRequest.xml",
            ":bibliographicInfo>",
            ":bibliographicInfoX>",
            BAD,
            "bibliographicInfo is missing",
        ),
        (
            "RequestingAgencyMessageCancel.xml",
            "<ns1:action>Cancel</ns1:action>",
            "",
            BAD,
            "action is missing",
        ),
        (
            "SupplyingAgencyMessageRefused.xml",
            "<ns1:lastChange>2021-02-09T11:39:19Z</ns1:lastChange>",
            "",
            BAD,
            "lastChange is missing",
        ),
        (
            "RequestingAgencyMessageCancel.xml",
            ">168134641<",
            "><",
            BAD,
            "requestingAgencyRequestId is empty",
        ),
        (
            "RequestingAgencyMessageCancel.xml",
            ">OCLC-BCDEF<",
            "><",
            BAD,
            "requestingAgencyId needs",
        ),
        (
            "RequestingAgencyMessageCancel.xml",
            'ns1:version="v1_2_2017"',
            'ns1:version="2.0"',
            BAD,
            "version '2.0'",
        ),
        ("RequestingAgencyMessageCancel.xml", 'ns1:version="v1_2_2017"', "", BAD, "no version"),
    ],
)
def test_values_and_elements_that_are_refused(
    name: str, old: str, new: str, error_type: ErrorType, says: str, schema: etree.XMLSchema
) -> None:
    error = refused(replaced(name, old, new))
    assert error.error_type is error_type
    assert says in error.error_value
    assert_valid(schema, answer(error))


def test_a_missing_header_still_tells_the_kind() -> None:
    text = sample("RequestingAgencyMessageCancel.xml").decode()
    data = re.sub(r"<ns1:header>.*</ns1:header>", "", text, flags=re.S).encode()
    error = refused(data)
    assert error.error_type is BAD
    assert error.kind is MessageKind.REQUESTING_AGENCY_MESSAGE
    assert error.error_value == "requestingAgencyMessage/header is missing"


def test_both_versions_and_an_unqualified_version_attribute_are_accepted() -> None:
    v12 = replaced(
        "RequestingAgencyMessageCancel.xml", 'ns1:version="v1_2_2017"', 'ns1:version="1.2"'
    )
    bare = replaced("RequestingAgencyMessageCancel.xml", 'ns1:version="v1_2_2017"', 'version="1.2"')
    original = read_message(sample("RequestingAgencyMessageCancel.xml"), LIMIT)
    assert read_message(v12, LIMIT) == original
    assert read_message(bare, LIMIT) == original


def test_the_2021_request_header_shape_is_read() -> None:
    """2021 made the request's supplyingAgencyId and multipleItemRequestId optional and added
    consortialId: a request to 'whoever supplies' reads with no supplier."""
    text = sample("RequestSample1ForISOService.xml").decode()
    text = re.sub(r"<ns1:supplyingAgencyId>.*?</ns1:supplyingAgencyId>", "", text, flags=re.S)
    text = text.replace(
        "<ns1:multipleItemRequestId></ns1:multipleItemRequestId>",
        "<ns1:consortialId>X</ns1:consortialId>",
    )
    request = read_message(text.encode(), LIMIT)
    assert isinstance(request, Request)
    assert request.header.supplying_agency is None
    assert request.header.multiple_item_request_id == ""


def test_unqualified_children_are_read_like_qualified_ones() -> None:
    message = RequestingAgencyMessage(header=header(), action=Action.RECEIVED, note="到了")
    text = write_message(message).decode()
    # every element but the root without its prefix, and so in no namespace
    bare = re.sub(r"<(/?)ill:(?!ISO18626Message)", r"<\1", text)
    assert read_message(bare.encode(), LIMIT) == message


def test_vendor_quirks_are_kept() -> None:
    """ReShare's note tokens and CrossLink's `Duplicate` (an open-list value we do not send)
    reach the engine as sent."""
    message = supplying(
        Status.UNFILLED,
        ReasonForMessage.NOTIFICATION,
        note="#seq:3# #ReShareAddLoanCondition# Supplier: CN-SHL",
        reason_unfilled="Duplicate",
        reason_retry="CostExceedsMaxCost",
    )
    assert read_message(write_message(message), LIMIT) == message
    data = replaced("SupplyingAgencyMessageRefused.xml", ">NotHeld<", ">SomethingNew<")
    read = read_message(data, LIMIT)
    assert isinstance(read, SupplyingAgencyMessage)
    assert read.reason_unfilled == "SomethingNew"


def test_dates_without_a_zone_are_utc_and_a_bare_date_is_midnight() -> None:
    data = replaced("SupplyingAgencyMessageLoaned.xml", "2021-03-11T05:00:00Z", "2021-03-11")
    data = data.replace(b"2021-02-09T11:24:18Z", b"2021-02-09T11:24:18.123456789")
    message = read_message(data, LIMIT)
    assert isinstance(message, SupplyingAgencyMessage)
    assert message.due_date == datetime(2021, 3, 11, tzinfo=UTC)
    assert message.last_change == datetime(2021, 2, 9, 11, 24, 18, 123456, tzinfo=UTC)


# Hostile and broken input: BadlyFormedMessage, with a reason, never anything else.

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ill:ISO18626Message xmlns:ill="http://illtransactions.org/2013/iso18626" ill:version="1.2">
<ill:requestingAgencyMessage><ill:header><ill:supplyingAgencyId><ill:agencyIdType>ISIL</ill:agencyIdType>
<ill:agencyIdValue>CN-SHL</ill:agencyIdValue></ill:supplyingAgencyId><ill:requestingAgencyId>
<ill:agencyIdType>ISIL</ill:agencyIdType><ill:agencyIdValue>&lol9;</ill:agencyIdValue></ill:requestingAgencyId>
<ill:multipleItemRequestId/><ill:timestamp>2026-12-07T00:00:00Z</ill:timestamp>
<ill:requestingAgencyRequestId>1</ill:requestingAgencyRequestId></ill:header>
<ill:action>Cancel</ill:action><ill:note>&lol9;</ill:note></ill:requestingAgencyMessage></ill:ISO18626Message>
"""


def external_entity(target: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE m [<!ENTITY x SYSTEM "{target}">]>\n'
        + sample("RequestingAgencyMessageCancel.xml")
        .decode()
        .split("?>", 1)[1]
        .replace(
            "<ns1:action>Cancel</ns1:action>",
            "<ns1:action>Cancel</ns1:action><ns1:note>&x;</ns1:note>",
        )
    ).encode()


def test_billion_laughs_is_refused_without_expanding() -> None:
    error = refused(BILLION_LAUGHS)
    assert error.error_type is BAD
    assert "DOCTYPE" in error.error_value


@pytest.mark.parametrize("target", ["file:///etc/passwd", "http://127.0.0.1:9/evil.xml"])
def test_an_external_entity_is_never_read(target: str) -> None:
    error = refused(external_entity(target))
    assert error.error_type is BAD
    assert "DOCTYPE" in error.error_value
    assert "root:" not in error.error_value


def test_the_parser_itself_does_not_resolve_entities() -> None:
    """Behind the DOCTYPE refusal: even the parse it follows leaves `&x;` unresolved."""
    from ill.reading import _parser

    root = etree.fromstring(external_entity("file:///etc/passwd"), _parser())
    assert b"root:" not in etree.tostring(root)


def test_oversize_is_refused_before_parsing() -> None:
    data = sample("NewRequest.xml")
    error = refused(data, limit=len(data) - 1)
    assert error.error_type is BAD
    assert (
        error.error_value == f"the message is {len(data)} bytes; at most {len(data) - 1} are taken"
    )
    assert read_message(data, len(data)) is not None  # exactly the cap is fine


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"this is not xml", "not well-formed XML"),
        (b'{"request": {}}', "not well-formed XML"),
        (b"<a><b></a>", "not well-formed XML"),
        (b"\xff\xfe\x00<\x00", "XML"),
        (
            b'<ISO18626Message xmlns="http://example.org/other" version="1.2"><request/></ISO18626Message>',
            "namespace 'http://example.org/other'",
        ),
        (b'<ISO18626Message version="1.2"><request/></ISO18626Message>', "namespace ''"),
        (
            b'<x:Message xmlns:x="http://illtransactions.org/2013/iso18626" x:version="1.2"/>',
            "root element must be ISO18626Message",
        ),
        (
            b'<x:ISO18626Message xmlns:x="http://illtransactions.org/2013/iso18626" x:version="1.2"/>',
            "holds 0 elements",
        ),
        (
            b'<x:ISO18626Message xmlns:x="http://illtransactions.org/2013/iso18626" x:version="1.2"><x:loan/></x:ISO18626Message>',
            "'loan' is not an ISO 18626 message",
        ),
    ],
)
def test_broken_documents_are_badly_formed_with_a_reason(data: bytes, says: str) -> None:
    error = refused(data)
    assert error.error_type is BAD
    assert says in error.error_value
    assert error.kind is None


def test_truncated_messages_are_badly_formed() -> None:
    data = sample("SupplyingAgencyMessageLoaned.xml")
    for cut in range(1, len(data), 97):
        error = refused(data[:cut])
        assert error.error_type is BAD


def test_a_long_bad_value_is_not_echoed_whole() -> None:
    error = refused(replaced("RequestingAgencyMessageRenew.xml", ">Renew<", ">" + "x" * 5000 + "<"))
    assert len(error.error_value) < 300


@given(st.binary(max_size=2000))
def test_fuzz_bytes_only_ever_raise_message_error(data: bytes) -> None:
    try:
        read_message(data, LIMIT)
    except MessageError as error:
        assert error.error_value
    try:
        read_confirmation(data, LIMIT)
    except MessageError as error:
        assert error.error_value


SAMPLE_BYTES = [sample(name) for name in sorted(SAMPLE_OUTCOMES)]


@given(
    st.sampled_from(SAMPLE_BYTES),
    st.lists(st.tuples(st.integers(0, 10_000), st.binary(min_size=0, max_size=8)), max_size=6),
)
def test_fuzz_mutated_samples_only_ever_raise_message_error(
    data: bytes, edits: list[tuple[int, bytes]]
) -> None:
    mutated = bytearray(data)
    for position, replacement in edits:
        at = position % (len(mutated) + 1)
        mutated[at : at + len(replacement)] = replacement
    for read in (read_message, read_confirmation):
        try:
            read(bytes(mutated), LIMIT)
        except MessageError as error:
            assert error.error_value


ELEMENT_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30
)


@given(st.sampled_from(SAMPLE_BYTES), ELEMENT_TEXT, st.integers(0, 200))
def test_fuzz_any_element_text_only_ever_raises_message_error(
    data: bytes, text: str, which: int
) -> None:
    """Well-formed documents with one element's text replaced by anything."""
    root = etree.fromstring(data)
    leaves = [e for e in root.iter() if isinstance(e.tag, str) and len(e) == 0]
    leaves[which % len(leaves)].text = text
    for read in (read_message, read_confirmation):
        try:
            read(etree.tostring(root), LIMIT)
        except MessageError as error:
            assert error.error_value


@given(
    note=ELEMENT_TEXT.filter(lambda s: "\r" not in s),
    title=ELEMENT_TEXT,
    item=ELEMENT_TEXT.map(str.strip),
)
def test_round_trip_of_any_text(note: str, title: str, item: str) -> None:
    message = supplying(Status.LOANED, ReasonForMessage.STATUS_CHANGE, note=note, item_id=item)
    assert read_message(write_message(message), LIMIT) == message
    request = dataclasses.replace(seed_request(), bibliographic=BibliographicInfo(title=title))
    assert read_message(write_message(request), LIMIT) == request


def test_a_doctype_hidden_in_utf16_is_refused_after_parsing() -> None:
    error = refused(
        external_entity("file:///etc/passwd")
        .decode()
        .replace('version="1.0"?>', 'version="1.0" encoding="UTF-16"?>')
        .encode("utf-16")
    )
    assert error.error_type is BAD
    assert "DOCTYPE" in error.error_value
