"""Interlibrary loan messages as the engine sees them: ISO 18626:2017 (v1.2) content, no XML.

The `ill/` front-end reads and writes the XML (its codec maps every element to these types and
back); the engine (`gateway.circulation.ill*`) decides with them and queues its outgoing
messages as them. Names follow the standard's elements, in snake case. Only what libgate reads
or writes is here; an element the codec does not map is kept nowhere (the message history
keeps the raw XML).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    """The 12 statuses of a request (closed list, v1.2)."""

    REQUEST_RECEIVED = "RequestReceived"
    EXPECT_TO_SUPPLY = "ExpectToSupply"
    WILL_SUPPLY = "WillSupply"
    LOANED = "Loaned"
    OVERDUE = "Overdue"
    RECALLED = "Recalled"
    RETRY_POSSIBLE = "RetryPossible"
    UNFILLED = "Unfilled"
    COPY_COMPLETED = "CopyCompleted"
    LOAN_COMPLETED = "LoanCompleted"
    COMPLETED_WITHOUT_RETURN = "CompletedWithoutReturn"
    CANCELLED = "Cancelled"


class Action(StrEnum):
    """What a requesting agency may ask of the supplier (closed list, v1.2)."""

    STATUS_REQUEST = "StatusRequest"
    RECEIVED = "Received"
    CANCEL = "Cancel"
    RENEW = "Renew"
    SHIPPED_RETURN = "ShippedReturn"
    SHIPPED_FORWARD = "ShippedForward"
    NOTIFICATION = "Notification"


class ReasonForMessage(StrEnum):
    REQUEST_RESPONSE = "RequestResponse"
    STATUS_REQUEST_RESPONSE = "StatusRequestResponse"
    RENEW_RESPONSE = "RenewResponse"
    CANCEL_RESPONSE = "CancelResponse"
    STATUS_CHANGE = "StatusChange"
    NOTIFICATION = "Notification"


class ErrorType(StrEnum):
    UNSUPPORTED_ACTION_TYPE = "UnsupportedActionType"
    UNSUPPORTED_REASON_FOR_MESSAGE_TYPE = "UnsupportedReasonForMessageType"
    UNRECOGNISED_DATA_ELEMENT = "UnrecognisedDataElement"
    UNRECOGNISED_DATA_VALUE = "UnrecognisedDataValue"
    BADLY_FORMED_MESSAGE = "BadlyFormedMessage"


class ReasonUnfilled(StrEnum):
    """Open list; these are the values we send (and the common ones we read)."""

    NOT_HELD = "NotHeld"
    NOT_AVAILABLE_FOR_ILL = "NotAvailableForILL"
    NOT_ON_SHELF = "NotOnShelf"
    NON_CIRCULATING = "NonCirculating"
    POLICY_PROBLEM = "PolicyProblem"
    POOR_CONDITION = "PoorCondition"


class ReasonRetry(StrEnum):
    """Open list; these are the values we send (and the common ones we read)."""

    ON_LOAN = "OnLoan"
    AT_BINDERY = "AtBindery"
    NOT_FOUND_AS_CITED = "NotFoundAsCited"
    ON_ORDER = "OnOrder"


@dataclass(frozen=True)
class AgencyId:
    """An agency as `TYPE:VALUE` (ISIL:CN-SHL); the type is compared case-insensitively."""

    kind: str
    value: str

    @classmethod
    def parse(cls, text: str) -> AgencyId:
        kind, _, value = text.partition(":")
        return cls(kind.strip().upper(), value.strip())

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class Header:
    requesting_agency: AgencyId
    supplying_agency: AgencyId | None
    timestamp: datetime
    requesting_agency_request_id: str
    supplying_agency_request_id: str = ""
    multiple_item_request_id: str = ""


@dataclass(frozen=True)
class BibliographicInfo:
    title: str = ""
    author: str = ""
    supplier_unique_record_id: str = ""  # our record id (001) when we are the supplier
    subtitle: str = ""
    edition: str = ""
    isbn: str = ""  # bibliographicItemId with code ISBN
    issn: str = ""  # bibliographicItemId with code ISSN
    # bibliographicRecordId values the codec read but does not map (code, value)
    other_ids: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PublicationInfo:
    publisher: str = ""
    place: str = ""
    year: str = ""  # publicationDate as sent
    publication_type: str = ""  # Book, Journal, …: the seed's material type


@dataclass(frozen=True)
class ServiceInfo:
    request_type: str = "New"  # New | Retry | Reminder
    service_type: str = "Loan"  # Copy | Loan | CopyOrLoan
    need_before: datetime | None = None
    note: str = ""


@dataclass(frozen=True)
class PatronInfo:
    patron_id: str = ""  # the reader's barcode at the requesting library
    name: str = ""  # given and surname as one display name
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class DeliveryInfo:
    """requestedDeliveryInfo: where the book goes and how (the seed: courier, 物流)."""

    recipient: str = ""
    address: str = ""
    email: str = ""
    method: str = ""  # sentVia / delivery method as sent, e.g. Mail, Courier


@dataclass(frozen=True)
class Request:
    """`request`: a requesting agency asks a supplier for an item."""

    header: Header
    bibliographic: BibliographicInfo
    publication: PublicationInfo = field(default_factory=PublicationInfo)
    service: ServiceInfo = field(default_factory=ServiceInfo)
    patron: PatronInfo = field(default_factory=PatronInfo)
    delivery: DeliveryInfo = field(default_factory=DeliveryInfo)
    language: str = ""  # bibliographicInfo has no language: kept from our own form


@dataclass(frozen=True)
class SupplyingAgencyMessage:
    """`supplyingAgencyMessage`: the supplier tells the requester a status (and why)."""

    header: Header
    reason_for_message: ReasonForMessage
    status: Status
    last_change: datetime
    answer_yes_no: bool | None = None  # CancelResponse / RenewResponse
    note: str = ""
    reason_unfilled: str = ""  # ReasonUnfilled value (open list)
    reason_retry: str = ""  # ReasonRetry value (open list)
    due_date: datetime | None = None
    expected_delivery_date: datetime | None = None
    item_id: str = ""  # deliveryInfo/itemId: the copy's barcode when shipped


@dataclass(frozen=True)
class RequestingAgencyMessage:
    """`requestingAgencyMessage`: the requester asks the supplier to act."""

    header: Header
    action: Action
    note: str = ""


Message = Request | SupplyingAgencyMessage | RequestingAgencyMessage


@dataclass(frozen=True)
class Confirmation:
    """What the receiver of a message answers at once, in the HTTP response: OK, or ERROR with
    the error type and a text saying what was wrong (errorValue)."""

    ok: bool
    error_type: ErrorType | None = None
    error_value: str = ""

    @classmethod
    def accepted(cls) -> Confirmation:
        return cls(True)

    @classmethod
    def error(cls, error_type: ErrorType, value: str) -> Confirmation:
        return cls(False, error_type, value)
