"""What both ILL roles share: the context they run in, their result, and how a transition's
message is written to the history and queued for the partner, in the decision's transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from gateway.circulation import ill_storage
from gateway.circulation.clock import stamp
from gateway.circulation.core import EngineCore
from gateway.circulation.ill_json import to_json
from gateway.circulation.ill_states import (
    BorrowerEvent,
    IllegalTransition,
    LenderEvent,
    Transition,
    borrower_step,
    lender_step,
)
from gateway.circulation.ill_storage import IllMessageRow, IllRequest
from gateway.circulation.ill_types import (
    AgencyId,
    Confirmation,
    ErrorType,
    Header,
    Message,
    Request,
    RequestingAgencyMessage,
    SupplyingAgencyMessage,
)
from gateway.circulation.reasons import Reason, reason
from gateway.config import IllPartner, IllSettings
from gateway.store import Transaction

TITLE_LIMIT = 240  # I4
NOTE_LIMIT = 50  # I4
FIELD_LIMIT = 240  # any other field of the form
# A note kept in the message history from a partner's message: more than a form's note (a
# partner's later actions and answers carry sequence tags and reasons), still bounded.
HISTORY_NOTE_LIMIT = 500
ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """A partner's text in at most `limit` characters, cut with an ellipsis: what one partner
    sends must not grow our tables without bound."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


@dataclass(frozen=True)
class IllContext:
    core: EngineCore
    settings: IllSettings

    @property
    def agency(self) -> AgencyId:
        return AgencyId.parse(self.settings.agency_id)

    def is_us(self, agency: AgencyId | None) -> bool:
        """An agency id names us (the type compared without case)."""
        return agency is None or agency == self.agency

    def addressed(
        self,
        ours: AgencyId | None,
        ours_element: str,
        theirs: AgencyId | None,
        theirs_element: str,
    ) -> IllPartner | Confirmation:
        """The partner a message comes from when it names us as `ours_element` and a configured
        partner as `theirs_element` (I7: only known partners); else the ERROR confirmation
        that says which of the two is wrong."""
        if not self.is_us(ours):
            return Confirmation.error(
                ErrorType.UNRECOGNISED_DATA_VALUE,
                f"{ours_element}: {ours} is not this library ({self.agency})",
            )
        partner = self.settings.partner(str(theirs)) if theirs is not None else None
        if partner is None:
            return Confirmation.error(
                ErrorType.UNRECOGNISED_DATA_VALUE,
                f"{theirs_element}: {theirs} is not a partner of {self.agency}",
            )
        return partner

    def number(self, tx: Transaction) -> str:
        """I3: the next request number, the prefix and 8 digits (ST00000001)."""
        return f"{self.settings.request_prefix}{ill_storage.next_number(tx):08d}"


@dataclass(frozen=True)
class IllResult:
    """What an ILL action did: ok, or refused with every reason; the request as it now is."""

    ok: bool
    reasons: tuple[Reason, ...] = ()
    request: IllRequest | None = None
    messages: tuple[IllMessageRow, ...] = field(default=())


def header(request: IllRequest, now: datetime) -> Header:
    """The header of a message about `request`, whichever role we play in it."""
    partner, us = AgencyId.parse(request.partner), AgencyId.parse(request.our_agency)
    lender = request.role == "lender"
    return Header(
        requesting_agency=partner if lender else us,
        supplying_agency=us if lender else partner,
        timestamp=now,
        requesting_agency_request_id=request.requesting_agency_request_id,
        supplying_agency_request_id=request.supplying_agency_request_id,
    )


def summary(message: Message) -> dict[str, str]:
    """The history columns of a message."""
    if isinstance(message, SupplyingAgencyMessage):
        answer = "" if message.answer_yes_no is None else ("Y" if message.answer_yes_no else "N")
        return {
            "status": message.status.value,
            "reason_for_message": message.reason_for_message.value,
            "answer": answer,
            "note": message.note,
        }
    if isinstance(message, RequestingAgencyMessage):
        return {"action": message.action.value, "note": message.note}
    return {"note": message.service.note}


def kind_of(message: Message) -> str:
    if isinstance(message, Request):
        return "Request"
    if isinstance(message, SupplyingAgencyMessage):
        return "SupplyingAgencyMessage"
    return "RequestingAgencyMessage"


def send(tx: Transaction, request: IllRequest, message: Message, now: datetime) -> int:
    """Queue `message` to the request's partner and write it to the history."""
    at = stamp(now)
    outbox_pk = ill_storage.queue_outgoing(
        tx,
        request.id,
        request.partner_url,
        to_json(message),
        at,
        request.retry_first_seconds,
        request.retry_max_attempts,
    )
    _history(tx, request.id, at, "out", message, outbox_pk, None)
    return outbox_pk


def received(
    tx: Transaction, request_pk: int, message: Message, now: datetime, raw_xml: str | None
) -> None:
    """Write an incoming message to the history (with its XML when the front-end has it)."""
    _history(tx, request_pk, stamp(now), "in", message, None, raw_xml)


def _history(
    tx: Transaction,
    request_pk: int,
    at: str,
    direction: str,
    message: Message,
    outbox_pk: int | None,
    raw_xml: str | None,
) -> None:
    seen = summary(message)
    ill_storage.add_message(
        tx,
        request_pk,
        at,
        direction,
        kind_of(message),
        status=seen.get("status", ""),
        action=seen.get("action", ""),
        reason_for_message=seen.get("reason_for_message", ""),
        answer=seen.get("answer", ""),
        # Our own notes are kept as sent; a partner's are bounded.
        note=seen.get("note", "")
        if direction == "out"
        else clip(seen.get("note", ""), HISTORY_NOTE_LIMIT),
        outbox_pk=outbox_pk,
        raw_xml=raw_xml,
    )


def move(
    tx: Transaction,
    row: IllRequest,
    transition: Transition,
    now: datetime,
    changes: dict[str, object] | None = None,
) -> IllRequest:
    """The request's row after `transition`: its next state, its ISO status when the
    transition sets one, and `changes`; what it sends is the role's business."""
    values: dict[str, object] = {
        "state": transition.next,
        "updated_at": stamp(now),
        **(changes or {}),
    }
    if transition.status is not None:
        values["status"] = transition.status.value
    ill_storage.update_request(tx, row.id, **values)
    moved = ill_storage.request_by_pk(tx, row.id)
    assert moved is not None
    return moved


def locked_request(tx: Transaction, number: str, role: str) -> IllRequest | Reason:
    """The request with this number, locked, when it is one of `role` (lender, borrower);
    else the reason a staff action cannot act on it."""
    row = ill_storage.request_by_number(tx, number, lock=True)
    if row is None:
        return reason("ill_request_unknown", number=number)
    if row.role != role:
        return reason("ill_wrong_role", number=number, role=row.role)
    return row


def step_or_reason(
    row: IllRequest, event: LenderEvent | BorrowerEvent, action: str
) -> Transition | Reason:
    """The transition `event` makes from the request's state, by its role's table; or the
    reason a staff `action` cannot be taken now."""
    try:
        if isinstance(event, LenderEvent):
            return lender_step(row.state, event)
        return borrower_step(row.state, event)
    except IllegalTransition:
        return reason("ill_not_now", number=row.number or "", state=row.state, action=action)
