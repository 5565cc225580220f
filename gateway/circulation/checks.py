"""Every check the engine runs before an action, and which action runs which (RERO ILS's
shape: each action has a declared list of checks; each check returns the reasons it refuses,
with the rule it enforces; the action runs them all and refuses with every reason found).

The lists at the bottom of this module are the one place to read what an action checks.
A check sees a *case*: what the action has read and locked in its transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TypeVar

from gateway.circulation import storage
from gateway.circulation.clock import parse_stamp, stamp
from gateway.circulation.money import format_money
from gateway.circulation.policy import ILL_COPY_TYPE, Policy
from gateway.circulation.reasons import Reason, reason
from gateway.circulation.states import CardStatus, Channel
from gateway.circulation.storage import Copy, Fee, Hold, Loan, Patron
from gateway.circulation.views import FEE_KINDS
from gateway.store import Transaction

CaseT = TypeVar("CaseT")
Check = Callable[[CaseT], Iterable[Reason]]


def run_checks(checks: Sequence[Check[CaseT]], case: CaseT) -> tuple[Reason, ...]:
    """Every reason every check finds: empty means the action may go ahead."""
    return tuple(found for check in checks for found in check(case))


# --- cases: what a check may look at ----------------------------------------------------------


@dataclass(frozen=True)
class ReaderCase:
    """A reader, read (and locked) in the action's transaction."""

    tx: Transaction
    policy: Policy
    now: datetime
    patron: Patron

    # What the reader's account summary already read, so its checks do not read it again.
    known_loans: Sequence[Loan] | None = field(default=None, kw_only=True, compare=False)
    known_holds: Sequence[Hold] | None = field(default=None, kw_only=True, compare=False)
    known_fees_owed: int | None = field(default=None, kw_only=True, compare=False)

    @cached_property
    def open_loans(self) -> Sequence[Loan]:
        """Read once for the loan and the overdue limit."""
        if self.known_loans is not None:
            return self.known_loans
        return storage.open_loans_of_patron(self.tx, self.patron.pk)

    @cached_property
    def open_holds(self) -> Sequence[Hold]:
        """The reader's waiting and ready holds (R4)."""
        if self.known_holds is not None:
            return self.known_holds
        return storage.open_holds_of_patron(self.tx, self.patron.pk)

    @cached_property
    def fees_owed(self) -> int:
        """What the reader owes on open fees, minor units."""
        if self.known_fees_owed is not None:
            return self.known_fees_owed
        return storage.fees_owed(self.tx, self.patron.pk)


@dataclass(frozen=True)
class CheckoutCase(ReaderCase):
    copy: Copy
    loan: Loan | None  # the copy's open loan, whoever has it
    ready: Hold | None  # the hold the copy is trapped for


@dataclass(frozen=True)
class CheckinCase:
    channel: Channel
    offline: bool  # the return already happened physically (SIP2 09 with no-block Y)
    loan: Loan | None  # the copy's open loan
    waiting: Sequence[Hold]  # its title's queue


@dataclass(frozen=True)
class RenewCase(ReaderCase):
    copy: Copy
    loan: Loan  # the reader's loan of the copy
    waiting: Sequence[Hold]  # the title's queue


@dataclass(frozen=True)
class HoldCase(ReaderCase):
    record_pk: int
    copies: Sequence[Copy]  # every copy of the title, locked


@dataclass(frozen=True)
class CancelCase:
    hold: Hold | None  # the reader's open hold on the title


@dataclass(frozen=True)
class FeeCase:
    kind: str
    amount: int


@dataclass(frozen=True)
class PaymentCase:
    policy: Policy
    amount: int
    currency: str | None  # what the payer says it pays in; None: the library's
    fee_id: int | None
    targets: Sequence[Fee] | None  # the open fees it would pay; None: fee_id is not theirs
    transaction_id: str
    earlier_amount: int | None  # a payment already recorded under transaction_id

    @property
    def resend(self) -> bool:
        """The same payment again (a kiosk that lost our reply): answered, never re-applied,
        so what is owed now does not matter."""
        return self.earlier_amount is not None and self.earlier_amount == self.amount


@dataclass(frozen=True)
class CardCase:
    channel: Channel


# --- the reader ---------------------------------------------------------------------------------


def reader_is_active(case: ReaderCase) -> Iterable[Reason]:
    if case.patron.status != CardStatus.ACTIVE:
        yield reason("patron_blocked")


def within_loan_limit(case: ReaderCase) -> Iterable[Reason]:
    category = case.policy.category(case.patron.category)
    count = len(case.open_loans)
    if count >= category.max_loans:
        yield reason("too_many_loans", count=count, limit=category.max_loans)


def within_overdue_limit(case: ReaderCase) -> Iterable[Reason]:
    limit = case.policy.circulation.overdue_limit
    if limit <= 0:
        return
    now = stamp(case.now)
    overdue = sum(1 for loan in case.open_loans if loan.due_at < now)
    if overdue >= limit:
        yield reason("too_many_overdue", count=overdue, limit=limit)


