"""Holds: place (R1-R4, R15), cancel (R12), look one up, and trap a returned copy for the
oldest waiting hold (R6, R9, R10) or put it back on the shelf."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from gateway.circulation import storage
from gateway.circulation.checks import (
    CANCEL_HOLD_CHECKS,
    PLACE_HOLD_CHECKS,
    CancelCase,
    HoldCase,
    run_checks,
)
from gateway.circulation.clock import stamp
from gateway.circulation.core import EngineCore
from gateway.circulation.notices import queue_notice
from gateway.circulation.reasons import Reason, reason
from gateway.circulation.results import CancelResult, HoldResult
from gateway.circulation.states import Channel, HoldState
from gateway.circulation.storage import Copy, Hold, Patron, RecordLabel
from gateway.store import Transaction

Title = tuple[str, str]  # (database, record id)


def place_hold(
    core: EngineCore,
    patron_barcode: str,
    record: Title | None,
    item_barcode: str | None,
    channel: Channel,
) -> HoldResult:
    """A title-level hold, on a record or on the title of a copy."""

    def work(tx: Transaction, now: datetime) -> HoldResult:
        parties = _parties(tx, patron_barcode, record, item_barcode)
        if isinstance(parties, _Missing):
            return HoldResult(ok=False, reasons=(parties.reason,), record=parties.record)
        record_pk, copies, patron, label = parties
        refusals = run_checks(
            PLACE_HOLD_CHECKS, HoldCase(tx, core.policy, now, patron, record_pk, copies)
        )
        if refusals:
            return HoldResult(ok=False, reasons=refusals, patron=patron, record=label)
        at = stamp(now)
        expires = stamp(now + core.policy.request_period)  # R8
        hold_id = storage.insert_hold(tx, patron.pk, record_pk, at, expires, channel)
        position = len(storage.waiting_holds(tx, record_pk))
        storage.log_event(
            tx,
            at,
            "hold_placed",
            channel,
            patron_pk=patron.pk,
            record_pk=record_pk,
            hold_id=hold_id,
            expires_at=expires,
        )
        queue_notice(
            tx,
            patron,
            "hold_placed",
            at,
            core.policy.circulation.language,
            title=label.title,
            expires=expires,
        )
        return HoldResult(
            ok=True,
            patron=patron,
            record=label,
            hold_id=hold_id,
            hold_state=HoldState.WAITING,
            queue_position=position,
            expires_at=expires,
            pickup_desk=_likely_desk(core, copies),
        )

    return core.write(work)


def cancel_hold(
    core: EngineCore,
    patron_barcode: str,
    record: Title | None,
    item_barcode: str | None,
    channel: Channel,
) -> CancelResult:
    """R12: cancel any time before checkout; a ready hold's copy goes to the next hold."""

    def work(tx: Transaction, now: datetime) -> CancelResult:
        parties = _parties(tx, patron_barcode, record, item_barcode)
        if isinstance(parties, _Missing):
            return CancelResult(ok=False, reasons=(parties.reason,), record=parties.record)
        record_pk, _copies, patron, label = parties
        hold = storage.open_hold(tx, patron.pk, record_pk)
        refusals = run_checks(CANCEL_HOLD_CHECKS, CancelCase(hold))
        if refusals or hold is None:
            return CancelResult(ok=False, reasons=refusals, patron=patron, record=label)
        at = stamp(now)
        storage.close_hold(tx, hold.id, HoldState.CANCELLED, at)
        storage.log_event(
            tx,
            at,
            "hold_cancelled",
            channel,
            patron_pk=patron.pk,
            record_pk=record_pk,
            hold_id=hold.id,
            was=hold.state,
        )
        queue_notice(
            tx, patron, "hold_cancelled", at, core.policy.circulation.language, title=label.title
        )
        if hold.state == HoldState.READY and hold.item_pk is not None:
            # R12 with R9's re-trap: cancelling a ready hold is not a no-show; its copy goes on.
            copy = storage.copy_by_pk(tx, hold.item_pk)
            trap_or_shelve(core, tx, copy, storage.waiting_holds(tx, record_pk), now, channel)
        return CancelResult(ok=True, patron=patron, record=label, hold_id=hold.id)

    return core.write(work)


