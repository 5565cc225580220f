"""The two ILL state machines, lender and borrower, as tables: (state, event) → the next state,
the message the transition sends, and the ISO 18626 status the request then has.

Modelled on CrossLink's state-models.yaml (SUPPLIER and REQUESTER) and ReShare's mod-rs (see
docs/research/ill-portal-union.md §1.4-1.6), cut to what libgate does: the lender decides a
request at once (no pull slip), lends a copy it has set aside, and ends the loan at the desk
checkin; the borrower asks the lenders of its rota in turn and lends the copy it received to
its reader through the ordinary hold shelf. A (state, event) not in a table is illegal and
`step` raises; nothing else decides what may follow what.

The engine (ill_lending.py, ill_borrowing.py) turns what happened into an event and sends what
the table says; messages whose content depends on the case (a renewal's new due date, a
refusal's reason) get it from the engine, their kind and status from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.circulation.ill_types import Action, ReasonForMessage, Status


class LenderState(StrEnum):
    NEW = "new"  # received, not yet decided (never stored: decided in the same transaction)
    WILL_SUPPLY = "will_supply"  # a copy is set aside for the partner (I6)
    RETRY_POSSIBLE = "retry_possible"  # every lendable copy is on loan
    UNFILLED = "unfilled"  # refused (I1, I2) or unfilled by staff
    CANCELLED = "cancelled"  # the partner cancelled before we shipped
    LOANED = "loaned"  # shipped: on loan to the partner
    OVERDUE = "overdue"  # its due date passed
    RETURNING = "returning"  # the partner says it shipped the copy back
    COMPLETED = "completed"  # checked in at our desk


class LenderEvent(StrEnum):
    SUPPLY = "supply"  # I1: a lendable copy on the shelf
    REFUSE = "refuse"  # I1, I2: not held, not lendable, suspended
    RETRY = "retry"  # I1: lendable copies, all on loan
    SHIP = "ship"  # staff: libgate ill ship
    UNFILL = "unfill"  # staff: libgate ill unfill
    WITHDRAWN = "withdrawn"  # the set-aside copy was checked in at the desk before shipping
    CANCEL = "cancel"  # partner action Cancel
    RENEW_YES = "renew_yes"  # partner action Renew, granted
    RENEW_NO = "renew_no"  # partner action Renew, refused
    RECEIVED = "received"  # partner action Received
    SHIPPED_RETURN = "shipped_return"  # partner action ShippedReturn
    OVERDUE = "overdue"  # the due date passed (libgate ill process)
    CHECKIN = "checkin"  # the copy was checked in at our desk
    STATUS_REQUEST = "status_request"  # partner action StatusRequest
    NOTIFICATION = "notification"  # partner action Notification


class BorrowerState(StrEnum):
    NEW = "new"  # validated, not yet sent (never stored)
    SENT = "sent"  # the Request went to the current lender of the rota
    WILL_SUPPLY = (
        "will_supply"  # the lender will supply (RequestReceived, ExpectToSupply, WillSupply)
    )
    SHIPPED = "shipped"  # the lender lent it (Loaned)
    RECEIVED = "received"  # it arrived; a temporary copy waits on our hold shelf
    CHECKED_IN = "checked_in"  # our reader returned it at the desk
    RETURNED = "returned"  # we shipped it back (ShippedReturn)
    COMPLETED = "completed"  # the lender says the loan is complete
    CANCEL_PENDING = "cancel_pending"  # we asked the lender to cancel
    CANCELLED = "cancelled"  # the lender cancelled
    END_OF_ROTA = "end_of_rota"  # every lender of the rota was unable to supply


class BorrowerEvent(StrEnum):
    SEND = "send"  # the request is filed: Request to the first lender
    EXPECT = "expect"  # status RequestReceived, ExpectToSupply or WillSupply
    LOANED = "loaned"  # status Loaned (shipped, or a renewal / cancel refusal)
    OVERDUE = "overdue"  # status Overdue
    RECALLED = "recalled"  # status Recalled
    UNFILLED_NEXT = "unfilled_next"  # Unfilled or RetryPossible, and a lender is left
    UNFILLED_LAST = "unfilled_last"  # Unfilled or RetryPossible, and no lender is left
    COMPLETED = "completed"  # status LoanCompleted, CopyCompleted or CompletedWithoutReturn
    CANCELLED = "cancelled"  # status Cancelled
    CANCEL = "cancel"  # staff: ask the lender to cancel
    RECEIVE = "receive"  # staff: libgate ill receive
    READER_RETURN = "reader_return"  # the reader returned the copy at the desk
    SHIP_RETURN = "ship_return"  # staff: libgate ill return
    RENEW = "renew"  # staff: ask the lender for a longer loan (its RenewResponse decides)


@dataclass(frozen=True)
class Send:
    """A message a transition sends. For a supplyingAgencyMessage, `status` None means the
    request's current status (a StatusRequestResponse, a refused cancel or renewal)."""

    kind: str  # "Request" | "SupplyingAgencyMessage" | "RequestingAgencyMessage"
    reason: ReasonForMessage | None = None
    status: Status | None = None
    answer: bool | None = None
    action: Action | None = None


