"""Copies and titles leaving the catalogue (`libgate items delete`, `libgate records delete`):
whether circulation lets them go, and what a forced deletion does to loans and holds.

The catalogue asks, in its own transaction, before it deletes anything; the engine locks what
it reads (title, then copy, as every action does) and answers per copy and title:

- a copy on loan, a copy on the hold shelf (trapped, R6) or a copy of a title with waiting
  holds is refused with its reason; `force` deletes it anyway, and then
  - its open loan is ended (returned now, in the audit log as `loan_ended_withdrawn`);
  - the hold it was trapped for is cancelled and the reader told (R12, R13);
  - a title deleted, or left with no circulating copy, accepts no holds (R1): its waiting
    holds are cancelled and their readers told (R13);
- a copy or title an interlibrary loan request names (any state: its history names it, I6)
  is refused even with `force`.

A refused copy keeps its whole title: a title is deleted with all its copies or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.circulation import storage
from gateway.circulation.clock import stamp
from gateway.circulation.core import EngineCore
from gateway.circulation.notices import queue_notice
from gateway.circulation.reasons import Reason, reason
from gateway.circulation.states import Channel, HoldState
from gateway.circulation.storage import Copy
from gateway.store import Transaction

FORCIBLE = frozenset({"withdraw_on_loan", "withdraw_trapped", "withdraw_title_held"})


@dataclass
class Withdrawal:
    """What circulation says about deleting some copies and titles."""

    copies: list[Copy] = field(default_factory=list)  # may go (their effects applied if forced)
    refused_copies: dict[int, tuple[Reason, ...]] = field(default_factory=dict)  # copy pk →
    refused_titles: dict[int, tuple[Reason, ...]] = field(default_factory=dict)  # record pk →
    effects: list[Reason] = field(default_factory=list)  # what a forced deletion did


def withdraw(
    core: EngineCore,
    tx: Transaction,
    now: datetime,
    *,
    item_pks: Sequence[int] = (),
    record_pks: Sequence[int] = (),
    force: bool = False,
    channel: Channel = Channel.DESK,
) -> Withdrawal:
    """Decide (and, with `force`, prepare) the deletion of these copies and of these whole
    titles with all their copies, in the caller's transaction. The caller deletes
    `Withdrawal.copies` (and the titles not refused)."""
    result = Withdrawal()
    titles = sorted(set(record_pks))
    # The engine's lock order, as a checkout's: every title first (sorted), then the copies;
    # a delete that locked a copy before its title could deadlock with a kiosk on PostgreSQL.
    loose = [storage.copy_by_pk(tx, pk) for pk in item_pks]  # read only, to know their titles
    for record_pk in sorted(set(titles) | {c.record_pk for c in loose}):
        storage.lock_title(tx, record_pk)
    wanted: dict[int, Copy] = {}
    for record_pk in titles:
        for copy in storage.copies_of(tx, record_pk, lock=True):
            wanted[copy.pk] = copy
    for item_pk in item_pks:
        if item_pk not in wanted:
            wanted[item_pk] = storage.copy_by_pk(tx, item_pk, lock=True)
    ill = storage.ill_uses(tx, list(wanted), titles)
    for copy in wanted.values():
        reasons = _copy_reasons(tx, copy, ill)
        if any(r.code not in FORCIBLE for r in reasons) or (reasons and not force):
            result.refused_copies[copy.pk] = reasons
    for record_pk in titles:
        reasons = _title_reasons(tx, record_pk, ill)
        copies_refused = [
            r
            for c in wanted.values()
            if c.record_pk == record_pk
            for r in result.refused_copies.get(c.pk, ())
        ]
        if (
            copies_refused
            or any(r.code not in FORCIBLE for r in reasons)
            or (reasons and not force)
        ):
            result.refused_titles[record_pk] = tuple(reasons) + tuple(copies_refused)
    result.copies = [
        c
        for c in wanted.values()
        if c.pk not in result.refused_copies and c.record_pk not in result.refused_titles
    ]
    if force:
        _apply_forced(core, tx, now, result, titles, channel)
    return result


def _copy_reasons(tx: Transaction, copy: Copy, ill: list[storage.IllUse]) -> tuple[Reason, ...]:
    reasons: list[Reason] = []
    loan = storage.open_loan_of_copy(tx, copy.pk)
    if loan is not None:
        borrower = storage.patron_by_pk(tx, loan.patron_pk)
        reasons.append(
            reason("withdraw_on_loan", item=copy.barcode, patron=borrower.barcode, due=loan.due_at)
        )
    ready = storage.ready_hold_of_copy(tx, copy.pk)
    if ready is not None:
        holder = storage.patron_by_pk(tx, ready.patron_pk)
        reasons.append(reason("withdraw_trapped", item=copy.barcode, patron=holder.barcode))
    waiting = storage.waiting_holds(tx, copy.record_pk)
    if waiting:
        title = storage.record_label(tx, copy.record_pk).title
        reasons.append(reason("withdraw_title_held", title=title, count=len(waiting)))
    for use in ill:
        if use.item_pk == copy.pk:
            reasons.append(
                reason(
                    "withdraw_in_ill",
                    what=f"copy {copy.barcode}",
                    number=use.number or "-",
                    state=use.state,
                )
            )
    return tuple(reasons)


def _title_reasons(
    tx: Transaction, record_pk: int, ill: list[storage.IllUse]
) -> tuple[Reason, ...]:
    reasons: list[Reason] = []
    label = storage.record_label(tx, record_pk)
    waiting = storage.waiting_holds(tx, record_pk)
    if waiting:
        reasons.append(reason("withdraw_title_held", title=label.title, count=len(waiting)))
    for use in ill:
        if use.record_pk == record_pk and use.item_pk is None:
            reasons.append(
                reason(
                    "withdraw_in_ill",
                    what=f"record {label.record_id}",
                    number=use.number or "-",
                    state=use.state,
                )
            )
    return tuple(reasons)


def _apply_forced(
    core: EngineCore,
    tx: Transaction,
    now: datetime,
    result: Withdrawal,
    titles: list[int],
    channel: Channel,
) -> None:
    """End the loans and settle the holds of what is about to be deleted."""
    at = stamp(now)
    language = core.policy.circulation.language
    on_shelf = core.policy.circulation.on_shelf_status
    going = {c.pk for c in result.copies}
    for copy in result.copies:
        loan = storage.open_loan_of_copy(tx, copy.pk)
        if loan is not None:
            storage.close_loan(tx, loan.id, at)
            # Back on the shelf, as a checkin leaves it: the copy the batch keeps (and an
            # undo brings back) must not say "on loan" with its loan ended.
            storage.set_copy_status(tx, copy.pk, on_shelf)
            borrower = storage.patron_by_pk(tx, loan.patron_pk)
            storage.log_event(
                tx,
                at,
                "loan_ended_withdrawn",
                channel,
                patron_pk=borrower.pk,
                item_pk=copy.pk,
                record_pk=copy.record_pk,
                loan_id=loan.id,
                barcode=copy.barcode,
            )
            result.effects.append(
                reason("withdrawn_loan_ended", item=copy.barcode, patron=borrower.barcode)
            )
        ready = storage.ready_hold_of_copy(tx, copy.pk)
        if ready is not None:
            title = storage.record_label(tx, copy.record_pk).title
            holder = _cancel(tx, ready, at, language, title, channel, "copy withdrawn")
            storage.set_copy_status(tx, copy.pk, on_shelf)  # trapped for nobody now
            result.effects.append(
                reason(
                    "withdrawn_trapped_cancelled",
                    item=copy.barcode,
                    patron=holder.barcode,
                    title=title,
                )
            )
    deleted_titles = [t for t in titles if t not in result.refused_titles]
    affected = set(deleted_titles) | {c.record_pk for c in result.copies}
    for record_pk in sorted(affected):
        if record_pk not in deleted_titles:
            remaining = [c for c in storage.copies_of(tx, record_pk) if c.pk not in going]
            if any(core.policy.availability.circulates(c.item_type) for c in remaining):
                continue  # R1: the title still has a circulating copy; its holds wait on
        title = storage.record_label(tx, record_pk).title
        for hold in storage.waiting_holds(tx, record_pk):
            holder = _cancel(tx, hold, at, language, title, channel, "title withdrawn")
            result.effects.append(
                reason("withdrawn_holds_cancelled", title=title, patron=holder.barcode)
            )


def _cancel(
    tx: Transaction,
    hold: storage.Hold,
    at: str,
    language: str,
    title: str,
    channel: Channel,
    why: str,
) -> storage.Patron:
    """Cancel a hold whose copy or title is deleted, and tell its reader (R12, R13)."""
    holder = storage.patron_by_pk(tx, hold.patron_pk)
    storage.close_hold(tx, hold.id, HoldState.CANCELLED, at)
    storage.log_event(
        tx,
        at,
        "hold_cancelled",
        channel,
        patron_pk=holder.pk,
        record_pk=hold.record_pk,
        hold_id=hold.id,
        was=hold.state,
        why=why,
    )
    queue_notice(tx, holder, "hold_cancelled", at, language, title=title)
    return holder


def circulated(
    tx: Transaction, item_pks: list[int], record_pks: list[int]
) -> tuple[dict[int, str], dict[int, str]]:
    """Which of these copies and titles have circulated: a loan, hold, ILL request or audit
    event (a fee, a note from a self-check machine) names them. Undoing a load keeps those:
    the library's history of them must not point at nothing. Copy pk → what, title pk → what."""
    return storage.circulation_history(tx, item_pks, record_pks)