def within_fee_limit(case: ReaderCase) -> Iterable[Reason]:
    limit = case.policy.circulation.fee_limit
    if limit <= 0:
        return
    owed = case.fees_owed
    if owed >= limit:
        currency = case.policy.circulation.currency
        yield reason(
            "fees_exceed_limit",
            owed=format_money(owed, currency),
            limit=format_money(limit, currency),
        )


def suspension_over(case: ReaderCase) -> Iterable[Reason]:
    """R15: no holds while an R11 suspension lasts."""
    until = suspended_until(case.patron, case.now)
    if until is not None:
        yield reason("holds_suspended", until=until[:10], limit=case.policy.holds.no_show_limit)


def within_hold_limit(case: ReaderCase) -> Iterable[Reason]:
    """R4: at most the category's max_holds open holds (waiting + ready)."""
    category = case.policy.category(case.patron.category)
    count = len(case.open_holds)
    if count >= category.max_holds:
        yield reason("too_many_holds", count=count, limit=category.max_holds)


def suspended_until(patron: Patron, now: datetime) -> str | None:
    """The end of the reader's hold suspension (R11), while it is in the future."""
    until = patron.hold_suspended_until
    return until if until and parse_stamp(until) > now else None


# --- checkout -----------------------------------------------------------------------------------


def copy_circulates(case: CheckoutCase) -> Iterable[Reason]:
    """R1: a copy of a non-circulating type is read in the library, never lent."""
    if not case.policy.availability.circulates(case.copy.item_type):
        yield reason("item_not_circulating", item_type=case.copy.item_type or "-")


def copy_not_on_loan(case: CheckoutCase) -> Iterable[Reason]:
    if case.loan is not None:
        yield reason(
            "item_on_loan_to_you" if case.loan.patron_pk == case.patron.pk else "item_on_loan"
        )


def copy_not_trapped_for_another(case: CheckoutCase) -> Iterable[Reason]:
    """R14: a trapped copy goes only to the reader whose hold it is kept for."""
    if case.ready is not None and case.ready.patron_pk != case.patron.pk:
        yield reason("trapped_for_another")


def copy_on_shelf(case: CheckoutCase) -> Iterable[Reason]:
    """A copy neither lent nor trapped must carry the on-shelf status (not missing, lost...)."""
    on_shelf = case.policy.circulation.on_shelf_status
    if case.loan is None and case.ready is None and case.copy.status != on_shelf:
        yield reason("item_not_available", status=case.copy.status)


# --- checkin ------------------------------------------------------------------------------------


def copy_is_on_loan(case: CheckinCase) -> Iterable[Reason]:
    if case.loan is None:
        yield reason("not_on_loan")


def self_check_cannot_return_a_held_title(case: CheckinCase) -> Iterable[Reason]:
    """R7: a self-check machine refuses the return of a copy whose title has a waiting hold;
    staff return it at the desk (R6). An offline return already happened: the book is in the
    machine's bin, so it is recorded and trapped instead (R6), never refused."""
    if (
        case.channel == Channel.SELF_CHECK
        and not case.offline
        and case.loan is not None
        and case.waiting
    ):
        yield reason("selfcheck_return_held")


# --- renew --------------------------------------------------------------------------------------


def nobody_else_waits(case: RenewCase) -> Iterable[Reason]:
    """R5: no renewal while another reader waits for the title, on any channel."""
    if any(hold.patron_pk != case.patron.pk for hold in case.waiting):
        yield reason("renew_held_by_other")


def renewals_left(case: RenewCase) -> Iterable[Reason]:
    if case.loan.renewals >= case.policy.category(case.patron.category).renewals:
        yield reason("renewals_exhausted", count=case.loan.renewals)


# --- place a hold -------------------------------------------------------------------------------


def title_has_circulating_copy(case: HoldCase) -> Iterable[Reason]:
    """R1: only titles with a copy of a circulating type accept holds."""
    if not any(case.policy.availability.circulates(copy.item_type) for copy in case.copies):
        yield reason("title_not_holdable")


def not_a_borrowed_copy(case: HoldCase) -> Iterable[Reason]:
    """I6: a copy borrowed through ILL is kept for the reader who asked for it and goes back
    to its lender; nobody else may queue for it."""
    if any(copy.item_type == ILL_COPY_TYPE for copy in case.copies):
        yield reason("ill_copy_not_holdable")


def no_copy_available(case: HoldCase) -> Iterable[Reason]:
    """R2: while an available copy is on the shelf, borrow it instead."""
    rule = case.policy.availability
    for copy in case.copies:
        on_loan = storage.open_loan_of_copy(case.tx, copy.pk) is not None
        trapped = storage.ready_hold_of_copy(case.tx, copy.pk) is not None
        if rule.is_available(copy.status, copy.item_type, on_loan=on_loan, trapped=trapped):
            yield reason("copy_available")
            return


def title_not_on_loan_to_reader(case: HoldCase) -> Iterable[Reason]:
    """R3: a reader who has a copy of the title on loan cannot hold it."""
    loans = storage.open_loans_of_title(case.tx, case.record_pk)
    if any(loan.patron_pk == case.patron.pk for loan in loans):
        yield reason("title_on_loan_to_you")


