"""Fees and payments: charge a reader, take a payment (in the library's currency only, never
more than is owed, once per transaction id), list a reader's fees."""

from __future__ import annotations

from datetime import datetime

from gateway.circulation import storage
from gateway.circulation.checks import (
    ADD_FEE_CHECKS,
    PAY_FEE_CHECKS,
    FeeCase,
    PaymentCase,
    run_checks,
)
from gateway.circulation.clock import stamp
from gateway.circulation.core import EngineCore
from gateway.circulation.money import format_money
from gateway.circulation.reasons import reason
from gateway.circulation.results import FeeResult, PaymentResult
from gateway.circulation.states import Channel
from gateway.circulation.storage import Fee, Patron
from gateway.circulation.views import FeeView
from gateway.store import Transaction


def add_fee(
    core: EngineCore,
    patron_barcode: str,
    amount: int,
    kind: str,
    description: str,
    currency: str | None,
    channel: Channel,
) -> FeeResult:
    """Charge a reader a fee of `amount` minor units (fen)."""
    code = currency or core.policy.circulation.currency

    def work(tx: Transaction, now: datetime) -> FeeResult:
        patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
        if patron is None:
            return FeeResult(ok=False, reasons=(reason("patron_unknown", patron=patron_barcode),))
        refusals = run_checks(ADD_FEE_CHECKS, FeeCase(kind, amount))
        if refusals:
            return FeeResult(ok=False, reasons=refusals, patron=patron)
        at = stamp(now)
        fee_id = storage.insert_fee(tx, patron.pk, kind, amount, code, description, at)
        balance = storage.fees_owed(tx, patron.pk)
        storage.log_event(
            tx,
            at,
            "fee_added",
            channel,
            patron_pk=patron.pk,
            fee_id=fee_id,
            kind=kind,
            amount=amount,
            currency=code,
            description=description,
        )
        owed = format_money(balance, core.policy.circulation.currency)
        return FeeResult(
            ok=True,
            notes=(reason("fee_added", amount=format_money(amount, code), balance=owed),),
            patron=patron,
            fee_id=fee_id,
            balance=balance,
        )

    return core.write(work)


def pay_fee(
    core: EngineCore,
    patron_barcode: str,
    amount: int,
    *,
    currency: str | None,
    fee_id: int | None,
    payment_type: str,
    transaction_id: str,
    channel: Channel,
) -> PaymentResult:
    """Apply a payment to one fee, or to the open fees oldest first. A payment whose
    `transaction_id` the reader already used is not applied again: the answer is the first
    one's (ok, with a note), so a self-check machine that resends after a lost reply cannot
    charge twice."""
    money = core.policy.circulation.currency

    def work(tx: Transaction, now: datetime) -> PaymentResult:
        patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
        if patron is None:
            return PaymentResult(
                ok=False, reasons=(reason("patron_unknown", patron=patron_barcode),)
            )
        earlier = (
            storage.payment_by_transaction(tx, patron.pk, transaction_id)
            if transaction_id
            else None
        )
        owed = storage.fees_owed(tx, patron.pk)
        targets = _fees_to_pay(tx, patron, fee_id)
        case = PaymentCase(
            core.policy,
            amount,
            currency,
            fee_id,
            targets,
            transaction_id,
            earlier.amount if earlier is not None else None,
        )
        refusals = run_checks(PAY_FEE_CHECKS, case)
        if refusals:
            return PaymentResult(ok=False, reasons=refusals, patron=patron, balance=owed)
        if earlier is not None:
            return PaymentResult(
                ok=True,
                notes=(reason("payment_already_recorded", transaction=transaction_id),),
                patron=patron,
                fee_id=earlier.fee_id,
                amount_paid=earlier.amount,
                balance=owed,
            )
        assert targets
        at = stamp(now)
        applied: list[dict[str, int]] = []
        left = amount
        for fee in targets:
            if left == 0:
                break
            share = min(left, fee.outstanding)
            storage.insert_fee_payment(
                tx,
                fee.id,
                patron.pk,
                share,
                at,
                payment_type,
                transaction_id,
                len(applied),
                channel,
            )
            if share == fee.outstanding:
                storage.close_fee(tx, fee.id, at)
            applied.append({"fee_id": fee.id, "amount": share})
            left -= share
        balance = owed - amount
        storage.log_event(
            tx,
            at,
            "fee_paid",
            channel,
            patron_pk=patron.pk,
            amount=amount,
            applied=applied,
            payment_type=payment_type,
            transaction_id=transaction_id,
            balance=balance,
        )
        return PaymentResult(
            ok=True,
            notes=(
                reason(
                    "fee_paid",
                    amount=format_money(amount, money),
                    balance=format_money(balance, money),
                ),
            ),
            patron=patron,
            fee_id=applied[0]["fee_id"],
            amount_paid=amount,
            balance=balance,
        )

    return core.write(work)


def fees_of(core: EngineCore, patron_barcode: str) -> list[FeeView]:
    """Every fee of a reader, open and paid, oldest first; [] for an unknown reader."""
    with core.store.read() as tx:
        patron = storage.patron_by_barcode(tx, patron_barcode)
        if patron is None:
            return []
        return [FeeView.of(fee) for fee in storage.fees_of_patron(tx, patron.pk)]


def _fees_to_pay(tx: Transaction, patron: Patron, fee_id: int | None) -> list[Fee] | None:
    """The open fees a payment goes to, oldest first; None when `fee_id` is not one of the
    reader's fees (an unknown fee, or someone else's)."""
    if fee_id is None:
        return storage.fees_of_patron(tx, patron.pk, open_only=True)
    fee = next((f for f in storage.fees_of_patron(tx, patron.pk) if f.id == fee_id), None)
    if fee is None:
        return None
    return [fee] if fee.closed_at is None and fee.outstanding > 0 else []
