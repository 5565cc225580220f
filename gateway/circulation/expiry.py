"""Hold deadlines: a waiting hold too old expires (R8), a ready hold not collected is a no-show
(R9) and passes its copy on, and too many no-shows suspend a reader from holds (R11).

Several runs may work at once (`libgate holds process` by cron while `serve` runs its own
schedule, or several `serve` processes on one PostgreSQL). Each deadline is one unit of work
in its own transaction; the run that takes the title's lock first applies it, and any other
finds, under the same lock, that the hold has changed and moves on to the next deadline. So
nobody fails part-way and the result is the one a single run gives."""

from __future__ import annotations

from datetime import datetime

from gateway.circulation import storage
from gateway.circulation.clock import parse_stamp, stamp
from gateway.circulation.core import EngineCore
from gateway.circulation.holds import trap_or_shelve
from gateway.circulation.notices import queue_notice
from gateway.circulation.results import ExpiryReport
from gateway.circulation.states import Channel, HoldState
from gateway.circulation.storage import Hold
from gateway.store import Transaction


def process_expiry(core: EngineCore, as_of: datetime | None) -> ExpiryReport:
    """Apply every hold deadline up to `as_of`, one event at a time in the order they fell
    due, each at its own time, so that a late run ends where timely runs would have.
    Running it again changes nothing."""
    until = as_of or core.clock.now()
    report = ExpiryReport()
    while core.write(lambda tx, _now: _next_expiry(core, tx, until, report)):
        pass
    return report


def _next_expiry(core: EngineCore, tx: Transaction, as_of: datetime, report: ExpiryReport) -> bool:
    limit = stamp(as_of)
    waiting = storage.due_waiting_expiry(tx, limit)
    ready = storage.due_pickup_deadline(tx, limit)
    if waiting is None and ready is None:
        return False
    due: Hold | None = ready
    if ready is None or (
        waiting is not None and waiting.expires_at <= (ready.pickup_deadline or "")
    ):
        due = waiting
    assert due is not None
    # The hold was read without a lock; every decision about a title's holds takes the title's
    # lock first, so the hold as it is once we hold that lock is the one that counts. If
    # another run (or a checkout, a cancellation) got to it first, this deadline is theirs:
    # look again rather than apply it twice.
    storage.lock_title(tx, due.record_pk)
    if storage.hold_by_id(tx, due.id) != due:
        return True
    if due is waiting:
        _expire_request(core, tx, due, report)
    else:
        _no_show(core, tx, due, report)
    return True


def _expire_request(core: EngineCore, tx: Transaction, hold: Hold, report: ExpiryReport) -> None:
    at = hold.expires_at
    storage.close_hold(tx, hold.id, HoldState.EXPIRED, at)  # R8
    patron = storage.patron_by_pk(tx, hold.patron_pk)
    title = storage.record_label(tx, hold.record_pk).title
    storage.log_event(
        tx,
        at,
        "hold_expired",
        Channel.SYSTEM,
        patron_pk=patron.pk,
        record_pk=hold.record_pk,
        hold_id=hold.id,
    )
    queue_notice(tx, patron, "hold_expired", at, core.policy.circulation.language, title=title)
    report.expired += 1
    report.events.append(f"R8 hold {hold.id} expired at {at}")


def _no_show(core: EngineCore, tx: Transaction, hold: Hold, report: ExpiryReport) -> None:
    assert hold.pickup_deadline is not None and hold.item_pk is not None
    policy = core.policy
    at = hold.pickup_deadline
    moment = parse_stamp(at)
    storage.close_hold(tx, hold.id, HoldState.NO_SHOW, at)  # R9
    patron = storage.patron_by_pk(tx, hold.patron_pk, lock=True)
    title = storage.record_label(tx, hold.record_pk).title
    storage.log_event(
        tx,
        at,
        "hold_no_show",
        Channel.SYSTEM,
        patron_pk=patron.pk,
        item_pk=hold.item_pk,
        record_pk=hold.record_pk,
        hold_id=hold.id,
    )
    queue_notice(tx, patron, "hold_no_show", at, policy.circulation.language, title=title)
    report.no_shows += 1
    report.events.append(f"R9 hold {hold.id} not collected by {at}")
    count = patron.no_show_count + 1
    if count > policy.holds.no_show_limit:  # R11
        until = stamp(moment + policy.suspension_period)
        storage.set_no_shows(tx, patron.pk, 0, until)
        storage.log_event(
            tx, at, "holds_suspended", Channel.SYSTEM, patron_pk=patron.pk, until=until
        )
        queue_notice(
            tx,
            patron,
            "hold_suspended",
            at,
            policy.circulation.language,
            until=until[:10],
            limit=str(policy.holds.no_show_limit),
        )
        report.suspended += 1
        report.events.append(f"R11 reader {patron.barcode} suspended until {until}")
    else:
        storage.set_no_shows(tx, patron.pk, count, patron.hold_suspended_until)
    copy = storage.copy_by_pk(tx, hold.item_pk)
    queue = storage.waiting_holds(tx, hold.record_pk)
    if trap_or_shelve(core, tx, copy, queue, moment, Channel.SYSTEM):  # R9: the next hold
        report.trapped += 1
