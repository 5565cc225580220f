"""Reading ISO 18626 XML into the engine's types (gateway/circulation/ill_types.py).

`read_message` takes what a partner POSTs (request, supplyingAgencyMessage,
requestingAgencyMessage); `read_confirmation` what a partner answers to our POST. Anything
else raises `MessageError` with the errorType the standard gives it:
- BadlyFormedMessage: too big, not XML, a DOCTYPE, the wrong root or namespace, a version we do
  not speak, a mandatory element missing or empty, a date that is no xs:dateTime;
- UnsupportedActionType: an action outside the 7; UnsupportedReasonForMessageType likewise;
- UnrecognisedDataValue: a value outside a closed list (status, yes/no, request and service
  type).
An error carries as much of the header as could be read, so the ERROR confirmation echoes it.

Safety: the size is checked before parsing; the parser resolves no entities, loads no DTD,
reaches no network and keeps libxml2's limits on (huge_tree off); and a message with a DOCTYPE
at all is refused (ISO 18626 has none, and it is where entity bombs live).

Leniency, where it costs nothing and hurts no decision: elements we do not map are skipped
(so the 2021 revision's additions and vendors' extras pass); child elements without the
namespace are read like qualified ones; the version attribute may be unqualified; the 2021
request header may leave out supplyingAgencyId and multipleItemRequestId; open-list values
(reasonUnfilled, reasonRetry, agency id types) and notes are kept as sent, ReShare's
`#seq:N#` tokens included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

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
    Request,
    RequestingAgencyMessage,
    ServiceInfo,
    Status,
    SupplyingAgencyMessage,
)
from ill.wire import (
    ACCEPTED_VERSIONS,
    CONFIRMATIONS,
    NS,
    ROOT,
    ConfirmationHeader,
    MessageError,
    MessageKind,
    ReceivedConfirmation,
    parse_date_time,
    quoted,
)

Element = etree._Element
E = TypeVar("E", bound=StrEnum)

BADLY_FORMED = ErrorType.BADLY_FORMED_MESSAGE
UNRECOGNISED_VALUE = ErrorType.UNRECOGNISED_DATA_VALUE
REQUEST_TYPES = ("New", "Retry", "Reminder")
SERVICE_TYPES = ("Copy", "Loan", "CopyOrLoan")
YES_NO = {"Y": True, "N": False}
NO_DOCTYPE = "a DOCTYPE (and so any entity) is not allowed in an ISO 18626 message"
PHONE_TYPES = ("phone", "telephone", "tel", "mobile", "sms")


def _parser() -> etree.XMLParser:
    # A new parser per document: lxml parsers are not to be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def read_message(data: bytes, max_bytes: int) -> Message:
    """A partner's request, supplyingAgencyMessage or requestingAgencyMessage."""
    body = _body(data, max_bytes)
    name = _local(body)
    if name in CONFIRMATIONS:
        raise MessageError(
            BADLY_FORMED,
            f"{name} is an answer, not a message: it comes back in the HTTP response to a POST",
        )
    kind = _kind(name)
    return _Reader(kind).message(body)


def read_confirmation(data: bytes, max_bytes: int) -> ReceivedConfirmation:
    """A partner's confirmation (the HTTP response to a message we POSTed)."""
    body = _body(data, max_bytes)
    name = _local(body)
    kind = CONFIRMATIONS.get(name)
    if kind is None:
        raise MessageError(BADLY_FORMED, f"{name} is not a confirmation")
    return _Reader(kind).confirmation(body)


