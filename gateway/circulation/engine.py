"""The circulation engine: checkout, checkin, renew, renew all, place and cancel holds, trap,
pickup, expiry (R8, R9, R11), availability, fees and payments, blocking a reader, and the reader
and copy views a self-check machine shows. Every channel calls these; none decides a rule.

Each action opens one write transaction, locks what its decision reads (title, then copy,
then patron), runs its checks — each returns the reasons it refuses, with the rule it enforces
— and either changes nothing (refused) or applies the change, its audit event and its notices
together. Time comes only from the injected clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

from gateway.circulation import storage
from gateway.circulation.availability import ShelfState
from gateway.circulation.clock import Clock, parse_stamp, stamp
from gateway.circulation.money import format_money
from gateway.circulation.notices import queue_notice
from gateway.circulation.pins import check_pin
from gateway.circulation.policy import Policy
from gateway.circulation.reasons import Reason, reason
from gateway.circulation.storage import Copy, Hold, Loan, Patron
from gateway.circulation.views import (
    FEE_KINDS,
    FeeView,
    HoldView,
    ItemView,
    LoanView,
    PatronSummary,
)
from gateway.store import Store, Transaction
from gateway.store.engine import IntegrityViolation

SELF_CHECK = "selfcheck"
DESK = "desk"
T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    """What an action did or why it did not. `ok` False means nothing changed."""

    ok: bool
    action: str
    reasons: tuple[Reason, ...] = ()
    patron: Patron | None = None
    copy: Copy | None = None
    record: tuple[str, str, str] | None = None  # database, record_id, title
    due_at: str | None = None
    hold_id: int | None = None
    hold_state: str | None = None
    queue_position: int | None = None
    pickup_deadline: str | None = None
    pickup_desk: str | None = None
    expires_at: str | None = None
    trapped_for: Patron | None = None  # checkin at the desk trapped the copy for this reader
    notes: tuple[Reason, ...] = ()  # facts to tell the operator (trap, fulfilment)
    fee_id: int | None = None  # add_fee: the new fee; pay_fee: the (first) fee paid
    amount_paid: int | None = None  # pay_fee: minor units applied by this payment
    balance: int | None = None  # add_fee, pay_fee: what the reader still owes after

    def message(self, language: str = "zh") -> str:
        return " ".join(r.message(language) for r in (self.reasons or self.notes))


@dataclass(frozen=True)
class CopyAvailability:
    barcode: str
    location: str
    call_number: str
    item_type: str
    status: str
    available: bool
    due_at: str | None
    on_hold_shelf: bool
    pickup_desk: str | None
    state: ShelfState  # what every view shows (在架可借, 在馆阅览, 借出, 预约到书, 不可借)


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


class Refused(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message("en"))
        self.outcome = outcome


class Engine:
    def __init__(self, store: Store, policy: Policy, clock: Clock) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock

    # --- plumbing ------------------------------------------------------------------------

    def _write(self, work: Callable[[Transaction, datetime], T]) -> T:
        """Run `work` in a write transaction; PostgreSQL deadlocks and serialisation
        failures are retried, and a constraint violation is a refusal, never half a change."""
        attempts = 0
        while True:
            attempts += 1
            try:
                with self.store.write() as tx:
                    return work(tx, self.clock.now())
            except IntegrityViolation:
                raise
            except Exception as error:  # noqa: BLE001 - only retryable engine errors loop
                if attempts < 5 and _retryable(error):
                    continue
                raise

    def _is_available(self, tx: Transaction, copy: Copy) -> bool:
        """R2's "available copy": circulating type, on the shelf, not trapped, not on loan."""
        return (
            self.policy.circulates(copy.item_type)
            and copy.status == self.policy.circulation.on_shelf_status
            and storage.open_loan_of_copy(tx, copy.pk) is None
            and storage.ready_hold_of_copy(tx, copy.pk) is None
        )

    def _suspended_until(self, patron: Patron, now: datetime) -> str | None:
        until = patron.hold_suspended_until
        return until if until and parse_stamp(until) > now else None

    # --- checkout --------------------------------------------------------------------------

    def checkout(self, patron_barcode: str, item_barcode: str, channel: str = DESK) -> Outcome:
        def work(tx: Transaction, now: datetime) -> Outcome:
            found = storage.copy_by_barcode(tx, item_barcode)
            if found is None:
                return Outcome(False, "checkout", (reason("item_unknown", item=item_barcode),))
            storage.lock_title(tx, found.record_pk)
            copy = storage.copy_by_barcode(tx, item_barcode, lock=True)
            assert copy is not None
            patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
            if patron is None:
                return Outcome(
                    False, "checkout", (reason("patron_unknown", patron=patron_barcode),), copy=copy
                )
            refusals = self._checkout_checks(tx, patron, copy)
            if refusals:
                return Outcome(
                    False,
                    "checkout",
                    tuple(refusals),
                    patron=patron,
                    copy=copy,
                    record=storage.record_label(tx, copy.record_pk),
                )
            category = self.policy.category(patron.category)
            at = stamp(now)
            due = stamp(now + _days(category.loan_days))
            loan_id = storage.insert_loan(tx, copy, patron.pk, at, due, channel)
            storage.set_copy_status(tx, copy.pk, self.policy.circulation.on_loan_status)
            notes = []
            hold = storage.ready_hold_of_copy(tx, copy.pk) or storage.open_hold(
                tx, patron.pk, copy.record_pk
            )
            hold_id = None
            if hold is not None and hold.patron_pk == patron.pk:
                # R14: the trapped copy goes to its reader, and that checkout fulfils the hold;
                # borrowing another copy of a title one has on hold fulfils it too.
                storage.close_hold(tx, hold.id, "fulfilled", at)
                hold_id = hold.id
                if hold.state == "ready" and hold.item_pk not in (None, copy.pk):
                    # The reader took another copy; the one kept for them goes to the next hold.
                    kept = storage.copy_by_pk(tx, hold.item_pk)  # type: ignore[arg-type]
                    self._trap_or_shelve(
                        tx, kept, storage.waiting_holds(tx, copy.record_pk), now, channel
                    )
                notes.append(reason("hold_fulfilled"))
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
            return Outcome(
                True,
                "checkout",
                patron=patron,
                copy=copy,
                due_at=due,
                record=storage.record_label(tx, copy.record_pk),
                hold_id=hold_id,
                hold_state="fulfilled" if hold_id else None,
                notes=tuple(notes),
            )

        return self._write(work)

    def _checkout_checks(self, tx: Transaction, patron: Patron, copy: Copy) -> list[Reason]:
        if patron.status != "active":
            return [reason("patron_blocked")]
        if not self.policy.circulates(copy.item_type):
            return [reason("item_not_circulating", item_type=copy.item_type or "-")]
        loan = storage.open_loan_of_copy(tx, copy.pk)
        if loan is not None:
            code = "item_on_loan_to_you" if loan.patron_pk == patron.pk else "item_on_loan"
            return [reason(code)]
        ready = storage.ready_hold_of_copy(tx, copy.pk)
        if ready is not None and ready.patron_pk != patron.pk:
            return [reason("trapped_for_another")]  # R14
        if ready is None and copy.status != self.policy.circulation.on_shelf_status:
            return [reason("item_not_available", status=copy.status)]
        return self._borrowing_limits(tx, patron)

    def _borrowing_limits(self, tx: Transaction, patron: Patron) -> list[Reason]:
        """The reader's own limits on borrowing, whatever the copy: the category's max_loans,
        with `[circulation] overdue_limit` overdue loans, with `fee_limit` fees owed. Checkout
        and patron_summary ask this."""
        refusals = []
        category = self.policy.category(patron.category)
        loans = storage.open_loans_of_patron(tx, patron.pk)
        if len(loans) >= category.max_loans:
            refusals.append(reason("too_many_loans", count=len(loans), limit=category.max_loans))
        overdue_limit = self.policy.circulation.overdue_limit
        if overdue_limit > 0:
            now = stamp(self.clock.now())
            overdue = sum(1 for loan in loans if loan.due_at < now)
            if overdue >= overdue_limit:
                refusals.append(reason("too_many_overdue", count=overdue, limit=overdue_limit))
        limit = self.policy.circulation.fee_limit
        if limit > 0:
            owed = storage.fees_owed(tx, patron.pk)
            if owed >= limit:
                refusals.append(
                    reason("fees_exceed_limit", owed=self._money(owed), limit=self._money(limit))
                )
        return refusals

    def _money(self, amount: int) -> str:
        return format_money(amount, self.policy.circulation.currency)

    # --- checkin ---------------------------------------------------------------------------

    def checkin(
        self, item_barcode: str, channel: str = DESK, *, desk_trap: bool | None = None
    ) -> Outcome:
        """Return a copy. At a self-check machine (R7) a copy whose title has a waiting hold is
        refused; at the desk (R6) it is trapped for the oldest waiting hold."""
        trap_allowed = (channel != SELF_CHECK) if desk_trap is None else desk_trap

        def work(tx: Transaction, now: datetime) -> Outcome:
            found = storage.copy_by_barcode(tx, item_barcode)
            if found is None:
                return Outcome(False, "checkin", (reason("item_unknown", item=item_barcode),))
            storage.lock_title(tx, found.record_pk)
            copy = storage.copy_by_barcode(tx, item_barcode, lock=True)
            assert copy is not None
            record = storage.record_label(tx, copy.record_pk)
            loan = storage.open_loan_of_copy(tx, copy.pk)
            if loan is None:
                return Outcome(False, "checkin", (reason("not_on_loan"),), copy=copy, record=record)
            patron = storage.patron_by_pk(tx, loan.patron_pk, lock=True)
            queue = storage.waiting_holds(tx, copy.record_pk)
            if queue and not trap_allowed:
                return Outcome(
                    False,
                    "checkin",
                    (reason("selfcheck_return_held"),),
                    patron=patron,
                    copy=copy,
                    record=record,
                    due_at=loan.due_at,
                )  # R7: nothing changes
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
            )
            trapped = self._trap_or_shelve(tx, copy, queue, now, channel)
            notes = ()
            extra: dict[str, object] = {}
            if trapped is not None:
                hold, holder = trapped
                notes = (
                    reason(
                        "hold_trapped",
                        patron_name=holder.name,
                        desk=hold.pickup_desk,
                        deadline=hold.pickup_deadline,
                    ),
                )
                extra = {
                    "trapped_for": holder,
                    "hold_id": hold.id,
                    "hold_state": "ready",
                    "pickup_deadline": hold.pickup_deadline,
                    "pickup_desk": hold.pickup_desk,
                }
            return Outcome(
                True, "checkin", patron=patron, copy=copy, record=record, notes=notes, **extra
            )  # type: ignore[arg-type]

        return self._write(work)

    def _trap_or_shelve(
        self, tx: Transaction, copy: Copy, queue: list[Hold], now: datetime, channel: str
    ) -> tuple[Hold, Patron] | None:
        """R6 / R9: give the copy to the oldest waiting hold, or put it back on the shelf."""
        at = stamp(now)
        if not queue or not self.policy.circulates(copy.item_type):
            storage.set_copy_status(tx, copy.pk, self.policy.circulation.on_shelf_status)
            return None
        hold = queue[0]
        deadline = stamp(now + self.policy.pickup_period)
        desk = self.policy.desk_for(copy.location)  # R10
        storage.make_ready(tx, hold.id, copy.pk, at, deadline, desk)
        storage.set_copy_status(tx, copy.pk, self.policy.circulation.on_hold_shelf_status)
        holder = storage.patron_by_pk(tx, hold.patron_pk)
        title = storage.record_label(tx, copy.record_pk)[2]
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
        queue_notice(
            tx,
            holder,
            "hold_ready",
            at,
            self.policy.circulation.language,
            title=title,
            deadline=deadline,
            desk=desk,
        )
        ready = Hold(
            hold.id,
            hold.patron_pk,
            hold.record_pk,
            "ready",
            hold.placed_at,
            hold.expires_at,
            copy.pk,
            at,
            deadline,
            desk,
        )
        return ready, holder

    # --- renew -------------------------------------------------------------------------------

    def renew(self, patron_barcode: str, item_barcode: str, channel: str = DESK) -> Outcome:
        def work(tx: Transaction, now: datetime) -> Outcome:
            found = storage.copy_by_barcode(tx, item_barcode)
            if found is None:
                return Outcome(False, "renew", (reason("item_unknown", item=item_barcode),))
            storage.lock_title(tx, found.record_pk)
            patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
            if patron is None:
                return Outcome(False, "renew", (reason("patron_unknown", patron=patron_barcode),))
            return self._renew_one(tx, now, patron, found, channel)

        return self._write(work)

    def _renew_one(
        self, tx: Transaction, now: datetime, patron: Patron, copy: Copy, channel: str
    ) -> Outcome:
        record = storage.record_label(tx, copy.record_pk)
        loan = storage.open_loan_of_copy(tx, copy.pk)
        if loan is None or loan.patron_pk != patron.pk:
            return Outcome(
                False, "renew", (reason("loan_unknown"),), patron=patron, copy=copy, record=record
            )
        refusals: list[Reason] = []
        if patron.status != "active":
            refusals.append(reason("patron_blocked"))
        if any(h.patron_pk != patron.pk for h in storage.waiting_holds(tx, copy.record_pk)):
            refusals.append(reason("renew_held_by_other"))  # R5
        category = self.policy.category(patron.category)
        if loan.renewals >= category.renewals:
            refusals.append(reason("renewals_exhausted", count=loan.renewals))
        if refusals:
            return Outcome(
                False,
                "renew",
                tuple(refusals),
                patron=patron,
                copy=copy,
                record=record,
                due_at=loan.due_at,
            )
        due = stamp(max(now, parse_stamp(loan.due_at)) + _days(category.loan_days))
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
        return Outcome(True, "renew", patron=patron, copy=copy, record=record, due_at=due)

    def renew_all(
        self, patron_barcode: str, channel: str = DESK
    ) -> tuple[Outcome | None, list[Outcome]]:
        """Renew every loan of a reader. Returns (a refusal about the reader, or None; per-loan
        outcomes). Each loan is decided on its own; all in one transaction."""

        def work(tx: Transaction, now: datetime) -> tuple[Outcome | None, list[Outcome]]:
            patron = storage.patron_by_barcode(tx, patron_barcode)
            if patron is None:
                return Outcome(
                    False, "renew_all", (reason("patron_unknown", patron=patron_barcode),)
                ), []
            loans = storage.open_loans_of_patron(tx, patron.pk)
            for record_pk in sorted({loan.record_pk for loan in loans}):
                storage.lock_title(tx, record_pk)
            patron = storage.patron_by_pk(tx, patron.pk, lock=True)
            return None, [
                self._renew_one(tx, now, patron, storage.copy_by_pk(tx, loan.item_pk), channel)
                for loan in loans
            ]

        return self._write(work)

    # --- holds -------------------------------------------------------------------------------

    def place_hold(
        self,
        patron_barcode: str,
        *,
        record: tuple[str, str] | None = None,
        item_barcode: str | None = None,
        channel: str = DESK,
    ) -> Outcome:
        """A title-level hold, on a record (database, record id) or the title of a copy."""

        def work(tx: Transaction, now: datetime) -> Outcome:
            parties = self._hold_parties(tx, "hold", patron_barcode, record, item_barcode)
            if isinstance(parties, Outcome):
                return parties
            record_pk, copies, patron, label = parties
            refusals = self._hold_checks(tx, patron, record_pk, copies, now)
            if refusals:
                return Outcome(False, "hold", tuple(refusals), patron=patron, record=label)
            at = stamp(now)
            expires = stamp(now + self.policy.request_period)  # R8
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
                self.policy.circulation.language,
                title=label[2],
                expires=expires,
            )
            return Outcome(
                True,
                "hold",
                patron=patron,
                record=label,
                hold_id=hold_id,
                hold_state="waiting",
                queue_position=position,
                expires_at=expires,
                pickup_desk=self._likely_desk(copies),
            )

        return self._write(work)

    def _hold_parties(
        self,
        tx: Transaction,
        action: str,
        patron_barcode: str,
        record: tuple[str, str] | None,
        item_barcode: str | None,
    ) -> tuple[int, list[Copy], Patron, tuple[str, str, str]] | Outcome:
        """The title, its copies and the reader of a hold action, locked in the engine's order
        (title, copies, reader); or the refusal when one of them does not exist."""
        record_pk = self._resolve_title(tx, record, item_barcode)
        if isinstance(record_pk, Outcome):
            return record_pk
        storage.lock_title(tx, record_pk)
        copies = storage.copies_of(tx, record_pk, lock=True)
        patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
        label = storage.record_label(tx, record_pk)
        if patron is None:
            return Outcome(
                False, action, (reason("patron_unknown", patron=patron_barcode),), record=label
            )
        return record_pk, copies, patron, label

    def _likely_desk(self, copies: list[Copy]) -> str | None:
        circulating = [c for c in copies if self.policy.circulates(c.item_type)]
        return self.policy.desk_for(circulating[0].location) if circulating else None

    def _resolve_title(
        self, tx: Transaction, record: tuple[str, str] | None, item_barcode: str | None
    ) -> int | Outcome:
        if item_barcode is not None:
            copy = storage.copy_by_barcode(tx, item_barcode)
            if copy is None:
                return Outcome(False, "hold", (reason("item_unknown", item=item_barcode),))
            return copy.record_pk
        assert record is not None
        record_pk = storage.record_pk_by_id(tx, *record)
        if record_pk is None:
            return Outcome(
                False, "hold", (reason("record_unknown", record=f"{record[0]}/{record[1]}"),)
            )
        return record_pk

    def _hold_checks(
        self, tx: Transaction, patron: Patron, record_pk: int, copies: list[Copy], now: datetime
    ) -> list[Reason]:
        if patron.status != "active":
            return [reason("patron_blocked")]
        suspended = self._suspension(patron, now)
        if suspended is not None:
            return [suspended]  # R15
        if not any(self.policy.circulates(c.item_type) for c in copies):
            return [reason("title_not_holdable")]  # R1
        if any(self._is_available(tx, c) for c in copies):
            return [reason("copy_available")]  # R2
        if any(loan.patron_pk == patron.pk for loan in storage.open_loans_of_title(tx, record_pk)):
            return [reason("title_on_loan_to_you")]  # R3
        if storage.open_hold(tx, patron.pk, record_pk) is not None:
            return [reason("already_held")]  # R4
        over = self._hold_limit(tx, patron)
        return [over] if over is not None else []

    def _suspension(self, patron: Patron, now: datetime) -> Reason | None:
        """R15: no holds while an R11 suspension lasts."""
        until = self._suspended_until(patron, now)
        if until is None:
            return None
        return reason("holds_suspended", until=until[:10], limit=self.policy.holds.no_show_limit)

    def _hold_limit(self, tx: Transaction, patron: Patron) -> Reason | None:
        """R4: at most the category's max_holds open holds (waiting + ready)."""
        category = self.policy.category(patron.category)
        count = len(storage.open_holds_of_patron(tx, patron.pk))
        if count >= category.max_holds:
            return reason("too_many_holds", count=count, limit=category.max_holds)
        return None

    def cancel_hold(
        self,
        patron_barcode: str,
        *,
        record: tuple[str, str] | None = None,
        item_barcode: str | None = None,
        channel: str = DESK,
    ) -> Outcome:
        """R12: cancel any time before checkout; a ready hold's copy goes to the next hold."""

        def work(tx: Transaction, now: datetime) -> Outcome:
            parties = self._hold_parties(tx, "cancel", patron_barcode, record, item_barcode)
            if isinstance(parties, Outcome):
                return parties
            record_pk, _copies, patron, label = parties
            hold = storage.open_hold(tx, patron.pk, record_pk)
            if hold is None:
                return Outcome(
                    False, "cancel", (reason("hold_unknown"),), patron=patron, record=label
                )
            at = stamp(now)
            storage.close_hold(tx, hold.id, "cancelled", at)
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
                tx, patron, "hold_cancelled", at, self.policy.circulation.language, title=label[2]
            )
            if hold.state == "ready" and hold.item_pk is not None:
                copy = storage.copy_by_pk(tx, hold.item_pk)
                self._trap_or_shelve(tx, copy, storage.waiting_holds(tx, record_pk), now, channel)
            return Outcome(
                True, "cancel", patron=patron, record=label, hold_id=hold.id, hold_state="cancelled"
            )

        return self._write(work)

    # --- expiry: R8, R9, R11 -------------------------------------------------------------------

    def process_expiry(self, as_of: datetime | None = None) -> ExpiryReport:
        """Apply every hold deadline up to `as_of`, one event at a time in the order they fell
        due, each at its own time, so that a late run ends where timely runs would have.
        Running it again changes nothing."""
        as_of = as_of or self.clock.now()
        report = ExpiryReport()
        while self._write(lambda tx, _now: self._next_expiry(tx, as_of, report)):
            pass
        return report

    def _next_expiry(self, tx: Transaction, as_of: datetime, report: ExpiryReport) -> bool:
        limit = stamp(as_of)
        waiting = storage.due_waiting_expiry(tx, limit)
        ready = storage.due_pickup_deadline(tx, limit)
        if waiting is None and ready is None:
            return False
        if ready is None or (
            waiting is not None and waiting.expires_at <= (ready.pickup_deadline or "")
        ):
            assert waiting is not None
            self._expire_request(tx, waiting, report)
        else:
            self._no_show(tx, ready, report)
        return True

    def _expire_request(self, tx: Transaction, hold: Hold, report: ExpiryReport) -> None:
        storage.lock_title(tx, hold.record_pk)
        at = hold.expires_at
        storage.close_hold(tx, hold.id, "expired", at)  # R8
        patron = storage.patron_by_pk(tx, hold.patron_pk)
        title = storage.record_label(tx, hold.record_pk)[2]
        storage.log_event(
            tx,
            at,
            "hold_expired",
            "system",
            patron_pk=patron.pk,
            record_pk=hold.record_pk,
            hold_id=hold.id,
        )
        queue_notice(tx, patron, "hold_expired", at, self.policy.circulation.language, title=title)
        report.expired += 1
        report.events.append(f"R8 hold {hold.id} expired at {at}")

    def _no_show(self, tx: Transaction, hold: Hold, report: ExpiryReport) -> None:
        assert hold.pickup_deadline is not None and hold.item_pk is not None
        storage.lock_title(tx, hold.record_pk)
        at = hold.pickup_deadline
        moment = parse_stamp(at)
        storage.close_hold(tx, hold.id, "no_show", at)  # R9
        patron = storage.patron_by_pk(tx, hold.patron_pk, lock=True)
        title = storage.record_label(tx, hold.record_pk)[2]
        storage.log_event(
            tx,
            at,
            "hold_no_show",
            "system",
            patron_pk=patron.pk,
            item_pk=hold.item_pk,
            record_pk=hold.record_pk,
            hold_id=hold.id,
        )
        queue_notice(tx, patron, "hold_no_show", at, self.policy.circulation.language, title=title)
        report.no_shows += 1
        report.events.append(f"R9 hold {hold.id} not collected by {at}")
        count = patron.no_show_count + 1
        if count > self.policy.holds.no_show_limit:  # R11
            until = stamp(moment + self.policy.suspension_period)
            storage.set_no_shows(tx, patron.pk, 0, until)
            storage.log_event(tx, at, "holds_suspended", "system", patron_pk=patron.pk, until=until)
            queue_notice(
                tx,
                patron,
                "hold_suspended",
                at,
                self.policy.circulation.language,
                until=until[:10],
                limit=str(self.policy.holds.no_show_limit),
            )
            report.suspended += 1
            report.events.append(f"R11 reader {patron.barcode} suspended until {until}")
        else:
            storage.set_no_shows(tx, patron.pk, count, patron.hold_suspended_until)
        copy = storage.copy_by_pk(tx, hold.item_pk)
        if self._trap_or_shelve(
            tx, copy, storage.waiting_holds(tx, hold.record_pk), moment, "system"
        ):
            report.trapped += 1

    # --- availability --------------------------------------------------------------------------

    def availability(self, record_pks: list[int]) -> dict[int, TitleAvailability]:
        """Per copy: status, due date, on the hold shelf; per title: the hold queue length."""
        result: dict[int, TitleAvailability] = {}
        with self.store.read() as tx:
            for record_pk in record_pks:
                copies = []
                for copy in storage.copies_of(tx, record_pk):
                    loan = storage.open_loan_of_copy(tx, copy.pk)
                    ready = storage.ready_hold_of_copy(tx, copy.pk)
                    copies.append(
                        CopyAvailability(
                            barcode=copy.barcode,
                            location=copy.location,
                            call_number=copy.call_number,
                            item_type=copy.item_type,
                            status=copy.status,
                            available=self._is_available(tx, copy),
                            due_at=loan.due_at if loan else None,
                            on_hold_shelf=ready is not None,
                            pickup_desk=ready.pickup_desk if ready else None,
                            state=self.policy.availability.shelf_state(
                                copy.status, copy.item_type, on_loan=bool(loan), trapped=bool(ready)
                            ),
                        )
                    )
                result[record_pk] = TitleAvailability(
                    record_pk, tuple(copies), len(storage.waiting_holds(tx, record_pk))
                )
        return result

    # --- fees and payments ------------------------------------------------------------------

    def add_fee(
        self,
        patron_barcode: str,
        amount: int,
        kind: str = "other",
        description: str = "",
        currency: str | None = None,
        channel: str = DESK,
    ) -> Outcome:
        """Charge a reader a fee of `amount` minor units (fen)."""
        code = currency or self.policy.circulation.currency

        def work(tx: Transaction, now: datetime) -> Outcome:
            patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
            if patron is None:
                return Outcome(False, "add_fee", (reason("patron_unknown", patron=patron_barcode),))
            refusal = None
            if kind not in FEE_KINDS:
                refusal = reason("fee_kind_unknown", kind=kind, kinds=", ".join(FEE_KINDS))
            elif not _whole_positive(amount):
                refusal = reason("fee_amount_invalid")
            if refusal is not None:
                return Outcome(False, "add_fee", (refusal,), patron=patron)
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
            return Outcome(
                True,
                "add_fee",
                patron=patron,
                fee_id=fee_id,
                balance=balance,
                notes=(
                    reason(
                        "fee_added",
                        amount=format_money(amount, code),
                        balance=self._money(balance),
                    ),
                ),
            )

        return self._write(work)

    def pay_fee(
        self,
        patron_barcode: str,
        amount: int,
        *,
        fee_id: int | None = None,
        payment_type: str = "cash",
        transaction_id: str = "",
        channel: str = DESK,
    ) -> Outcome:
        """Apply a payment to one fee, or to the open fees oldest first. An overpayment is
        refused, never kept as credit. A payment whose `transaction_id` the reader already
        used is not applied again: the answer is the first one's (ok, with a note), so a
        self-check machine that resends after a lost reply cannot charge twice."""

        def work(tx: Transaction, now: datetime) -> Outcome:
            patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
            if patron is None:
                return Outcome(False, "pay_fee", (reason("patron_unknown", patron=patron_barcode),))
            if transaction_id:
                earlier = storage.payment_by_transaction(tx, patron.pk, transaction_id)
                if earlier is not None and earlier[0] != amount:
                    # The same id with another amount is not a resend: a kiosk whose counter
                    # restarted must not have money taken and silently not recorded.
                    return Outcome(
                        False,
                        "pay_fee",
                        (reason("transaction_id_reused", transaction=transaction_id),),
                        patron=patron,
                        balance=storage.fees_owed(tx, patron.pk),
                    )
                if earlier is not None:
                    return Outcome(
                        True,
                        "pay_fee",
                        patron=patron,
                        fee_id=earlier[1],
                        amount_paid=earlier[0],
                        balance=storage.fees_owed(tx, patron.pk),
                        notes=(reason("payment_already_recorded", transaction=transaction_id),),
                    )
            owed = storage.fees_owed(tx, patron.pk)
            targets = self._fees_to_pay(tx, patron, fee_id)
            refusal = None
            if targets is None:
                refusal = reason("fee_unknown", fee=fee_id)
            elif not _whole_positive(amount):
                refusal = reason("payment_invalid")
            elif not targets:
                refusal = reason("no_fees_due")
            else:
                due = sum(fee.outstanding for fee in targets)
                if amount > due:
                    refusal = reason(
                        "payment_exceeds_balance",
                        amount=self._money(amount),
                        balance=self._money(due),
                    )
            if refusal is not None:
                return Outcome(False, "pay_fee", (refusal,), patron=patron, balance=owed)
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
            return Outcome(
                True,
                "pay_fee",
                patron=patron,
                fee_id=applied[0]["fee_id"],
                amount_paid=amount,
                balance=balance,
                notes=(
                    reason("fee_paid", amount=self._money(amount), balance=self._money(balance)),
                ),
            )

        return self._write(work)

    def _fees_to_pay(
        self, tx: Transaction, patron: Patron, fee_id: int | None
    ) -> list[storage.Fee] | None:
        """The open fees a payment goes to, oldest first; None when `fee_id` is not one of the
        reader's fees (an unknown fee, or someone else's)."""
        if fee_id is None:
            return storage.fees_of_patron(tx, patron.pk, open_only=True)
        fee = next((f for f in storage.fees_of_patron(tx, patron.pk) if f.id == fee_id), None)
        if fee is None:
            return None
        return [fee] if fee.closed_at is None and fee.outstanding > 0 else []

    def fees_of(self, patron_barcode: str) -> list[FeeView]:
        """Every fee of a reader, open and paid, oldest first; [] for an unknown reader."""
        with self.store.read() as tx:
            patron = storage.patron_by_barcode(tx, patron_barcode)
            if patron is None:
                return []
            return [FeeView.of(fee) for fee in storage.fees_of_patron(tx, patron.pk)]

    # --- readers: account summary, PIN, block ---------------------------------------------

    def patron_summary(self, patron_barcode: str) -> PatronSummary | None:
        """A reader's loans, holds and open fees, and the flags a self-check machine shows,
        decided by the same checks checkout and place_hold run."""
        with self.store.read() as tx:
            patron = storage.patron_by_barcode(tx, patron_barcode)
            if patron is None:
                return None
            now = self.clock.now()
            loans = tuple(
                self._loan_view(tx, loan, now)
                for loan in storage.open_loans_of_patron(tx, patron.pk)
            )
            holds = [
                self._hold_view(tx, hold) for hold in storage.open_holds_of_patron(tx, patron.pk)
            ]
            fees = tuple(
                FeeView.of(fee) for fee in storage.fees_of_patron(tx, patron.pk, open_only=True)
            )
            blocked = [reason("patron_blocked")] if patron.status != "active" else []
            borrowing = self._borrowing_limits(tx, patron)
            holding = [
                found
                for found in (self._suspension(patron, now), self._hold_limit(tx, patron))
                if found is not None
            ]
        codes = {r.code for r in borrowing}
        return PatronSummary(
            patron=patron,
            category=self.policy.category(patron.category),
            loans=loans,
            ready_holds=tuple(h for h in holds if h.state == "ready"),
            waiting_holds=tuple(h for h in holds if h.state == "waiting"),
            fees=fees,
            fees_total=sum(fee.outstanding for fee in fees),
            currency=self.policy.circulation.currency,
            charge_denied=bool(blocked or borrowing),
            renewal_denied=bool(blocked),
            hold_denied=bool(blocked or holding),
            too_many_charged="too_many_loans" in codes,
            too_many_overdue="too_many_overdue" in codes,
            excessive_fees="fees_exceed_limit" in codes,
            hold_suspended_until=self._suspended_until(patron, now),
            reasons=tuple(blocked + borrowing + holding),
        )

    def _loan_view(self, tx: Transaction, loan: Loan, now: datetime) -> LoanView:
        database, record_id, title = storage.record_label(tx, loan.record_pk)
        return LoanView(
            item_barcode=storage.copy_by_pk(tx, loan.item_pk).barcode,
            record_id=record_id,
            database=database,
            title=title,
            due_at=loan.due_at,
            overdue=parse_stamp(loan.due_at) < now,
            renewals=loan.renewals,
        )

    def _hold_view(self, tx: Transaction, hold: Hold) -> HoldView:
        database, record_id, title = storage.record_label(tx, hold.record_pk)
        position = None
        if hold.state == "waiting":
            queue = [h.id for h in storage.waiting_holds(tx, hold.record_pk)]
            position = queue.index(hold.id) + 1
        return HoldView(
            id=hold.id,
            state=hold.state,
            database=database,
            record_id=record_id,
            title=title,
            placed_at=hold.placed_at,
            expires_at=hold.expires_at,
            item_barcode=storage.copy_by_pk(tx, hold.item_pk).barcode if hold.item_pk else None,
            pickup_desk=hold.pickup_desk,
            pickup_deadline=hold.pickup_deadline,
            queue_position=position,
        )

    def verify_patron_pin(self, patron_barcode: str, pin: str) -> bool | None:
        """True for the reader's PIN, False for any other (and for a reader without one),
        None for an unknown reader."""
        with self.store.read() as tx:
            patron = storage.patron_by_barcode(tx, patron_barcode)
        if patron is None:
            return None
        return check_pin(pin, patron.pin_hash)

    def block_patron(self, patron_barcode: str, message: str = "", channel: str = DESK) -> Outcome:
        """Stop a reader's card (SIP2 01 Block Patron, staff): checkout, renewal and holds are
        refused until enable_patron. The message is kept in the audit event."""
        return self._set_patron_status(patron_barcode, "blocked", "block_patron", message, channel)

    def enable_patron(self, patron_barcode: str, channel: str = DESK) -> Outcome:
        """Lift a block (ok also when the card was not blocked)."""
        return self._set_patron_status(patron_barcode, "active", "enable_patron", "", channel)

    def _set_patron_status(
        self, patron_barcode: str, status: str, action: str, message: str, channel: str
    ) -> Outcome:
        def work(tx: Transaction, now: datetime) -> Outcome:
            patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
            if patron is None:
                return Outcome(False, action, (reason("patron_unknown", patron=patron_barcode),))
            storage.set_patron_status(tx, patron.pk, status)
            storage.log_event(
                tx,
                stamp(now),
                "patron_blocked" if status == "blocked" else "patron_enabled",
                channel,
                patron_pk=patron.pk,
                was=patron.status,
                message=message,
            )
            return Outcome(True, action, patron=replace(patron, status=status))

        return self._write(work)

    # --- copies: what a self-check machine shows and may note -------------------------------

    def item_info(self, item_barcode: str) -> ItemView | None:
        """A copy, its title and where it is in circulation (SIP2 17 Item Information)."""
        with self.store.read() as tx:
            copy = storage.copy_by_barcode(tx, item_barcode)
            if copy is None:
                return None
            database, record_id, title = storage.record_label(tx, copy.record_pk)
            loan = storage.open_loan_of_copy(tx, copy.pk)
            ready = storage.ready_hold_of_copy(tx, copy.pk)
            borrower = storage.patron_by_pk(tx, loan.patron_pk) if loan else None
            holder = storage.patron_by_pk(tx, ready.patron_pk) if ready else None
            if loan is not None:
                circulation = "on_loan"
            elif ready is not None:
                circulation = "on_hold_shelf"
            else:
                circulation = self.policy.circulation_state(copy.status)
            return ItemView(
                copy=copy,
                database=database,
                record_id=record_id,
                title=title,
                author=storage.record_author(tx, copy.record_pk),
                circulation=circulation,
                circulates=self.policy.circulates(copy.item_type),
                # R2's "available copy" (as _is_available) from the loan and hold read above.
                available=(
                    self.policy.circulates(copy.item_type)
                    and copy.status == self.policy.circulation.on_shelf_status
                    and loan is None
                    and ready is None
                ),
                due_at=loan.due_at if loan else None,
                loan_patron_barcode=borrower.barcode if borrower else None,
                hold_queue=len(storage.waiting_holds(tx, copy.record_pk)),
                pickup_deadline=ready.pickup_deadline if ready else None,
                pickup_desk=ready.pickup_desk if ready else None,
                hold_patron_barcode=holder.barcode if holder else None,
                hold_patron_name=holder.name if holder else None,
                location=copy.location,
                call_number=copy.call_number,
                item_type=copy.item_type,
            )

    def update_item_properties(
        self, item_barcode: str, properties: str, channel: str = DESK
    ) -> Outcome:
        """Keep free text about a copy (SIP2 19 Item Status Update); circulation ignores it."""

        def work(tx: Transaction, now: datetime) -> Outcome:
            found = storage.copy_by_barcode(tx, item_barcode)
            if found is None:
                return Outcome(
                    False, "update_item_properties", (reason("item_unknown", item=item_barcode),)
                )
            storage.lock_title(tx, found.record_pk)
            copy = storage.copy_by_barcode(tx, item_barcode, lock=True)
            assert copy is not None
            storage.set_copy_properties(tx, copy.pk, properties)
            storage.log_event(
                tx,
                stamp(now),
                "item_properties",
                channel,
                item_pk=copy.pk,
                record_pk=copy.record_pk,
                properties=properties,
                was=copy.properties,
            )
            return Outcome(
                True,
                "update_item_properties",
                copy=replace(copy, properties=properties),
                record=storage.record_label(tx, copy.record_pk),
            )

        return self._write(work)


def _days(count: int) -> timedelta:
    return timedelta(days=count)


def _whole_positive(amount: object) -> bool:
    return isinstance(amount, int) and not isinstance(amount, bool) and amount > 0


def _retryable(error: Exception) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return False
    cause = error.__cause__ or error
    return isinstance(cause, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure)
