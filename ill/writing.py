"""Writing the engine's ISO 18626 types as XML: our three messages and the three confirmations.

Always `ill:version="1.2"`, UTF-8, every element in the namespace under the `ill` prefix, the
version attribute qualified (the XSD's attributeFormDefault), dates as xs:dateTime with a zone.
Elements follow the v1.2 XSD's order, which tests check against the schema itself.

Where v1.2 has no element for something the seed's form carries, the nearest one holds it and
reading.py reads it back from there: the recipient is requestingAgencyInfo/contactName, the
delivery method serviceInfo/serviceLevel, a phone an electronicAddress of type Phone. The
request's language has no place at all and is not sent.
"""

from __future__ import annotations

import re
from datetime import datetime

from lxml import etree

from gateway.circulation.ill_types import (
    Action,
    AgencyId,
    Confirmation,
    ErrorType,
    Header,
    Message,
    ReasonForMessage,
    Request,
    RequestingAgencyMessage,
    SupplyingAgencyMessage,
)
from ill.wire import (
    NS,
    ROOT,
    SENT_VERSION,
    ConfirmationHeader,
    MessageKind,
    format_date_time,
)

Element = etree._Element

# Characters XML 1.0 cannot carry at all (most C0 controls, lone surrogates, U+FFFE/FFFF): a
# note typed with one would otherwise make the whole message unsendable.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def write_message(message: Message) -> bytes:
    """A request, supplyingAgencyMessage or requestingAgencyMessage, ready to POST."""
    root = _root()
    if isinstance(message, Request):
        _request(_add(root, "request"), message)
    elif isinstance(message, SupplyingAgencyMessage):
        _supplying_agency_message(_add(root, "supplyingAgencyMessage"), message)
    else:
        _requesting_agency_message(_add(root, "requestingAgencyMessage"), message)
    return _serialise(root)


def write_confirmation(
    kind: MessageKind | None,
    header: ConfirmationHeader,
    confirmation: Confirmation,
    received: datetime,
    *,
    reason_for_message: ReasonForMessage | None = None,
    action: Action | None = None,
) -> bytes:
    """The confirmation answering a message of `kind` (None: a message whose kind could not
    be told, answered as a requestConfirmation), received at `received`. It echoes `header`,
    and the reasonForMessage or action of the message when they were read."""
    root = _root()
    element_kind = kind if kind is not None else MessageKind.REQUEST
    body = _add(root, element_kind.confirmation)
    top = _add(body, "confirmationHeader")
    _agency(top, "supplyingAgencyId", header.supplying_agency)
    _agency(top, "requestingAgencyId", header.requesting_agency)
    _add(top, "timestamp", format_date_time(header.timestamp or received))
    if header.requesting_agency_request_id is not None:
        _add(top, "requestingAgencyRequestId", header.requesting_agency_request_id)
    if header.multiple_item_request_id is not None:
        _add(top, "multipleItemRequestId", header.multiple_item_request_id)
    _add(top, "timestampReceived", format_date_time(received))
    _add(top, "messageStatus", "OK" if confirmation.ok else "ERROR")
    if element_kind is MessageKind.SUPPLYING_AGENCY_MESSAGE and reason_for_message is not None:
        _add(body, "reasonForMessage", reason_for_message.value)
    if element_kind is MessageKind.REQUESTING_AGENCY_MESSAGE and action is not None:
        _add(body, "action", action.value)
    if not confirmation.ok:
        error = _add(body, "errorData")
        # errorType is mandatory in errorData; an ERROR without one is a badly formed message.
        _add(error, "errorType", str(confirmation.error_type or ErrorType.BADLY_FORMED_MESSAGE))
        if confirmation.error_value:
            _add(error, "errorValue", confirmation.error_value)
    return _serialise(root)