def hold_status(
    core: EngineCore, patron_barcode: str, record: Title | None, item_barcode: str | None
) -> HoldResult:
    """The reader's open hold on a title as it stands (SIP2 15 mode `*`: nothing of a hold may
    be changed, since the pickup desk follows the copy, R10); refused when there is none."""
    with core.store.read() as tx:
        record_pk = _resolve_title(tx, record, item_barcode)
        if isinstance(record_pk, _Missing):
            return HoldResult(ok=False, reasons=(record_pk.reason,))
        label = storage.record_label(tx, record_pk)
        patron = storage.patron_by_barcode(tx, patron_barcode)
        if patron is None:
            return HoldResult(
                ok=False, reasons=(reason("patron_unknown", patron=patron_barcode),), record=label
            )
        hold = storage.open_hold(tx, patron.pk, record_pk)
        refusals = run_checks(CANCEL_HOLD_CHECKS, CancelCase(hold))  # R12: an open hold
        if refusals or hold is None:
            return HoldResult(ok=False, reasons=refusals, patron=patron, record=label)
        return HoldResult(
            ok=True,
            patron=patron,
            record=label,
            hold_id=hold.id,
            hold_state=hold.state,
            queue_position=queue_position(tx, hold),
            expires_at=hold.expires_at,
            pickup_desk=hold.pickup_desk,
            pickup_deadline=hold.pickup_deadline,
        )


def queue_position(tx: Transaction, hold: Hold) -> int | None:
    """A waiting hold's place in its title's queue, 1 = next served (R6: first come, first
    served); None for a hold no longer waiting."""
    if hold.state != HoldState.WAITING:
        return None
    return [h.id for h in storage.waiting_holds(tx, hold.record_pk)].index(hold.id) + 1


def trap_or_shelve(
    core: EngineCore,
    tx: Transaction,
    copy: Copy,
    queue: list[Hold],
    now: datetime,
    channel: Channel,
) -> tuple[Hold, Patron] | None:
    """R6 / R9: give the copy to the oldest waiting hold, or put it back on the shelf."""
    policy = core.policy
    at = stamp(now)
    if not queue or not policy.availability.circulates(copy.item_type):
        storage.set_copy_status(tx, copy.pk, policy.circulation.on_shelf_status)
        return None
    hold = queue[0]  # R6: first come, first served
    deadline = stamp(now + policy.pickup_period)  # R9
    desk = policy.desk_for(copy.location)  # R10
    storage.make_ready(tx, hold.id, copy.pk, at, deadline, desk)
    storage.set_copy_status(tx, copy.pk, policy.circulation.on_hold_shelf_status)
    holder = storage.patron_by_pk(tx, hold.patron_pk)
    title = storage.record_label(tx, copy.record_pk).title
    storage.log_event(
        tx,
        at,
        "hold_trapped",
        channel,
        patron_pk=holder.pk,
        item_pk=copy.pk,
        record_pk=copy.record_pk,
        hold_id=hold.id,
        pickup_deadline=deadline,
        pickup_desk=desk,
    )
    queue_notice(  # R13: the arrival notice
        tx,
        holder,
        "hold_ready",
        at,
        policy.circulation.language,
        title=title,
        deadline=deadline,
        desk=desk,
    )
    ready = replace(
        hold,
        state=HoldState.READY,
        item_pk=copy.pk,
        ready_at=at,
        pickup_deadline=deadline,
        pickup_desk=desk,
    )
    return ready, holder


class _Missing:
    """A party of a hold action that does not exist, and how to say so."""

    def __init__(self, why: Reason, record: RecordLabel | None = None) -> None:
        self.reason = why
        self.record = record


def _parties(
    tx: Transaction,
    patron_barcode: str,
    record: Title | None,
    item_barcode: str | None,
) -> tuple[int, list[Copy], Patron, RecordLabel] | _Missing:
    """The title, its copies and the reader of a hold action, locked in the engine's order
    (title, copies, reader); or what is missing."""
    record_pk = _resolve_title(tx, record, item_barcode)
    if isinstance(record_pk, _Missing):
        return record_pk
    storage.lock_title(tx, record_pk)
    copies = storage.copies_of(tx, record_pk, lock=True)
    patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
    label = storage.record_label(tx, record_pk)
    if patron is None:
        return _Missing(reason("patron_unknown", patron=patron_barcode), label)
    return record_pk, copies, patron, label


def _resolve_title(
    tx: Transaction, record: Title | None, item_barcode: str | None
) -> int | _Missing:
    if item_barcode is not None:
        copy = storage.copy_by_barcode(tx, item_barcode)
        if copy is None:
            return _Missing(reason("item_unknown", item=item_barcode))
        return copy.record_pk
    if record is None:
        return _Missing(reason("record_unknown", record=""))
    database, record_id = record
    record_pk = storage.record_pk_by_id(tx, database, record_id)
    if record_pk is None:
        return _Missing(reason("record_unknown", record=f"{database}/{record_id}"))
    return record_pk


def _likely_desk(core: EngineCore, copies: list[Copy]) -> str | None:
    circulating = [c for c in copies if core.policy.availability.circulates(c.item_type)]
    return core.policy.desk_for(circulating[0].location) if circulating else None