@dataclass(frozen=True)
class Transition:
    next: str
    send: Send | None = None
    status: Status | None = None  # the request's ISO status after it; None: unchanged


class IllegalTransition(Exception):
    """An event the request's state does not allow; nothing changes."""

    def __init__(self, role: str, state: str, event: str) -> None:
        super().__init__(f"{role} request in state {state!r} cannot take {event!r}")
        self.role = role
        self.state = state
        self.event = event


def _sam(
    reason: ReasonForMessage, status: Status | None = None, answer: bool | None = None
) -> Send:
    return Send("SupplyingAgencyMessage", reason=reason, status=status, answer=answer)


def _ram(action: Action) -> Send:
    return Send("RequestingAgencyMessage", action=action)


L, LE = LenderState, LenderEvent
RFM = ReasonForMessage

_LENDER: dict[tuple[LenderState, LenderEvent], Transition] = {
    (L.NEW, LE.SUPPLY): Transition(
        L.WILL_SUPPLY, _sam(RFM.REQUEST_RESPONSE, Status.WILL_SUPPLY), Status.WILL_SUPPLY
    ),
    (L.NEW, LE.REFUSE): Transition(
        L.UNFILLED, _sam(RFM.REQUEST_RESPONSE, Status.UNFILLED), Status.UNFILLED
    ),
    (L.NEW, LE.RETRY): Transition(
        L.RETRY_POSSIBLE, _sam(RFM.REQUEST_RESPONSE, Status.RETRY_POSSIBLE), Status.RETRY_POSSIBLE
    ),
    # The partner asks again (requestType Retry) after RetryPossible: decided afresh.
    (L.RETRY_POSSIBLE, LE.SUPPLY): Transition(
        L.WILL_SUPPLY, _sam(RFM.REQUEST_RESPONSE, Status.WILL_SUPPLY), Status.WILL_SUPPLY
    ),
    (L.RETRY_POSSIBLE, LE.REFUSE): Transition(
        L.UNFILLED, _sam(RFM.REQUEST_RESPONSE, Status.UNFILLED), Status.UNFILLED
    ),
    (L.RETRY_POSSIBLE, LE.RETRY): Transition(
        L.RETRY_POSSIBLE, _sam(RFM.REQUEST_RESPONSE, Status.RETRY_POSSIBLE), Status.RETRY_POSSIBLE
    ),
    (L.WILL_SUPPLY, LE.SHIP): Transition(
        L.LOANED, _sam(RFM.STATUS_CHANGE, Status.LOANED), Status.LOANED
    ),
    (L.WILL_SUPPLY, LE.UNFILL): Transition(
        L.UNFILLED, _sam(RFM.STATUS_CHANGE, Status.UNFILLED), Status.UNFILLED
    ),
    (L.WILL_SUPPLY, LE.WITHDRAWN): Transition(
        L.UNFILLED, _sam(RFM.STATUS_CHANGE, Status.UNFILLED), Status.UNFILLED
    ),
    # Our own borrower sends Received when a copy arrives that it had not yet heard was
    # shipped (its Loaned still on the way): recorded, nothing changes.
    (L.WILL_SUPPLY, LE.RECEIVED): Transition(L.WILL_SUPPLY),
    (L.LOANED, LE.OVERDUE): Transition(
        L.OVERDUE, _sam(RFM.STATUS_CHANGE, Status.OVERDUE), Status.OVERDUE
    ),
}
# Cancel before anything was shipped is yes: a set-aside copy is released; after RetryPossible
# or Unfilled there is nothing to release (the partner had not heard our answer yet).
for _state in (L.WILL_SUPPLY, L.RETRY_POSSIBLE, L.UNFILLED):
    _LENDER[(_state, LE.CANCEL)] = Transition(
        L.CANCELLED, _sam(RFM.CANCEL_RESPONSE, Status.CANCELLED, answer=True), Status.CANCELLED
    )
