"""What each engine action answers: one frozen result type per action, with only the fields
that action has. `ok` False means nothing changed, and `reasons` then holds every obstacle the
checks found (a reader learns them all at once); `notes` are facts to tell the operator
(a trap, a fulfilled hold, a payment recorded)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from gateway.circulation.availability import ShelfState
from gateway.circulation.reasons import Reason
from gateway.circulation.states import HoldState
from gateway.circulation.storage import Copy, Patron, RecordLabel


@dataclass(frozen=True, kw_only=True)
class Result:
    action: ClassVar[str]
    ok: bool
    reasons: tuple[Reason, ...] = ()  # why it was refused: every obstacle found
    notes: tuple[Reason, ...] = ()  # what happened besides, for the operator

    def message(self, language: str = "zh") -> str:
        """The reasons (or, when ok, the notes) in zh (default) or en."""
        return " ".join(r.message(language) for r in (self.reasons or self.notes))


@dataclass(frozen=True, kw_only=True)
class CheckoutResult(Result):
    action: ClassVar[str] = "checkout"
    patron: Patron | None = None
    copy: Copy | None = None
    record: RecordLabel | None = None
    due_at: str | None = None
    fulfilled_hold_id: int | None = None  # R14: the reader's hold this checkout fulfilled


@dataclass(frozen=True, kw_only=True)
class CheckinResult(Result):
    action: ClassVar[str] = "checkin"
    patron: Patron | None = None  # the borrower
    copy: Copy | None = None
    record: RecordLabel | None = None
    due_at: str | None = None  # refused under R7: the loan, still open, is due then
    offline: bool = False  # the return already happened while the machine was offline
    to_desk: bool = False  # the copy must go to the service desk, not back to the shelf
    trapped_for: Patron | None = None  # R6: the reader whose hold it is now kept for
    hold_id: int | None = None  # that hold, now ready
    pickup_deadline: str | None = None  # R9
    pickup_desk: str | None = None  # R10


@dataclass(frozen=True, kw_only=True)
class RenewResult(Result):
    action: ClassVar[str] = "renew"
    patron: Patron | None = None
    copy: Copy | None = None
    record: RecordLabel | None = None
    due_at: str | None = None  # the new due date; refused: the unchanged one


@dataclass(frozen=True, kw_only=True)
class RenewAllResult(Result):
    """`ok` False: the reader is not known. Otherwise each loan's own answer."""

    action: ClassVar[str] = "renew_all"
    renewals: tuple[RenewResult, ...] = ()

    @property
    def renewed(self) -> tuple[RenewResult, ...]:
        return tuple(r for r in self.renewals if r.ok)

    @property
    def refused(self) -> tuple[RenewResult, ...]:
        return tuple(r for r in self.renewals if not r.ok)


@dataclass(frozen=True, kw_only=True)
class HoldResult(Result):
    """A hold placed (place_hold) or as it stands (hold_status)."""

    action: ClassVar[str] = "hold"
    patron: Patron | None = None
    record: RecordLabel | None = None
    hold_id: int | None = None
    hold_state: HoldState | None = None
    queue_position: int | None = None  # waiting: 1 = next to be served
    expires_at: str | None = None  # R8
    pickup_desk: str | None = None  # R10: ready, the desk; waiting, the likely one
    pickup_deadline: str | None = None  # R9, while ready


@dataclass(frozen=True, kw_only=True)
class CancelResult(Result):
    action: ClassVar[str] = "cancel"
    patron: Patron | None = None
    record: RecordLabel | None = None
    hold_id: int | None = None  # the hold cancelled


@dataclass(frozen=True, kw_only=True)
class FeeResult(Result):
    action: ClassVar[str] = "add_fee"
    patron: Patron | None = None
    fee_id: int | None = None  # the new fee
    balance: int | None = None  # what the reader owes after it, minor units


@dataclass(frozen=True, kw_only=True)
class PaymentResult(Result):
    action: ClassVar[str] = "pay_fee"
    patron: Patron | None = None
    fee_id: int | None = None  # the (first) fee paid
    amount_paid: int | None = None  # minor units applied by this payment
    balance: int | None = None  # what the reader still owes, minor units


@dataclass(frozen=True, kw_only=True)
class BlockResult(Result):
    action: ClassVar[str] = "block_patron"
    patron: Patron | None = None  # as it is now


@dataclass(frozen=True, kw_only=True)
class EnableResult(Result):
    action: ClassVar[str] = "enable_patron"
    patron: Patron | None = None  # as it is now


@dataclass(frozen=True, kw_only=True)
class ItemUpdateResult(Result):
    action: ClassVar[str] = "update_item_properties"
    copy: Copy | None = None
    record: RecordLabel | None = None


@dataclass(frozen=True)
class CopyAvailability:
    barcode: str
    location: str
    call_number: str
    item_type: str
    status: str
    state: ShelfState  # from the one predicate (availability.py): 在架可借, 在馆阅览, 借出, ...
    due_at: str | None
    on_hold_shelf: bool
    pickup_desk: str | None
    library: str  # 馆址 (items.library); "" when the holdings named none

    @property
    def available(self) -> bool:
        """R2's available copy: circulating type, on the shelf, not lent, not trapped."""
        return self.state is ShelfState.AVAILABLE


@dataclass(frozen=True)
class TitleAvailability:
    record_pk: int
    copies: tuple[CopyAvailability, ...]
    hold_queue: int  # waiting holds


@dataclass
class ExpiryReport:
    expired: int = 0  # R8
    no_shows: int = 0  # R9
    suspended: int = 0  # R11
    trapped: int = 0  # copies passed to the next hold
    events: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for staff, each count with the rule that made it."""
        return (
            f"expired {self.expired} (R8), not collected {self.no_shows} (R9), suspended"
            f" {self.suspended} (R11), copies passed to the next hold {self.trapped}"
        )