def _body(data: bytes, max_bytes: int) -> Element:
    """The one message element under ISO18626Message, after the checks on the whole."""
    if len(data) > max_bytes:
        raise MessageError(
            BADLY_FORMED, f"the message is {len(data)} bytes; at most {max_bytes} are taken"
        )
    if not data.strip():
        raise MessageError(BADLY_FORMED, "the message is empty")
    # Refused before libxml2 sees its declarations (it would still weigh their entities); the
    # check after parsing catches a DOCTYPE in an encoding this byte test cannot see (UTF-16).
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise MessageError(BADLY_FORMED, NO_DOCTYPE)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as error:
        raise MessageError(BADLY_FORMED, f"not well-formed XML: {error.msg}") from None
    except (etree.LxmlError, ValueError) as error:  # e.g. an encoding libxml2 does not know
        raise MessageError(BADLY_FORMED, f"not readable XML: {error}") from None
    if root is None:  # a parser in recover mode would return None; ours raises instead
        raise MessageError(BADLY_FORMED, "no root element")
    if root.getroottree().docinfo.internalDTD is not None:
        raise MessageError(BADLY_FORMED, NO_DOCTYPE)
    if not isinstance(root.tag, str) or etree.QName(root).localname != ROOT:
        raise MessageError(BADLY_FORMED, f"the root element must be {ROOT}")
    namespace = etree.QName(root).namespace
    if namespace != NS:
        raise MessageError(
            BADLY_FORMED, f"{ROOT} is in namespace {quoted(namespace or '')}, not {NS}"
        )
    version = root.get(f"{{{NS}}}version", root.get("version"))
    if version is None:
        raise MessageError(BADLY_FORMED, f"{ROOT} has no version attribute")
    if version.strip() not in ACCEPTED_VERSIONS:
        raise MessageError(
            BADLY_FORMED,
            f"version {quoted(version)} is not spoken here; 1.2 (ISO 18626:2017) is",
        )
    children = [child for child in root if isinstance(child.tag, str)]
    if len(children) != 1:
        raise MessageError(
            BADLY_FORMED, f"{ROOT} holds {len(children)} elements; it must hold one message"
        )
    return children[0]


def _local(element: Element) -> str:
    return etree.QName(element).localname


def _kind(name: str) -> MessageKind:
    try:
        return MessageKind(name)
    except ValueError:
        raise MessageError(BADLY_FORMED, f"{quoted(name)} is not an ISO 18626 message") from None


def _children(parent: Element, name: str) -> list[Element]:
    """Children named `name` in our namespace (or, leniently, in none)."""
    return list(parent.iterchildren(f"{{{NS}}}{name}", name))


def _child(parent: Element | None, name: str) -> Element | None:
    if parent is None:
        return None
    found = _children(parent, name)
    return found[0] if found else None


def _text(element: Element | None) -> str:
    return "" if element is None else "".join(element.itertext())