def not_held_already(case: HoldCase) -> Iterable[Reason]:
    """R4: one hold per reader and title."""
    if storage.open_hold(case.tx, case.patron.pk, case.record_pk) is not None:
        yield reason("already_held")


# --- cancel a hold ------------------------------------------------------------------------------


def hold_is_open(case: CancelCase) -> Iterable[Reason]:
    """R12: there must be an open hold (waiting or ready) to cancel."""
    if case.hold is None:
        yield reason("hold_unknown")


# --- fees and payments --------------------------------------------------------------------------


def fee_kind_known(case: FeeCase) -> Iterable[Reason]:
    if case.kind not in FEE_KINDS:
        yield reason("fee_kind_unknown", kind=case.kind, kinds=", ".join(FEE_KINDS))


def fee_amount_positive(case: FeeCase) -> Iterable[Reason]:
    if not whole_positive(case.amount):
        yield reason("fee_amount_invalid")


def currency_accepted(case: PaymentCase) -> Iterable[Reason]:
    """Payments are taken in the library's currency only; a machine set up for another one
    must not have its amount read as ours."""
    ours = case.policy.circulation.currency
    if case.currency and case.currency.strip().upper() != ours.upper():
        yield reason("currency_not_accepted", currency=ours)


def transaction_id_fresh(case: PaymentCase) -> Iterable[Reason]:
    """The same transaction id with another amount is not a resend: a kiosk whose counter
    restarted must not have money taken and silently not recorded."""
    if case.earlier_amount is not None and case.earlier_amount != case.amount:
        yield reason("transaction_id_reused", transaction=case.transaction_id)


def payment_positive(case: PaymentCase) -> Iterable[Reason]:
    if not whole_positive(case.amount):
        yield reason("payment_invalid")


def fee_is_the_readers(case: PaymentCase) -> Iterable[Reason]:
    if case.targets is None and not case.resend:
        yield reason("fee_unknown", fee=case.fee_id)


def fees_are_due(case: PaymentCase) -> Iterable[Reason]:
    if case.targets is not None and not case.targets and not case.resend:
        yield reason("no_fees_due")


def payment_within_balance(case: PaymentCase) -> Iterable[Reason]:
    """An overpayment is refused, never kept as credit."""
    if not case.targets or not whole_positive(case.amount) or case.resend:
        return
    due = sum(fee.outstanding for fee in case.targets)
    if case.amount > due:
        currency = case.policy.circulation.currency
        yield reason(
            "payment_exceeds_balance",
            amount=format_money(case.amount, currency),
            balance=format_money(due, currency),
        )


def whole_positive(amount: object) -> bool:
    return isinstance(amount, int) and not isinstance(amount, bool) and amount > 0


# --- the reader's card --------------------------------------------------------------------------


def lifted_at_the_desk(case: CardCase) -> Iterable[Reason]:
    """Only the service desk lifts a block: a self-check machine must not undo a block the
    library set (a lost card, a reader sent to the desk)."""
    if case.channel != Channel.DESK:
        yield reason("enable_at_desk")


# --- which action runs which checks -------------------------------------------------------------

BORROWING_CHECKS: tuple[Check[ReaderCase], ...] = (
    within_loan_limit,
    within_overdue_limit,
    within_fee_limit,
)
HOLDING_CHECKS: tuple[Check[ReaderCase], ...] = (suspension_over, within_hold_limit)  # R15, R4

CHECKOUT_CHECKS: tuple[Check[CheckoutCase], ...] = (
    reader_is_active,
    copy_circulates,  # R1
    copy_not_on_loan,
    copy_not_trapped_for_another,  # R14
    copy_on_shelf,
    *BORROWING_CHECKS,
)
CHECKIN_CHECKS: tuple[Check[CheckinCase], ...] = (
    copy_is_on_loan,
    self_check_cannot_return_a_held_title,  # R7
)
RENEW_CHECKS: tuple[Check[RenewCase], ...] = (
    reader_is_active,
    nobody_else_waits,  # R5
    renewals_left,
)
PLACE_HOLD_CHECKS: tuple[Check[HoldCase], ...] = (
    reader_is_active,
    suspension_over,  # R15
    title_has_circulating_copy,  # R1
    not_a_borrowed_copy,  # I6
    no_copy_available,  # R2
    title_not_on_loan_to_reader,  # R3
    not_held_already,  # R4
    within_hold_limit,  # R4
)
CANCEL_HOLD_CHECKS: tuple[Check[CancelCase], ...] = (hold_is_open,)  # R12
ADD_FEE_CHECKS: tuple[Check[FeeCase], ...] = (fee_kind_known, fee_amount_positive)
PAY_FEE_CHECKS: tuple[Check[PaymentCase], ...] = (
    currency_accepted,
    transaction_id_fresh,
    payment_positive,
    fee_is_the_readers,
    fees_are_due,
    payment_within_balance,
)
ENABLE_PATRON_CHECKS: tuple[Check[CardCase], ...] = (lifted_at_the_desk,)