for _state in (L.LOANED, L.OVERDUE, L.RETURNING, L.COMPLETED):
    # Shipped already: the answer is no, and the status stays what it is.
    _LENDER[(_state, LE.CANCEL)] = Transition(_state, _sam(RFM.CANCEL_RESPONSE, answer=False))
for _state in (L.LOANED, L.OVERDUE):
    _LENDER[(_state, LE.RENEW_YES)] = Transition(
        L.LOANED, _sam(RFM.RENEW_RESPONSE, Status.LOANED, answer=True), Status.LOANED
    )
    _LENDER[(_state, LE.RENEW_NO)] = Transition(_state, _sam(RFM.RENEW_RESPONSE, answer=False))
    _LENDER[(_state, LE.RECEIVED)] = Transition(_state)
    _LENDER[(_state, LE.SHIPPED_RETURN)] = Transition(L.RETURNING)
for _state in (L.LOANED, L.OVERDUE, L.RETURNING):
    _LENDER[(_state, LE.CHECKIN)] = Transition(
        L.COMPLETED, _sam(RFM.STATUS_CHANGE, Status.LOAN_COMPLETED), Status.LOAN_COMPLETED
    )
for _state in L:
    if _state is not L.NEW:
        _LENDER[(_state, LE.STATUS_REQUEST)] = Transition(_state, _sam(RFM.STATUS_REQUEST_RESPONSE))
        _LENDER[(_state, LE.NOTIFICATION)] = Transition(_state)
LENDER: dict[tuple[LenderState, LenderEvent], Transition] = dict(_LENDER)

B, BE = BorrowerState, BorrowerEvent
_REQUEST = Send("Request")
_ASKING = (B.SENT, B.WILL_SUPPLY, B.CANCEL_PENDING)  # a lender is deciding or preparing
_LENT = (B.SHIPPED, B.RECEIVED, B.CHECKED_IN, B.RETURNED)  # the lender's copy is out

_BORROWER: dict[tuple[BorrowerState, BorrowerEvent], Transition] = {
    (B.NEW, BE.SEND): Transition(B.SENT, _REQUEST),
    (B.SENT, BE.EXPECT): Transition(B.WILL_SUPPLY),
    (B.WILL_SUPPLY, BE.EXPECT): Transition(B.WILL_SUPPLY),
    (B.CANCEL_PENDING, BE.EXPECT): Transition(B.WILL_SUPPLY),  # the cancel was refused
    (B.SENT, BE.UNFILLED_NEXT): Transition(B.SENT, _REQUEST),
    (B.WILL_SUPPLY, BE.UNFILLED_NEXT): Transition(B.SENT, _REQUEST),
    (B.SENT, BE.UNFILLED_LAST): Transition(B.END_OF_ROTA),
    (B.WILL_SUPPLY, BE.UNFILLED_LAST): Transition(B.END_OF_ROTA),
    # We asked to cancel: an unfilled answer ends it here, it goes to no other lender.
    (B.CANCEL_PENDING, BE.UNFILLED_NEXT): Transition(B.CANCELLED),
    (B.CANCEL_PENDING, BE.UNFILLED_LAST): Transition(B.CANCELLED),
    (B.SENT, BE.CANCEL): Transition(B.CANCEL_PENDING, _ram(Action.CANCEL)),
    (B.WILL_SUPPLY, BE.CANCEL): Transition(B.CANCEL_PENDING, _ram(Action.CANCEL)),
    (B.WILL_SUPPLY, BE.RECEIVE): Transition(B.RECEIVED, _ram(Action.RECEIVED)),
    (B.SHIPPED, BE.RECEIVE): Transition(B.RECEIVED, _ram(Action.RECEIVED)),
    (B.RECEIVED, BE.READER_RETURN): Transition(B.CHECKED_IN),
    (B.RECEIVED, BE.SHIP_RETURN): Transition(B.RETURNED, _ram(Action.SHIPPED_RETURN)),
    (B.CHECKED_IN, BE.SHIP_RETURN): Transition(B.RETURNED, _ram(Action.SHIPPED_RETURN)),
}
for _bstate in _ASKING:
    _BORROWER[(_bstate, BE.LOANED)] = Transition(B.SHIPPED)  # a refused cancel says Loaned too
    _BORROWER[(_bstate, BE.CANCELLED)] = Transition(B.CANCELLED)