class _Reader:
    """Reads one message of a known kind; remembers what of its header and echo it has read,
    so an error raised anywhere carries them."""

    def __init__(self, kind: MessageKind) -> None:
        self.kind = kind
        self.header = ConfirmationHeader()
        self.reason_for_message: ReasonForMessage | None = None
        self.action: Action | None = None

    def fail(self, error_type: ErrorType, value: str) -> MessageError:
        return MessageError(
            error_type,
            value,
            kind=self.kind,
            header=self.header,
            reason_for_message=self.reason_for_message,
            action=self.action,
        )

    # Messages

    def message(self, body: Element) -> Message:
        if self.kind is MessageKind.REQUEST:
            return self.request(body)
        if self.kind is MessageKind.SUPPLYING_AGENCY_MESSAGE:
            return self.supplying_agency_message(body)
        return self.requesting_agency_message(body)

    def request(self, body: Element) -> Request:
        header = self.message_header(body, supplier_required=False)
        bibliographic = self.required(body, "bibliographicInfo", "request")
        publication = _child(body, "publicationInfo")
        service = _child(body, "serviceInfo")
        return Request(
            header=header,
            bibliographic=self.bibliographic(bibliographic),
            publication=self.publication(publication),
            service=self.service(service),
            patron=self.patron(_child(body, "patronInfo")),
            delivery=self.delivery(body, service),
        )

    def supplying_agency_message(self, body: Element) -> SupplyingAgencyMessage:
        where = "supplyingAgencyMessage"
        header = self.message_header(body, supplier_required=True)
        info = self.required(body, "messageInfo", where)
        self.reason_for_message = self.closed(
            info,
            "reasonForMessage",
            f"{where}/messageInfo",
            ReasonForMessage,
            ErrorType.UNSUPPORTED_REASON_FOR_MESSAGE_TYPE,
        )
        status_info = self.required(body, "statusInfo", where)
        status = self.closed(
            status_info, "status", f"{where}/statusInfo", Status, UNRECOGNISED_VALUE
        )
        answer = _child(info, "answerYesNo")
        delivery = _child(body, "deliveryInfo")
        return SupplyingAgencyMessage(
            header=header,
            reason_for_message=self.reason_for_message,
            status=status,
            last_change=self.required_date(status_info, "lastChange", f"{where}/statusInfo"),
            answer_yes_no=None
            if answer is None
            else self.yes_no(answer, f"{where}/messageInfo/answerYesNo"),
            note=_text(_child(info, "note")),
            reason_unfilled=_text(_child(info, "reasonUnfilled")).strip(),
            reason_retry=_text(_child(info, "reasonRetry")).strip(),
            due_date=self.date(status_info, "dueDate", f"{where}/statusInfo"),
            expected_delivery_date=self.date(
                status_info, "expectedDeliveryDate", f"{where}/statusInfo"
            ),
            item_id=_text(_child(delivery, "itemId")).strip(),
        )

    def requesting_agency_message(self, body: Element) -> RequestingAgencyMessage:
        where = "requestingAgencyMessage"
        header = self.message_header(body, supplier_required=True)
        self.action = self.closed(body, "action", where, Action, ErrorType.UNSUPPORTED_ACTION_TYPE)
        return RequestingAgencyMessage(
            header=header, action=self.action, note=_text(_child(body, "note"))
        )

    # Confirmations

    def confirmation(self, body: Element) -> ReceivedConfirmation:
        where = self.kind.confirmation
        header = self.required(body, "confirmationHeader", where)
        self.header = self.confirmation_header(header)
        self.required(header, "timestamp", f"{where}/confirmationHeader")
        received = self.date(header, "timestampReceived", f"{where}/confirmationHeader")
        status = _text(self.required(header, "messageStatus", f"{where}/confirmationHeader"))
        if status.strip() not in ("OK", "ERROR"):
            raise self.fail(
                UNRECOGNISED_VALUE, f"messageStatus {quoted(status)} is not OK or ERROR"
            )
        if _child(body, "reasonForMessage") is not None:
            self.reason_for_message = self.closed(
                body,
                "reasonForMessage",
                where,
                ReasonForMessage,
                ErrorType.UNSUPPORTED_REASON_FOR_MESSAGE_TYPE,
            )
        if _child(body, "action") is not None:
            self.action = self.closed(
                body, "action", where, Action, ErrorType.UNSUPPORTED_ACTION_TYPE
            )
        confirmation = Confirmation.accepted()
        if status.strip() == "ERROR":
            error = _child(body, "errorData")
            value = _text(_child(error, "errorValue"))
            named = _text(_child(error, "errorType")).strip()
            try:
                confirmation = Confirmation.error(ErrorType(named), value)
            except ValueError:  # an errorType the standard lacks: still an ERROR, said as sent
                confirmation = Confirmation(False, None, f"{named}: {value}" if named else value)
        return ReceivedConfirmation(
            kind=self.kind,
            header=self.header,
            timestamp_received=received,
            confirmation=confirmation,
            reason_for_message=self.reason_for_message,
            action=self.action,
        )

    # Headers

    def message_header(self, body: Element, supplier_required: bool) -> Header:
        where = f"{self.kind.value}/header"
        element = self.required(body, "header", self.kind.value)
        self.header = self.confirmation_header(element)
        supplier = self.agency(element, "supplyingAgencyId", where, supplier_required)
        requester = self.agency(element, "requestingAgencyId", where, True)
        assert requester is not None  # required above
        timestamp = self.required_date(element, "timestamp", where)
        request_id = _text(self.required(element, "requestingAgencyRequestId", where)).strip()
        if not request_id:
            raise self.fail(BADLY_FORMED, f"{where}/requestingAgencyRequestId is empty")
        return Header(
            requesting_agency=requester,
            supplying_agency=supplier,
            timestamp=timestamp,
            requesting_agency_request_id=request_id,
            supplying_agency_request_id=_text(_child(element, "supplyingAgencyRequestId")).strip(),
            multiple_item_request_id=_text(_child(element, "multipleItemRequestId")).strip(),
        )

    def confirmation_header(self, element: Element) -> ConfirmationHeader:
        """Whatever of a header (or confirmationHeader) reads cleanly; never raises."""

        def attempt(read: Callable[[], object]) -> object:
            try:
                return read()
            except MessageError:
                return None

        def text(name: str) -> str | None:
            found = _child(element, name)
            return None if found is None else _text(found).strip()

        supplier = attempt(lambda: self.agency(element, "supplyingAgencyId", "", False))
        requester = attempt(lambda: self.agency(element, "requestingAgencyId", "", False))
        timestamp = attempt(lambda: self.date(element, "timestamp", ""))
        return ConfirmationHeader(
            supplying_agency=supplier if isinstance(supplier, AgencyId) else None,
            requesting_agency=requester if isinstance(requester, AgencyId) else None,
            timestamp=timestamp if isinstance(timestamp, datetime) else None,
            requesting_agency_request_id=text("requestingAgencyRequestId"),
            multiple_item_request_id=text("multipleItemRequestId"),
        )

    def agency(self, parent: Element, name: str, where: str, required: bool) -> AgencyId | None:
        element = _child(parent, name)
        if element is None:
            if required:
                raise self.fail(BADLY_FORMED, f"{where}/{name} is missing")
            return None
        kind = _text(_child(element, "agencyIdType")).strip()
        value = _text(_child(element, "agencyIdValue")).strip()
        if not kind or not value:
            raise self.fail(
                BADLY_FORMED, f"{where}/{name} needs a non-empty agencyIdType and agencyIdValue"
            )
        return AgencyId(kind.upper(), value)

    # Request parts

    def bibliographic(self, element: Element) -> BibliographicInfo:
        isbn = issn = ""
        for item in _children(element, "bibliographicItemId"):
            code = _text(_child(item, "bibliographicItemIdentifierCode")).strip().upper()
            value = _text(_child(item, "bibliographicItemIdentifier")).strip()
            if code == "ISBN" and not isbn:
                isbn = value
            elif code == "ISSN" and not issn:
                issn = value
        others = tuple(
            (
                _text(_child(record, "bibliographicRecordIdentifierCode")).strip(),
                _text(_child(record, "bibliographicRecordIdentifier")).strip(),
            )
            for record in _children(element, "bibliographicRecordId")
        )
        return BibliographicInfo(
            title=_text(_child(element, "title")),
            author=_text(_child(element, "author")),
            supplier_unique_record_id=_text(_child(element, "supplierUniqueRecordId")).strip(),
            subtitle=_text(_child(element, "subtitle")),
            edition=_text(_child(element, "edition")),
            isbn=isbn,
            issn=issn,
            other_ids=others,
        )

    def publication(self, element: Element | None) -> PublicationInfo:
        return PublicationInfo(
            publisher=_text(_child(element, "publisher")),
            place=_text(_child(element, "placeOfPublication")),
            year=_text(_child(element, "publicationDate")).strip(),
            publication_type=_text(_child(element, "publicationType")).strip(),
        )

    def service(self, element: Element | None) -> ServiceInfo:
        if element is None:
            return ServiceInfo()
        where = "request/serviceInfo"
        request_type = _text(_child(element, "requestType")).strip() or "New"
        if request_type not in REQUEST_TYPES:
            raise self.fail(
                UNRECOGNISED_VALUE,
                f"{where}/requestType {quoted(request_type)} is not one of New, Retry, Reminder",
            )
        # Mandatory in serviceInfo; a peer that leaves it out is asking for a loan.
        service_type = _text(_child(element, "serviceType")).strip() or "Loan"
        if service_type not in SERVICE_TYPES:
            raise self.fail(
                UNRECOGNISED_VALUE,
                f"{where}/serviceType {quoted(service_type)} is not one of Copy, Loan, CopyOrLoan",
            )
        return ServiceInfo(
            request_type=request_type,
            service_type=service_type,
            need_before=self.date(element, "needBeforeDate", where),
            note=_text(_child(element, "note")),
        )

    def patron(self, element: Element | None) -> PatronInfo:
        given = _text(_child(element, "givenName")).strip()
        surname = _text(_child(element, "surname")).strip()
        email, phone = "", ""
        for address in _children(element, "address") if element is not None else []:
            kind, data = _electronic(address)
            if kind == "email" and not email:
                email = data
            elif kind in PHONE_TYPES and not phone:
                phone = data
        return PatronInfo(
            patron_id=_text(_child(element, "patronId")).strip(),
            name=" ".join(part for part in (given, surname) if part),
            email=email,
            phone=phone,
        )

    def delivery(self, body: Element, service: Element | None) -> DeliveryInfo:
        """requestedDeliveryInfo (address, email), requestingAgencyInfo/contactName (who
        receives it at the requesting library) and serviceInfo/serviceLevel (how it travels):
        v1.2 has no element of its own for the last two."""
        address, email = "", ""
        for requested in _children(body, "requestedDeliveryInfo"):
            for element in _children(requested, "address"):
                kind, data = _electronic(element)
                if kind == "email" and not email:
                    email = data
                physical = _child(element, "physicalAddress")
                if physical is not None and not address:
                    address = ", ".join(
                        text
                        for name in (
                            "line1",
                            "line2",
                            "locality",
                            "postalCode",
                            "region",
                            "country",
                        )
                        if (text := _text(_child(physical, name)).strip())
                    )
        agency = _child(body, "requestingAgencyInfo")
        return DeliveryInfo(
            recipient=_text(_child(agency, "contactName")).strip(),
            address=address,
            email=email,
            method=_text(_child(service, "serviceLevel")).strip(),
        )

    # Values

    def required(self, parent: Element, name: str, where: str) -> Element:
        found = _child(parent, name)
        if found is None:
            raise self.fail(BADLY_FORMED, f"{where}/{name} is missing")
        return found

    def closed(
        self, parent: Element, name: str, where: str, values: type[E], error_type: ErrorType
    ) -> E:
        """A value from a closed list (status, action, reasonForMessage)."""
        text = _text(self.required(parent, name, where)).strip()
        try:
            return values(text)
        except ValueError:
            allowed = ", ".join(values)
            raise self.fail(
                error_type, f"{where}/{name} {quoted(text)} is not one of {allowed}"
            ) from None

    def yes_no(self, element: Element, where: str) -> bool:
        text = _text(element).strip()
        if text not in YES_NO:
            raise self.fail(UNRECOGNISED_VALUE, f"{where} {quoted(text)} is not Y or N")
        return YES_NO[text]

    def required_date(self, parent: Element, name: str, where: str) -> datetime:
        found = self.date(parent, name, where)
        if found is None:
            raise self.fail(BADLY_FORMED, f"{where}/{name} is missing")
        return found

    def date(self, parent: Element, name: str, where: str) -> datetime | None:
        element = _child(parent, name)
        if element is None:
            return None
        text = _text(element)
        try:
            return parse_date_time(text)
        except ValueError:  # also a date that the pattern takes but the calendar has not
            raise self.fail(
                BADLY_FORMED, f"{where}/{name} {quoted(text)} is not an xs:dateTime"
            ) from None


def _electronic(address: Element) -> tuple[str, str]:
    """(type in lower case, data) of an address's electronicAddress, or ("", "")."""
    electronic = _child(address, "electronicAddress")
    if electronic is None:
        return "", ""
    kind = _text(_child(electronic, "electronicAddressType")).strip().lower()
    return kind, _text(_child(electronic, "electronicAddressData")).strip()


__all__ = ["read_confirmation", "read_message"]
