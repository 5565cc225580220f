"""What reading and writing ISO 18626 share: the namespace and versions, the three message
kinds and their confirmation elements, the confirmation header, xs:dateTime, and the error a
message we cannot take raises (carrying everything its ERROR confirmation needs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

from gateway.circulation.ill_types import (
    Action,
    AgencyId,
    Confirmation,
    ErrorType,
    Header,
    Message,
    ReasonForMessage,
    Request,
    SupplyingAgencyMessage,
)

NS = "http://illtransactions.org/2013/iso18626"
ROOT = "ISO18626Message"
# What we send. CrossLink and ReShare send "1.2"; OCLC's toolkit sends "v1_2_2017". The 2021
# revision kept the namespace; its peers are read where its shapes are ours (reading.py).
SENT_VERSION = "1.2"
ACCEPTED_VERSIONS = frozenset({"1.2", "v1_2_2017"})
CONTENT_TYPE = b"application/xml; charset=UTF-8"
# errorValue quotes what it refuses; a hostile value is not echoed whole.
QUOTED_CHARACTERS = 80


class MessageKind(StrEnum):
    """The three messages a partner sends; each is answered by `<kind>Confirmation`."""

    REQUEST = "request"
    SUPPLYING_AGENCY_MESSAGE = "supplyingAgencyMessage"
    REQUESTING_AGENCY_MESSAGE = "requestingAgencyMessage"

    @property
    def confirmation(self) -> str:
        return f"{self.value}Confirmation"

    @classmethod
    def of(cls, message: Message) -> MessageKind:
        if isinstance(message, Request):
            return cls.REQUEST
        if isinstance(message, SupplyingAgencyMessage):
            return cls.SUPPLYING_AGENCY_MESSAGE
        return cls.REQUESTING_AGENCY_MESSAGE


CONFIRMATIONS = {kind.confirmation: kind for kind in MessageKind}


@dataclass(frozen=True, kw_only=True)
class ConfirmationHeader:
    """confirmationHeader: what a confirmation echoes of the message it answers. Every part is
    optional there, so an ERROR answer echoes whatever of the header could be read."""

    supplying_agency: AgencyId | None = None
    requesting_agency: AgencyId | None = None
    timestamp: datetime | None = None  # the confirmed message's own timestamp
    requesting_agency_request_id: str | None = None
    multiple_item_request_id: str | None = None

    @classmethod
    def echoing(cls, header: Header) -> ConfirmationHeader:
        return cls(
            supplying_agency=header.supplying_agency,
            requesting_agency=header.requesting_agency,
            timestamp=header.timestamp,
            requesting_agency_request_id=header.requesting_agency_request_id,
            multiple_item_request_id=header.multiple_item_request_id,
        )


@dataclass(frozen=True, kw_only=True)
class ReceivedConfirmation:
    """A partner's confirmation of a message we sent, as the sender reads it."""

    kind: MessageKind
    header: ConfirmationHeader
    timestamp_received: datetime | None
    confirmation: Confirmation
    reason_for_message: ReasonForMessage | None = None  # supplyingAgencyMessageConfirmation
    action: Action | None = None  # requestingAgencyMessageConfirmation


class MessageError(Exception):
    """A message we do not take: the peer broke the protocol. Carries what the ERROR
    confirmation says (errorType, errorValue), which confirmation answers it (`kind`; None when
    not even that could be told, answered as a requestConfirmation), and what it echoes."""

    def __init__(
        self,
        error_type: ErrorType,
        error_value: str,
        *,
        kind: MessageKind | None = None,
        header: ConfirmationHeader | None = None,
        reason_for_message: ReasonForMessage | None = None,
        action: Action | None = None,
    ) -> None:
        super().__init__(f"{error_type}: {error_value}")
        self.error_type = error_type
        self.error_value = error_value
        self.kind = kind
        self.header = header if header is not None else ConfirmationHeader()
        self.reason_for_message = reason_for_message
        self.action = action

    @property
    def confirmation(self) -> Confirmation:
        return Confirmation.error(self.error_type, self.error_value)


def quoted(value: str) -> str:
    """A value for an errorValue: quoted, and cut short if long."""
    if len(value) > QUOTED_CHARACTERS:
        return repr(value[:QUOTED_CHARACTERS]) + "…"
    return repr(value)


# xs:dateTime: [-]YYYY-MM-DDThh:mm:ss[.fff][Z|±hh:mm]. A bare date (a common slip for
# dueDate) is taken as its midnight; no zone is taken as UTC (the standard asks for one).
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:\d{2})?"
)


def parse_date_time(text: str) -> datetime:
    """An xs:dateTime as an aware datetime; ValueError if it is none."""
    match = _DATE_TIME.fullmatch(text.strip())
    if match is None:
        raise ValueError("not an xs:dateTime")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz = UTC
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        if offset > timedelta(hours=14):
            raise ValueError("time zone out of range")
        tz = timezone(sign * offset)
    return datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        micro,
        tzinfo=tz,
    )


def format_date_time(value: datetime) -> str:
    """An xs:dateTime with its zone (Z for UTC); a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


__all__ = [
    "ACCEPTED_VERSIONS",
    "CONFIRMATIONS",
    "CONTENT_TYPE",
    "NS",
    "ROOT",
    "SENT_VERSION",
    "ConfirmationHeader",
    "MessageError",
    "MessageKind",
    "ReceivedConfirmation",
    "format_date_time",
    "parse_date_time",
    "quoted",
]
