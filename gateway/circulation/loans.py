"""Loans: checkout (R1, R14), checkin (R6, R7, offline returns), renew (R5) and renew all."""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.circulation import ill_desk, storage
from gateway.circulation.checks import (
    CHECKIN_CHECKS,
    CHECKOUT_CHECKS,
    RENEW_CHECKS,
    CheckinCase,
    CheckoutCase,
    RenewCase,
    run_checks,
)
from gateway.circulation.clock import parse_stamp, stamp
from gateway.circulation.core import EngineCore
from gateway.circulation.holds import trap_or_shelve
from gateway.circulation.reasons import reason
from gateway.circulation.results import (
    CheckinResult,
    CheckoutResult,
    RenewAllResult,
    RenewResult,
)
from gateway.circulation.states import Channel, HoldState
from gateway.circulation.storage import Copy, Patron
from gateway.store import Transaction


def checkout(
    core: EngineCore, patron_barcode: str, item_barcode: str, channel: Channel
) -> CheckoutResult:
    def work(tx: Transaction, now: datetime) -> CheckoutResult:
        copy = storage.lock_copy(tx, item_barcode)
        if copy is None:
            return CheckoutResult(ok=False, reasons=(reason("item_unknown", item=item_barcode),))
        patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
        if patron is None:
            return CheckoutResult(
                ok=False, reasons=(reason("patron_unknown", patron=patron_barcode),), copy=copy
            )
        ready = storage.ready_hold_of_copy(tx, copy.pk)
        case = CheckoutCase(
            tx, core.policy, now, patron, copy, storage.open_loan_of_copy(tx, copy.pk), ready
        )
        refusals = run_checks(CHECKOUT_CHECKS, case)
        record = storage.record_label(tx, copy.record_pk)
        if refusals:
            return CheckoutResult(
                ok=False, reasons=refusals, patron=patron, copy=copy, record=record
            )
        category = core.policy.category(patron.category)
        at = stamp(now)
        due = stamp(now + timedelta(days=category.loan_days))
        loan_id = storage.insert_loan(tx, copy, patron.pk, at, due, channel)
        storage.set_copy_status(tx, copy.pk, core.policy.circulation.on_loan_status)
        hold = ready or storage.open_hold(tx, patron.pk, copy.record_pk)
        fulfilled = None
        if hold is not None and hold.patron_pk == patron.pk:
            # R14: the trapped copy goes to its reader, and that checkout fulfils the hold;
            # borrowing another copy of a title one has on hold fulfils it too.
            storage.close_hold(tx, hold.id, HoldState.FULFILLED, at)
            fulfilled = hold.id
            if hold.state == HoldState.READY and hold.item_pk not in (None, copy.pk):
                # The reader took another copy; the one kept for them goes to the next hold.
                kept = storage.copy_by_pk(tx, hold.item_pk)
                trap_or_shelve(
                    core, tx, kept, storage.waiting_holds(tx, copy.record_pk), now, channel
                )
            storage.log_event(
                tx,
                at,
                "hold_fulfilled",
                channel,
                patron_pk=patron.pk,
                item_pk=copy.pk,
                record_pk=copy.record_pk,
                hold_id=hold.id,
            )
        storage.log_event(
            tx,
            at,
            "checkout",
            channel,
            patron_pk=patron.pk,
            item_pk=copy.pk,
            record_pk=copy.record_pk,
            loan_id=loan_id,
            due_at=due,
        )
        return CheckoutResult(
            ok=True,
            notes=(reason("hold_fulfilled"),) if fulfilled else (),
            patron=patron,
            copy=copy,
            record=record,
            due_at=due,
            fulfilled_hold_id=fulfilled,
        )

    return core.write(work)