for _bstate in _LENT:
    _BORROWER[(_bstate, BE.LOANED)] = Transition(_bstate)  # a renewal, a status response
    _BORROWER[(_bstate, BE.OVERDUE)] = Transition(_bstate)
    _BORROWER[(_bstate, BE.RECALLED)] = Transition(_bstate)
    _BORROWER[(_bstate, BE.COMPLETED)] = Transition(B.COMPLETED)
for _bstate in (B.SHIPPED, B.RECEIVED, B.CHECKED_IN):
    _BORROWER[(_bstate, BE.RENEW)] = Transition(_bstate, _ram(Action.RENEW))
BORROWER: dict[tuple[BorrowerState, BorrowerEvent], Transition] = dict(_BORROWER)

# What an incoming status means to the borrower (all 12; Unfilled and RetryPossible become
# UNFILLED_NEXT or UNFILLED_LAST by what is left of the rota).
BORROWER_EVENT_OF_STATUS: dict[Status, BorrowerEvent] = {
    Status.REQUEST_RECEIVED: BE.EXPECT,
    Status.EXPECT_TO_SUPPLY: BE.EXPECT,
    Status.WILL_SUPPLY: BE.EXPECT,
    Status.LOANED: BE.LOANED,
    Status.OVERDUE: BE.OVERDUE,
    Status.RECALLED: BE.RECALLED,
    Status.RETRY_POSSIBLE: BE.UNFILLED_NEXT,
    Status.UNFILLED: BE.UNFILLED_NEXT,
    Status.COPY_COMPLETED: BE.COMPLETED,
    Status.LOAN_COMPLETED: BE.COMPLETED,
    Status.COMPLETED_WITHOUT_RETURN: BE.COMPLETED,
    Status.CANCELLED: BE.CANCELLED,
}

# What a partner's action means to the lender (ShippedForward is not supported; Renew is
# RENEW_YES or RENEW_NO by the engine's decision).
LENDER_EVENT_OF_ACTION: dict[Action, LenderEvent] = {
    Action.STATUS_REQUEST: LE.STATUS_REQUEST,
    Action.RECEIVED: LE.RECEIVED,
    Action.CANCEL: LE.CANCEL,
    Action.RENEW: LE.RENEW_YES,
    Action.SHIPPED_RETURN: LE.SHIPPED_RETURN,
    Action.NOTIFICATION: LE.NOTIFICATION,
}

LENDER_OPEN = (L.WILL_SUPPLY, L.LOANED, L.OVERDUE, L.RETURNING)  # a copy is set aside or out


def lender_step(state: str, event: LenderEvent) -> Transition:
    found = LENDER.get((LenderState(state), event))
    if found is None:
        raise IllegalTransition("lender", state, event)
    return found


def borrower_step(state: str, event: BorrowerEvent) -> Transition:
    found = BORROWER.get((BorrowerState(state), event))
    if found is None:
        raise IllegalTransition("borrower", state, event)
    return found
