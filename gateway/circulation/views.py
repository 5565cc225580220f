"""What the engine tells a front-end about a reader, a copy and a reader's fees: frozen,
keyword-only views built in one read transaction (SIP2 63/64, 17/18, 35/36; the staff CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.circulation.availability import ShelfState
from gateway.circulation.reasons import Reason
from gateway.circulation.states import CirculationState, HoldState, LoanState
from gateway.circulation.storage import Copy, Fee, Patron
from gateway.config import PatronCategory

FEE_KINDS = ("overdue", "damage", "replacement", "administrative", "processing", "other")


@dataclass(frozen=True, kw_only=True)
class FeeView:
    id: int
    kind: str  # one of FEE_KINDS
    amount: int  # minor units (fen)
    paid: int
    outstanding: int  # amount - paid
    currency: str
    description: str
    created_at: str
    closed_at: str | None = None  # set when its payments reached the amount

    @classmethod
    def of(cls, fee: Fee) -> FeeView:
        return cls(
            id=fee.id,
            kind=fee.kind,
            amount=fee.amount,
            paid=fee.paid,
            outstanding=fee.outstanding,
            currency=fee.currency,
            description=fee.description,
            created_at=fee.created_at,
            closed_at=fee.closed_at,
        )


@dataclass(frozen=True, kw_only=True)
class LoanView:
    item_barcode: str
    record_id: str
    database: str
    title: str
    due_at: str
    overdue: bool  # due_at before now
    renewals: int  # renewals made so far

    @property
    def state(self) -> LoanState:
        """An open loan, as a reader's account shows it."""
        return LoanState.OVERDUE if self.overdue else LoanState.ON_LOAN


@dataclass(frozen=True, kw_only=True)
class HoldView:
    id: int
    state: HoldState  # waiting | ready
    database: str
    record_id: str
    title: str
    placed_at: str
    expires_at: str  # R8: a waiting hold expires then
    item_barcode: str | None = None  # ready: the trapped copy
    pickup_desk: str | None = None  # ready: R10
    pickup_deadline: str | None = None  # ready: R9
    queue_position: int | None = None  # waiting: 1 = next to be served


@dataclass(frozen=True, kw_only=True)
class PatronSummary:
    """A reader's account with the flags a self-check machine shows (SIP2 patron status).
    The flags come from the same checks the actions run: `charge_denied` is true exactly when
    checkout would refuse this reader whatever the copy, `hold_denied` when place_hold would
    refuse whatever the title."""

    patron: Patron
    category: PatronCategory
    loans: tuple[LoanView, ...]
    ready_holds: tuple[HoldView, ...]
    waiting_holds: tuple[HoldView, ...]
    fees: tuple[FeeView, ...]  # open fees, oldest first
    fees_total: int  # still owed, minor units
    currency: str
    charge_denied: bool  # blocked, at max_loans, or fees at fee_limit
    renewal_denied: bool  # blocked (R5 and renewal counts are per loan)
    hold_denied: bool  # blocked, suspended (R15) or at max_holds (R4)
    too_many_charged: bool  # at or over max_loans
    too_many_overdue: bool  # at `[circulation] overdue_limit` (which then refuses checkout)
    excessive_fees: bool  # fee_limit > 0 and fees_total >= fee_limit
    hold_suspended_until: str | None  # R11/R15, while in the future
    reasons: tuple[Reason, ...] = ()  # why the denied flags are set, for screen messages

    @property
    def open_holds(self) -> tuple[HoldView, ...]:
        """Every open hold, ready or waiting, in the order they were placed."""
        return tuple(
            sorted(self.ready_holds + self.waiting_holds, key=lambda h: (h.placed_at, h.id))
        )


@dataclass(frozen=True, kw_only=True)
class ItemView:
    copy: Copy
    database: str
    record_id: str
    title: str
    author: str
    circulation: CirculationState  # where it is, as SIP2's circulation status says
    circulates: bool  # its item type is open for loan (R1)
    state: ShelfState  # what a reader is told: a non-circulating copy is library use only
    due_at: str | None
    loan_patron_barcode: str | None
    hold_queue: int  # waiting holds on its title
    pickup_deadline: str | None  # while trapped (R9)
    pickup_desk: str | None  # while trapped (R10)
    hold_patron_barcode: str | None  # the reader it is trapped for
    hold_patron_name: str | None
    location: str
    call_number: str
    item_type: str

    @property
    def available(self) -> bool:
        """R2's available copy: circulates, on the shelf, not trapped, not lent."""
        return self.state is ShelfState.AVAILABLE