def checkin(core: EngineCore, item_barcode: str, channel: Channel, offline: bool) -> CheckinResult:
    """Return a copy. At the desk, and for an offline return, a copy whose title has waiting
    holds is trapped for the oldest (R6); a self-check machine refuses it (R7). Whatever the
    answer, `to_desk` says when the copy must go to the service desk rather than the shelf."""

    def work(tx: Transaction, now: datetime) -> CheckinResult:
        copy = storage.lock_copy(tx, item_barcode)
        if copy is None:
            return CheckinResult(
                ok=False, reasons=(reason("item_unknown", item=item_barcode),), offline=offline
            )
        record = storage.record_label(tx, copy.record_pk)
        loan = storage.open_loan_of_copy(tx, copy.pk)
        queue = storage.waiting_holds(tx, copy.record_pk)
        refusals = run_checks(CHECKIN_CHECKS, CheckinCase(channel, offline, loan, queue))
        if loan is None:
            # Nothing to return: the copy is in the library already. Kept for a hold, or with
            # readers waiting for its title, it still goes to the desk (R6), not the shelf.
            held = bool(queue) or storage.ready_hold_of_copy(tx, copy.pk) is not None
            return CheckinResult(
                ok=False,
                reasons=refusals,
                copy=copy,
                record=record,
                offline=offline,
                to_desk=held,
            )
        patron = storage.patron_by_pk(tx, loan.patron_pk, lock=True)
        if refusals:
            return CheckinResult(  # R7: nothing changes; the reader takes it to the desk
                ok=False,
                reasons=refusals,
                patron=patron,
                copy=copy,
                record=record,
                due_at=loan.due_at,
                offline=offline,
                to_desk=True,
            )
        at = stamp(now)
        storage.close_loan(tx, loan.id, at)
        storage.log_event(
            tx,
            at,
            "checkin",
            channel,
            patron_pk=patron.pk,
            item_pk=copy.pk,
            record_pk=copy.record_pk,
            loan_id=loan.id,
            **({"offline": True} if offline else {}),
        )
        if ill_desk.copy_returned(tx, copy, loan, now):
            # A borrowed copy goes back to its lending library, not to a shelf or a hold.
            return CheckinResult(
                ok=True, patron=patron, copy=copy, record=record, offline=offline, to_desk=True
            )
        trapped = trap_or_shelve(core, tx, copy, queue, now, channel)  # R6
        if trapped is None:
            return CheckinResult(ok=True, patron=patron, copy=copy, record=record, offline=offline)
        hold, holder = trapped
        return CheckinResult(
            ok=True,
            notes=(
                reason(
                    "hold_trapped",
                    patron_name=holder.name,
                    desk=hold.pickup_desk,
                    deadline=hold.pickup_deadline,
                ),
            ),
            patron=patron,
            copy=copy,
            record=record,
            offline=offline,
            to_desk=True,
            trapped_for=holder,
            hold_id=hold.id,
            pickup_deadline=hold.pickup_deadline,
            pickup_desk=hold.pickup_desk,
        )

    return core.write(work)


def renew(
    core: EngineCore, patron_barcode: str, item_barcode: str, channel: Channel
) -> RenewResult:
    def work(tx: Transaction, now: datetime) -> RenewResult:
        found = storage.copy_by_barcode(tx, item_barcode)
        if found is None:
            return RenewResult(ok=False, reasons=(reason("item_unknown", item=item_barcode),))
        storage.lock_title(tx, found.record_pk)
        patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
        if patron is None:
            return RenewResult(ok=False, reasons=(reason("patron_unknown", patron=patron_barcode),))
        return _renew_one(core, tx, now, patron, found, channel)

    return core.write(work)


def renew_all(core: EngineCore, patron_barcode: str, channel: Channel) -> RenewAllResult:
    """Renew every loan of a reader; each loan is decided on its own, all in one transaction."""

    def work(tx: Transaction, now: datetime) -> RenewAllResult:
        found = storage.patron_by_barcode(tx, patron_barcode)
        if found is None:
            return RenewAllResult(
                ok=False, reasons=(reason("patron_unknown", patron=patron_barcode),)
            )
        loans = storage.open_loans_of_patron(tx, found.pk)
        for record_pk in sorted({loan.record_pk for loan in loans}):
            storage.lock_title(tx, record_pk)
        patron = storage.patron_by_pk(tx, found.pk, lock=True)
        return RenewAllResult(
            ok=True,
            renewals=tuple(
                _renew_one(core, tx, now, patron, storage.copy_by_pk(tx, loan.item_pk), channel)
                for loan in loans
            ),
        )

    return core.write(work)


def _renew_one(
    core: EngineCore, tx: Transaction, now: datetime, patron: Patron, copy: Copy, channel: Channel
) -> RenewResult:
    record = storage.record_label(tx, copy.record_pk)
    loan = storage.open_loan_of_copy(tx, copy.pk)
    if loan is None or loan.patron_pk != patron.pk:
        return RenewResult(
            ok=False, reasons=(reason("loan_unknown"),), patron=patron, copy=copy, record=record
        )
    waiting = storage.waiting_holds(tx, copy.record_pk)
    refusals = run_checks(
        RENEW_CHECKS, RenewCase(tx, core.policy, now, patron, copy, loan, waiting)
    )
    if refusals:
        return RenewResult(
            ok=False, reasons=refusals, patron=patron, copy=copy, record=record, due_at=loan.due_at
        )
    category = core.policy.category(patron.category)
    due = stamp(max(now, parse_stamp(loan.due_at)) + timedelta(days=category.loan_days))
    storage.renew_loan(tx, loan.id, due)
    storage.log_event(
        tx,
        stamp(now),
        "renew",
        channel,
        patron_pk=patron.pk,
        item_pk=copy.pk,
        record_pk=copy.record_pk,
        loan_id=loan.id,
        due_at=due,
    )
    return RenewResult(ok=True, patron=patron, copy=copy, record=record, due_at=due)