def _request(body: Element, request: Request) -> None:
    _header(body, request.header)
    bib = request.bibliographic
    info = _add(body, "bibliographicInfo")
    _optional(info, "supplierUniqueRecordId", bib.supplier_unique_record_id)
    _optional(info, "title", bib.title)
    _optional(info, "author", bib.author)
    _optional(info, "subtitle", bib.subtitle)
    _optional(info, "edition", bib.edition)
    for code, value in (("ISBN", bib.isbn), ("ISSN", bib.issn)):
        if value:
            item = _add(info, "bibliographicItemId")
            _add(item, "bibliographicItemIdentifier", value)
            _add(item, "bibliographicItemIdentifierCode", code)
    for code, value in bib.other_ids:
        record = _add(info, "bibliographicRecordId")
        _add(record, "bibliographicRecordIdentifierCode", code)
        _add(record, "bibliographicRecordIdentifier", value)
    publication = request.publication
    if any(
        (publication.publisher, publication.publication_type, publication.year, publication.place)
    ):
        element = _add(body, "publicationInfo")
        _optional(element, "publisher", publication.publisher)
        _optional(element, "publicationType", publication.publication_type)
        _optional(element, "publicationDate", publication.year)
        _optional(element, "placeOfPublication", publication.place)
    service = request.service
    element = _add(body, "serviceInfo")
    _add(element, "requestType", service.request_type)
    _add(element, "serviceType", service.service_type)
    _optional(element, "serviceLevel", request.delivery.method)
    if service.need_before is not None:
        _add(element, "needBeforeDate", format_date_time(service.need_before))
    _optional(element, "note", service.note)
    delivery = request.delivery
    order = 0
    if delivery.address:
        order += 1
        requested = _add(body, "requestedDeliveryInfo")
        _add(requested, "sortOrder", str(order))
        physical = _add(_add(requested, "address"), "physicalAddress")
        _add(physical, "line1", delivery.address)
    if delivery.email:
        order += 1
        requested = _add(body, "requestedDeliveryInfo")
        _add(requested, "sortOrder", str(order))
        _electronic(_add(requested, "address"), "Email", delivery.email)
    if delivery.recipient:
        _add(_add(body, "requestingAgencyInfo"), "contactName", delivery.recipient)
    patron = request.patron
    if any((patron.patron_id, patron.name, patron.email, patron.phone)):
        element = _add(body, "patronInfo")
        _optional(element, "patronId", patron.patron_id)
        # One display name; given and surname are not told apart (a Chinese name is one).
        _optional(element, "surname", patron.name)
        if patron.email:
            _electronic(_add(element, "address"), "Email", patron.email)
        if patron.phone:
            _electronic(_add(element, "address"), "Phone", patron.phone)


def _supplying_agency_message(body: Element, message: SupplyingAgencyMessage) -> None:
    _header(body, message.header)
    info = _add(body, "messageInfo")
    _add(info, "reasonForMessage", message.reason_for_message.value)
    if message.answer_yes_no is not None:
        _add(info, "answerYesNo", "Y" if message.answer_yes_no else "N")
    _optional(info, "note", message.note)
    _optional(info, "reasonUnfilled", message.reason_unfilled)
    _optional(info, "reasonRetry", message.reason_retry)
    status = _add(body, "statusInfo")
    _add(status, "status", message.status.value)
    if message.expected_delivery_date is not None:
        _add(status, "expectedDeliveryDate", format_date_time(message.expected_delivery_date))
    if message.due_date is not None:
        _add(status, "dueDate", format_date_time(message.due_date))
    _add(status, "lastChange", format_date_time(message.last_change))
    if message.item_id:
        delivery = _add(body, "deliveryInfo")
        # dateSent is mandatory in deliveryInfo: a copy's barcode is sent when it ships, which
        # is the status change this message reports.
        _add(delivery, "dateSent", format_date_time(message.last_change))
        _add(delivery, "itemId", message.item_id)


def _requesting_agency_message(body: Element, message: RequestingAgencyMessage) -> None:
    _header(body, message.header)
    _add(body, "action", message.action.value)
    _optional(body, "note", message.note)


def _header(body: Element, header: Header) -> None:
    if header.supplying_agency is None:
        raise ValueError("a message we send names its supplying agency (v1.2 requires it)")
    element = _add(body, "header")
    _agency(element, "supplyingAgencyId", header.supplying_agency)
    _agency(element, "requestingAgencyId", header.requesting_agency)
    _add(element, "multipleItemRequestId", header.multiple_item_request_id)
    _add(element, "timestamp", format_date_time(header.timestamp))
    _add(element, "requestingAgencyRequestId", header.requesting_agency_request_id)
    _optional(element, "supplyingAgencyRequestId", header.supplying_agency_request_id)


def _agency(parent: Element, name: str, agency: AgencyId | None) -> None:
    if agency is not None:
        element = _add(parent, name)
        _add(element, "agencyIdType", agency.kind)
        _add(element, "agencyIdValue", agency.value)


def _electronic(address: Element, kind: str, data: str) -> None:
    element = _add(address, "electronicAddress")
    _add(element, "electronicAddressType", kind)
    _add(element, "electronicAddressData", data)


def _root() -> Element:
    root = etree.Element(f"{{{NS}}}{ROOT}", nsmap={"ill": NS})
    root.set(f"{{{NS}}}version", SENT_VERSION)
    return root


def _add(parent: Element, name: str, text: str | None = None) -> Element:
    element = etree.SubElement(parent, f"{{{NS}}}{name}")
    if text is not None:
        element.text = _NOT_XML.sub("", text)
    return element


def _optional(parent: Element, name: str, text: str) -> None:
    if text:
        _add(parent, name, text)


def _serialise(root: Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


__all__ = ["write_confirmation", "write_message"]
