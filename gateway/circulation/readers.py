"""Readers: the account a self-check machine shows, the PIN, blocking and lifting a block."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from gateway.circulation import storage
from gateway.circulation.checks import (
    BORROWING_CHECKS,
    ENABLE_PATRON_CHECKS,
    HOLDING_CHECKS,
    CardCase,
    ReaderCase,
    reader_is_active,
    run_checks,
    suspended_until,
)
from gateway.circulation.clock import parse_stamp, stamp
from gateway.circulation.core import EngineCore
from gateway.circulation.holds import queue_position
from gateway.circulation.pins import check_pin
from gateway.circulation.reasons import reason
from gateway.circulation.results import BlockResult, EnableResult
from gateway.circulation.states import CardStatus, Channel, HoldState
from gateway.circulation.storage import Hold, LabelledLoan
from gateway.circulation.views import FeeView, HoldView, LoanView, PatronSummary
from gateway.store import Transaction


def patron_summary(core: EngineCore, patron_barcode: str) -> PatronSummary | None:
    """A reader's loans, holds and open fees, and the flags a self-check machine shows,
    decided by the same checks checkout and place_hold run."""
    with core.store.read() as tx:
        patron = storage.patron_by_barcode(tx, patron_barcode)
        if patron is None:
            return None
        now = core.clock.now()
        # Loans, holds and open fees are each read once, for the summary and its checks.
        labelled = storage.open_loans_of_patron_labelled(tx, patron.pk)
        loans = tuple(_loan_view(found, now) for found in labelled)
        open_holds = storage.open_holds_of_patron(tx, patron.pk)
        holds = [_hold_view(tx, hold) for hold in open_holds]
        fees = tuple(
            FeeView.of(fee) for fee in storage.fees_of_patron(tx, patron.pk, open_only=True)
        )
        case = ReaderCase(
            tx,
            core.policy,
            now,
            patron,
            known_loans=[found.loan for found in labelled],
            known_holds=open_holds,
            known_fees_owed=sum(fee.outstanding for fee in fees),
        )
        blocked = run_checks((reader_is_active,), case)
        borrowing = run_checks(BORROWING_CHECKS, case)
        holding = run_checks(HOLDING_CHECKS, case)
    codes = {r.code for r in borrowing}
    return PatronSummary(
        patron=patron,
        category=core.policy.category(patron.category),
        loans=loans,
        ready_holds=tuple(h for h in holds if h.state == HoldState.READY),
        waiting_holds=tuple(h for h in holds if h.state == HoldState.WAITING),
        fees=fees,
        fees_total=sum(fee.outstanding for fee in fees),
        currency=core.policy.circulation.currency,
        charge_denied=bool(blocked or borrowing),
        renewal_denied=bool(blocked),
        hold_denied=bool(blocked or holding),
        too_many_charged="too_many_loans" in codes,
        too_many_overdue="too_many_overdue" in codes,
        excessive_fees="fees_exceed_limit" in codes,
        hold_suspended_until=suspended_until(patron, now),
        reasons=blocked + borrowing + holding,
    )


def verify_patron_pin(core: EngineCore, patron_barcode: str, pin: str) -> bool | None:
    """True for the reader's PIN, False for any other (and for a reader without one),
    None for an unknown reader."""
    with core.store.read() as tx:
        patron = storage.patron_by_barcode(tx, patron_barcode)
    if patron is None:
        return None
    return check_pin(pin, patron.pin_hash)


def block_patron(
    core: EngineCore, patron_barcode: str, message: str, channel: Channel
) -> BlockResult:
    """Stop a reader's card (any channel: SIP2 01 Block Patron, staff): checkout, renewal and
    holds are refused until enable_patron. The message is kept in the audit event."""

    def work(tx: Transaction, now: datetime) -> BlockResult:
        patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
        if patron is None:
            return BlockResult(ok=False, reasons=(reason("patron_unknown", patron=patron_barcode),))
        _set_status(tx, now, patron.pk, patron.status, CardStatus.BLOCKED, message, channel)
        return BlockResult(ok=True, patron=replace(patron, status=CardStatus.BLOCKED))

    return core.write(work)


def enable_patron(core: EngineCore, patron_barcode: str, channel: Channel) -> EnableResult:
    """Lift a block: only at the service desk (ok also when the card was not blocked)."""

    def work(tx: Transaction, now: datetime) -> EnableResult:
        refusals = run_checks(ENABLE_PATRON_CHECKS, CardCase(channel))
        patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
        if patron is None:
            refusals += (reason("patron_unknown", patron=patron_barcode),)
        if refusals or patron is None:
            return EnableResult(ok=False, reasons=refusals, patron=patron)
        _set_status(tx, now, patron.pk, patron.status, CardStatus.ACTIVE, "", channel)
        return EnableResult(ok=True, patron=replace(patron, status=CardStatus.ACTIVE))

    return core.write(work)


def _set_status(
    tx: Transaction,
    now: datetime,
    patron_pk: int,
    was: CardStatus,
    status: CardStatus,
    message: str,
    channel: Channel,
) -> None:
    storage.set_patron_status(tx, patron_pk, status)
    storage.log_event(
        tx,
        stamp(now),
        "patron_blocked" if status == CardStatus.BLOCKED else "patron_enabled",
        channel,
        patron_pk=patron_pk,
        was=was,
        message=message,
    )


def _loan_view(found: LabelledLoan, now: datetime) -> LoanView:
    loan, label = found.loan, found.label
    return LoanView(
        item_barcode=found.item_barcode,
        record_id=label.record_id,
        database=label.database,
        title=label.title,
        due_at=loan.due_at,
        overdue=parse_stamp(loan.due_at) < now,
        renewals=loan.renewals,
    )


def _hold_view(tx: Transaction, hold: Hold) -> HoldView:
    label = storage.record_label(tx, hold.record_pk)
    return HoldView(
        id=hold.id,
        state=hold.state,
        database=label.database,
        record_id=label.record_id,
        title=label.title,
        placed_at=hold.placed_at,
        expires_at=hold.expires_at,
        item_barcode=storage.copy_by_pk(tx, hold.item_pk).barcode if hold.item_pk else None,
        pickup_desk=hold.pickup_desk,
        pickup_deadline=hold.pickup_deadline,
        queue_position=queue_position(tx, hold),
    )
