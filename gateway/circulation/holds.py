"""Holds: place (R1-R4, R15) or preview placing one, cancel (R12), look one up, and trap a
returned copy for the oldest waiting hold (R6, R9, R10) or put it back on the shelf."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
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
        decision = _hold_decision(core, tx, now, patron_barcode, record, item_barcode, lock=True)
        if isinstance(decision, _Missing):
            return HoldResult(ok=False, reasons=(decision.reason,), record=decision.record)
        case, label = decision.case, decision.label
        patron, record_pk = case.patron, case.record_pk
        if decision.refusals:
            return HoldResult(ok=False, reasons=decision.refusals, patron=patron, record=label)
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
            pickup_desk=likely_desk(core, case.copies),
        )

    return core.write(work)


def hold_preview(
    core: EngineCore,
    patron_barcode: str,
    record: Title,
    channel: Channel,
) -> HoldResult:
    """What place_hold would answer now, decided by the same checks on the same case, in a
    read transaction: nothing is locked, written or sent. For a confirmation step (the
    portal's "Confirm hold"), it adds what the hold would get: its place in the queue, the
    desk it would likely be collected at (R10) and when it would expire (R8). The channel
    decides no hold check; it is taken so a preview is asked exactly as the hold would be."""
    del channel  # no check of PLACE_HOLD_CHECKS depends on it (see place_hold)
    now = core.clock.now()
    with core.store.read() as tx:
        decision = _hold_decision(core, tx, now, patron_barcode, record, None, lock=False)
        if isinstance(decision, _Missing):
            return HoldResult(ok=False, reasons=(decision.reason,), record=decision.record)
        case = decision.case
        return HoldResult(
            ok=not decision.refusals,
            reasons=decision.refusals,
            patron=case.patron,
            record=decision.label,
            queue_position=len(storage.waiting_holds(tx, case.record_pk)) + 1,
            expires_at=stamp(now + core.policy.request_period),  # R8
            pickup_desk=likely_desk(core, case.copies),  # R10
        )


def cancel_hold(
    core: EngineCore,
    patron_barcode: str,
    record: Title | None,
    item_barcode: str | None,
    hold_id: int | None,
    channel: Channel,
) -> CancelResult:
    """R12: cancel any time before checkout; a ready hold's copy goes to the next hold.

    The hold is the reader's open hold on a title (a record, or the title of a copy), or the
    hold `hold_id`, which must be an open hold of this reader: any other id (another
    reader's hold, a closed one, none) is refused as no such hold, and nothing changes."""
    if hold_id is not None and (record is not None or item_barcode is not None):
        raise ValueError("cancel_hold: name the hold by its id or by its title, not both")

    def work(tx: Transaction, now: datetime) -> CancelResult:
        if hold_id is not None:
            record_pk = _title_of_hold(tx, hold_id)
        else:
            record_pk = _resolve_title(tx, record, item_barcode)
        parties = _parties(tx, patron_barcode, record_pk, lock=True)
        if isinstance(parties, _Missing):
            # By id, the title of a hold that may be another reader's is not told.
            shown = parties.record if hold_id is None else None
            return CancelResult(ok=False, reasons=(parties.reason,), record=shown)
        record_pk, _copies, patron, label = parties
        hold = storage.open_hold(tx, patron.pk, record_pk)
        if hold is not None and hold_id is not None and hold.id != hold_id:
            hold = None  # the reader's open hold on that title is another one
        refusals = run_checks(CANCEL_HOLD_CHECKS, CancelCase(hold))
        if refusals or hold is None:
            shown = label if hold_id is None else None
            return CancelResult(ok=False, reasons=refusals, patron=patron, record=shown)
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


@dataclass(frozen=True)
class _HoldDecision:
    """What placing a hold decides on: the case its checks saw and every refusal they found."""

    case: HoldCase
    label: RecordLabel
    refusals: tuple[Reason, ...]


def _hold_decision(
    core: EngineCore,
    tx: Transaction,
    now: datetime,
    patron_barcode: str,
    record: Title | None,
    item_barcode: str | None,
    *,
    lock: bool,
) -> _HoldDecision | _Missing:
    """The one way a hold is decided, for place_hold (locked, then written) and hold_preview
    (read only), so the two can never check different things."""
    record_pk = _resolve_title(tx, record, item_barcode)
    parties = _parties(tx, patron_barcode, record_pk, lock=lock)
    if isinstance(parties, _Missing):
        return parties
    record_pk, copies, patron, label = parties
    case = HoldCase(tx, core.policy, now, patron, record_pk, copies)
    return _HoldDecision(case, label, run_checks(PLACE_HOLD_CHECKS, case))


def _parties(
    tx: Transaction,
    patron_barcode: str,
    record_pk: int | _Missing,
    *,
    lock: bool,
) -> tuple[int, list[Copy], Patron, RecordLabel] | _Missing:
    """The title, its copies and the reader of a hold action, locked (when `lock`) in the
    engine's order (title, copies, reader); or what is missing."""
    if isinstance(record_pk, _Missing):
        return record_pk
    if lock:
        storage.lock_title(tx, record_pk)
    copies = storage.copies_of(tx, record_pk, lock=lock)
    patron = storage.patron_by_barcode(tx, patron_barcode, lock=lock)
    label = storage.record_label(tx, record_pk)
    if patron is None:
        return _Missing(reason("patron_unknown", patron=patron_barcode), label)
    return record_pk, copies, patron, label


def _title_of_hold(tx: Transaction, hold_id: int) -> int | _Missing:
    """The title of hold `hold_id`, read before any lock so the title is locked first; whose
    hold it is, and whether it is still open, is decided under the locks."""
    hold = storage.hold_by_id(tx, hold_id)
    if hold is None:
        return _Missing(reason("hold_unknown"))  # R12: no such hold
    return hold.record_pk


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


def likely_desk(core: EngineCore, copies: Sequence[Copy]) -> str | None:
    """R10 for a hold still waiting: the desk of its title's first circulating copy."""
    circulating = [c for c in copies if core.policy.availability.circulates(c.item_type)]
    return core.policy.desk_for(circulating[0].location) if circulating else None


def pickup_desks(core: EngineCore, patron_barcode: str) -> dict[int, str]:
    """Each open hold of a reader and the desk it will be (ready: is) picked up at (R10)."""
    with core.store.read() as tx:
        patron = storage.patron_by_barcode(tx, patron_barcode)
        if patron is None:
            return {}
        desks = {}
        for hold in storage.open_holds_of_patron(tx, patron.pk):
            desk = hold.pickup_desk or likely_desk(core, storage.copies_of(tx, hold.record_pk))
            if desk:
                desks[hold.id] = desk
        return desks
