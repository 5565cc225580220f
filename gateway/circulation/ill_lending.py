"""Lending to partner libraries (we are the supplying agency): a partner's request is decided
at once (I1, I2, I7), numbered (I3), and its copy set aside for the partner (I6) as a loan to
the partner's pseudo-reader, so every view of availability (search, SRU, SIP2) sees it lent
and local readers may hold its title under R1-R15. Staff ship it (Loaned), a desk checkin ends
it (LoanCompleted, see ill_desk.py), a passed due date sends Overdue once.

Each function runs one write transaction; the answer to the partner is queued in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.catalogue.query import Boolean, Query, QueryError, Term
from gateway.catalogue.search import search_ids
from gateway.circulation import ill_storage, storage
from gateway.circulation.clock import parse_stamp, stamp
from gateway.circulation.holds import trap_or_shelve
from gateway.circulation.ill_borrowing import TEMPORARY_DATABASE
from gateway.circulation.ill_common import (
    FIELD_LIMIT,
    NOTE_LIMIT,
    TITLE_LIMIT,
    IllContext,
    IllResult,
    clip,
    header,
    locked_request,
    move,
    received,
    send,
    step_or_reason,
)
from gateway.circulation.ill_states import (
    LENDER_EVENT_OF_ACTION,
    IllegalTransition,
    LenderEvent,
    LenderState,
    Transition,
    lender_step,
)
from gateway.circulation.ill_storage import IllRequest
from gateway.circulation.ill_types import (
    Action,
    Confirmation,
    ErrorType,
    ReasonRetry,
    ReasonUnfilled,
    Request,
    RequestingAgencyMessage,
    Status,
    SupplyingAgencyMessage,
)
from gateway.circulation.reasons import Reason, reason
from gateway.circulation.states import Channel
from gateway.circulation.storage import Copy
from gateway.config import IllPartner
from gateway.store import Transaction
from gateway.store.engine import IntegrityViolation
from marc.identifiers import normalise_isbn, normalise_issn

PARTNER_READER_PREFIX = "ILL:"  # a partner's pseudo-reader: ILL:ISIL:CN-PKU
MAX_TITLES = 50  # titles a title-and-author search considers
LENT = (LenderState.LOANED, LenderState.OVERDUE, LenderState.RETURNING)


@dataclass(frozen=True)
class Decision:
    """I1/I2's answer to a request: the event, the copy to set aside, why, and the ISO code."""

    event: LenderEvent
    copy: Copy | None
    why: Reason | None
    code: str  # ReasonUnfilled / ReasonRetry value, "" when supplied


def _not_found(value: str) -> Confirmation:
    return Confirmation.error(
        ErrorType.UNRECOGNISED_DATA_VALUE, f"{value}: request with a given ID not found"
    )


# --- a partner's request ----------------------------------------------------------------------


def on_request(ctx: IllContext, message: Request, raw_xml: str | None) -> Confirmation:
    head = message.header
    partner = ctx.addressed(
        head.supplying_agency, "supplyingAgencyId", head.requesting_agency, "requestingAgencyId"
    )
    if isinstance(partner, Confirmation):  # I7: only known partners may request
        return partner
    if not head.requesting_agency_request_id.strip():
        return Confirmation.error(
            ErrorType.UNRECOGNISED_DATA_VALUE, "requestingAgencyRequestId: empty"
        )
    # Finding the title reads the search index: before the write transaction, which then
    # decides on the copies as they are under its locks.
    titles = [] if ctx.settings.suspended else find_titles(ctx, message)

    def work(tx: Transaction, now: datetime) -> Confirmation:
        agency = partner.agency_id
        earlier = ill_storage.lender_request_by_partner_id(
            tx, agency, head.requesting_agency_request_id, lock=True
        )
        if earlier is not None and _retried(earlier, message):
            return _decide_again(ctx, tx, earlier, message, partner, titles, now, raw_xml)
        if earlier is not None:
            return Confirmation.error(
                ErrorType.UNRECOGNISED_DATA_VALUE,
                f"requestingAgencyRequestId: {head.requesting_agency_request_id} is a duplicate",
            )
        decision = decide(ctx, tx, titles)
        transition = lender_step(LenderState.NEW, decision.event)
        at = stamp(now)
        number = ctx.number(tx) if decision.event is LenderEvent.SUPPLY else None  # I3
        values = _form_values(message)
        if decision.copy is not None and not values["title"]:
            # Asked for by our record id alone: name the title as we catalogue it.
            values["title"] = storage.record_label(tx, decision.copy.record_pk).title
            values["author"] = values["author"] or storage.record_author(
                tx, decision.copy.record_pk
            )
        request_pk = ill_storage.insert_request(
            tx,
            {
                **values,
                "number": number,
                "role": "lender",
                "state": transition.next,
                "status": transition.status or "",
                "partner": agency,
                "partner_url": partner.url,
                "our_agency": str(ctx.agency),
                "requesting_agency_request_id": head.requesting_agency_request_id,
                "supplying_agency_request_id": number or "",
                "reason": decision.code,
                "retry_first_seconds": ctx.settings.first_retry_seconds,
                "retry_max_attempts": ctx.settings.max_attempts,
                "created_at": at,
                "updated_at": at,
            },
        )
        received(tx, request_pk, message, now, raw_xml)
        if decision.copy is not None:
            _set_aside(ctx, tx, request_pk, decision.copy, partner, now)
        row = ill_storage.request_by_pk(tx, request_pk)
        assert row is not None
        note = decision.why.message(ctx.core.policy.circulation.language) if decision.why else ""
        _answer(tx, row, transition, now, note=note, code=decision.code)
        return Confirmation.accepted()

    try:
        return ctx.core.write(work)
    except IntegrityViolation as violation:
        if not ill_storage.is_lender_once_violation(violation):
            raise  # our bug, never the partner's duplicate
        # the same id from the same partner, at the same moment
        return Confirmation.error(
            ErrorType.UNRECOGNISED_DATA_VALUE,
            f"requestingAgencyRequestId: {head.requesting_agency_request_id} is a duplicate",
        )


def _retried(earlier: IllRequest, message: Request) -> bool:
    """The partner asks again (requestType Retry) for a request we answered RetryPossible."""
    return (
        earlier.state == LenderState.RETRY_POSSIBLE
        and message.service.request_type.strip().lower() == "retry"
    )


def _decide_again(
    ctx: IllContext,
    tx: Transaction,
    earlier: IllRequest,
    message: Request,
    partner: IllPartner,
    titles: list[int],
    now: datetime,
    raw_xml: str | None,
) -> Confirmation:
    received(tx, earlier.id, message, now, raw_xml)
    decision = decide(ctx, tx, titles)
    transition = lender_step(earlier.state, decision.event)
    changes: dict[str, object] = {"reason": decision.code}
    if decision.event is LenderEvent.SUPPLY:
        number = ctx.number(tx)  # I3: numbered when accepted
        changes.update(number=number, supplying_agency_request_id=number)
    ill_storage.update_request(tx, earlier.id, **changes)
    if decision.copy is not None:
        _set_aside(ctx, tx, earlier.id, decision.copy, partner, now)
    row = ill_storage.request_by_pk(tx, earlier.id)
    assert row is not None
    note = decision.why.message(ctx.core.policy.circulation.language) if decision.why else ""
    advance(tx, row, transition, now, note=note, code=decision.code)
    return Confirmation.accepted()


def _form_values(message: Request) -> dict[str, str]:
    bib, pub, patron, delivery = (
        message.bibliographic,
        message.publication,
        message.patron,
        message.delivery,
    )
    values = {
        "author": bib.author,
        "publisher": pub.publisher,
        "year": pub.year,
        "isbn": bib.isbn,
        "issn": bib.issn,
        "language": message.language,
        "material_type": pub.publication_type,
        "supplier_record_id": bib.supplier_unique_record_id,
        "reader_barcode": patron.patron_id,
        "reader_name": patron.name,
        "recipient": delivery.recipient,
        "email": delivery.email or patron.email,
        "phone": patron.phone,
        "delivery": delivery.method,
    }
    # Kept within I4's limits, as our own readers' requests are (a partner's are cut, not
    # refused: the request is still decided on what it names).
    return {
        "title": clip(bib.title, TITLE_LIMIT),
        "note": clip(message.service.note, NOTE_LIMIT),
        **{name: clip(value, FIELD_LIMIT) for name, value in values.items()},
    }


def find_titles(ctx: IllContext, message: Request) -> list[int]:
    """Our titles a request names: by our record id (001, any database), else by ISBN or
    ISSN, else by title and author words."""
    bib = message.bibliographic
    store = ctx.core.store
    with store.read() as tx:
        if bib.supplier_unique_record_id.strip():
            found = ill_storage.record_pks_by_record_id(tx, bib.supplier_unique_record_id.strip())
            if found:
                return found
        isbn = normalise_isbn(bib.isbn) if bib.isbn.strip() else None
        if isbn:
            found = ill_storage.record_pks_by_identifier(tx, "isbn", isbn)
            if found:
                return found
        issn = normalise_issn(bib.issn) if bib.issn.strip() else None
        if issn:
            found = ill_storage.record_pks_by_identifier(tx, "issn", issn)
            if found:
                return found
        databases = ill_storage.catalogue_databases(tx)
    if not bib.title.strip():
        return []
    node: Term | Boolean = Term("title", "all", bib.title.strip())
    if bib.author.strip():
        node = Boolean("and", node, Term("author", "all", bib.author.strip()))
    titles: list[int] = []
    # Not the titles of books we borrowed ourselves: they are not ours to lend (a reindex
    # puts them in the search index like any record).
    for database in (d for d in databases if d != TEMPORARY_DATABASE):
        try:
            _, keys = search_ids(
                store,
                Query(node),
                database,
                availability=ctx.core.policy.availability,
                limit=MAX_TITLES,
            )
        except QueryError:
            continue
        titles += keys
    return titles


def decide(ctx: IllContext, tx: Transaction, titles: list[int]) -> Decision:
    """I2, then I1 over every copy of the titles found."""
    policy = ctx.core.policy
    if ctx.settings.suspended:  # I2
        library = ctx.settings.agency_id
        return Decision(
            LenderEvent.REFUSE,
            None,
            reason("ill_suspended", library=library),
            ReasonUnfilled.POLICY_PROBLEM,
        )
    candidates = sorted(set(titles))
    # Every title's lock first, in pk order, then its copies: a desk checkout, a checkin that
    # traps a copy, or another partner's request takes a copy under the same lock, so what is
    # read below stays true until this transaction commits (PostgreSQL; SQLite's one writer
    # already serialises). Reading first let two of them take the same copy.
    for record_pk in candidates:
        storage.lock_title(tx, record_pk)
    held = lendable = False
    for record_pk in candidates:
        for copy in storage.copies_of(tx, record_pk):
            held = True
            if not policy.ill_lendable_types.get(copy.item_type, False):
                continue
            lendable = True
            on_loan = storage.open_loan_of_copy(tx, copy.pk) is not None
            trapped = storage.ready_hold_of_copy(tx, copy.pk) is not None
            # I1 asks for a copy on the shelf of a lendable type, not one local readers may
            # borrow (R1): a reading-room type may still be lent to other libraries.
            on_shelf = copy.status == policy.availability.on_shelf_status
            if on_shelf and not on_loan and not trapped:
                return Decision(LenderEvent.SUPPLY, copy, None, "")  # I1
    if lendable:  # I1: lendable copies, every one out
        return Decision(LenderEvent.RETRY, None, reason("ill_on_loan"), ReasonRetry.ON_LOAN)
    if held:  # I1: no copy of a type lent to other libraries
        types = "、".join(sorted(t for t, ok in policy.ill_lendable_types.items() if ok)) or "-"
        return Decision(
            LenderEvent.REFUSE,
            None,
            reason("ill_not_lendable", types=types),
            ReasonUnfilled.NOT_AVAILABLE_FOR_ILL,
        )
    return Decision(LenderEvent.REFUSE, None, reason("ill_not_held"), ReasonUnfilled.NOT_HELD)


def _set_aside(
    ctx: IllContext,
    tx: Transaction,
    request_pk: int,
    found: Copy,
    partner: IllPartner,
    now: datetime,
) -> None:
    """I6: the copy is lent to the partner's pseudo-reader from now on (due in loan_days, set
    again when shipped), so it is unavailable everywhere and local readers may hold it."""
    storage.lock_title(tx, found.record_pk)
    copy = storage.copy_by_barcode(tx, found.barcode, lock=True)
    assert copy is not None
    reader = PARTNER_READER_PREFIX + partner.agency_id
    patron_pk = ill_storage.partner_patron(tx, reader)
    if patron_pk is None:
        category = ctx.core.policy.circulation.default_category
        patron_pk = ill_storage.insert_partner_patron(
            tx, reader, partner.name or partner.agency_id, category
        )
    at = stamp(now)
    due = stamp(now + timedelta(days=ctx.settings.loan_days))
    loan_id = storage.insert_loan(tx, copy, patron_pk, at, due, Channel.ILL)
    storage.set_copy_status(tx, copy.pk, ctx.core.policy.circulation.on_loan_status)
    storage.log_event(
        tx,
        at,
        "ill_set_aside",
        Channel.ILL,
        patron_pk=patron_pk,
        item_pk=copy.pk,
        record_pk=copy.record_pk,
        loan_id=loan_id,
        due_at=due,
    )
    ill_storage.update_request(
        tx,
        request_pk,
        record_pk=copy.record_pk,
        item_pk=copy.pk,
        barcode=copy.barcode,
        loan_id=loan_id,
        due_at=due,
    )


def _answer(
    tx: Transaction,
    row: IllRequest,
    transition: Transition,
    now: datetime,
    *,
    note: str = "",
    code: str = "",
) -> None:
    """Queue the supplyingAgencyMessage a transition sends, if any."""
    message = transition.send
    if message is None or message.reason is None:
        return
    status = message.status or row.status
    out = row.state in LENT  # the copy is with the partner: say when it is due back
    sam = SupplyingAgencyMessage(
        header=header(row, now),
        reason_for_message=message.reason,
        status=Status(status),
        last_change=now,
        answer_yes_no=message.answer,
        note=note,
        reason_unfilled=code if status == "Unfilled" else "",
        reason_retry=code if status == "RetryPossible" else "",
        due_date=parse_stamp(row.due_at) if row.due_at and out else None,
        item_id=row.barcode if out else "",
    )
    send(tx, row, sam, now)


# --- staff actions ------------------------------------------------------------------------------


def ship(ctx: IllContext, number: str) -> IllResult:
    """Lend the set-aside copy to the partner: due in loan_days from now, Loaned sent."""

    def work(tx: Transaction, now: datetime) -> IllResult:
        row = locked_request(tx, number, "lender")
        if isinstance(row, Reason):
            return IllResult(False, (row,))
        transition = step_or_reason(row, LenderEvent.SHIP, "ship")
        if isinstance(transition, Reason):
            return IllResult(False, (transition,), row)
        due = stamp(now + timedelta(days=ctx.settings.loan_days))
        if row.loan_id is not None:
            ill_storage.set_loan_due(tx, row.loan_id, due)
        storage.log_event(
            tx, stamp(now), "ill_shipped", Channel.ILL, item_pk=row.item_pk, loan_id=row.loan_id
        )
        return advance(tx, row, transition, now, changes={"due_at": due})

    return ctx.core.write(work)


def unfill(ctx: IllContext, number: str, code: str, note: str) -> IllResult:
    """Staff cannot supply after all: Unfilled with the reason, and the copy is released."""
    codes = [c.value for c in ReasonUnfilled]

    def work(tx: Transaction, now: datetime) -> IllResult:
        row = locked_request(tx, number, "lender")
        if isinstance(row, Reason):
            return IllResult(False, (row,))
        if code not in codes:
            return IllResult(
                False, (reason("ill_reason_unknown", given=code, codes=", ".join(codes)),), row
            )
        transition = step_or_reason(row, LenderEvent.UNFILL, "unfill")
        if isinstance(transition, Reason):
            return IllResult(False, (transition,), row)
        _release(ctx, tx, row, now)
        return advance(tx, row, transition, now, note=note, code=code, changes={"reason": code})

    return ctx.core.write(work)


def process_overdue(ctx: IllContext, as_of: datetime) -> list[str]:
    """Loans to partners whose due date passed get Overdue, once (the state changes)."""

    def work(tx: Transaction, now: datetime) -> list[str]:
        done = []
        for found in ill_storage.due_lender_loans(tx, (LenderState.LOANED,), stamp(as_of)):
            row = ill_storage.request_by_pk(tx, found.id, lock=True)
            if row is None or row.state != LenderState.LOANED:
                continue
            advance(tx, row, lender_step(row.state, LenderEvent.OVERDUE), now)
            done.append(row.number or "")
        return done

    return ctx.core.write(work)


def advance(
    tx: Transaction,
    row: IllRequest,
    transition: Transition,
    now: datetime,
    *,
    note: str = "",
    code: str = "",
    changes: dict[str, object] | None = None,
) -> IllResult:
    """Move the request as `transition` says (with `changes` to its row) and queue its
    message."""
    moved = move(tx, row, transition, now, changes)
    _answer(tx, moved, transition, now, note=note, code=code)
    return IllResult(True, (), moved)


def _release(ctx: IllContext, tx: Transaction, row: IllRequest, now: datetime) -> None:
    """The set-aside copy goes back: its loan to the partner ends and it is trapped for the
    oldest local hold (R6) or shelved."""
    if row.item_pk is None:
        return
    copy = storage.copy_by_pk(tx, row.item_pk)
    storage.lock_title(tx, copy.record_pk)
    loan = storage.open_loan_of_copy(tx, copy.pk)
    if loan is not None and loan.id == row.loan_id:
        storage.close_loan(tx, loan.id, stamp(now))
        storage.log_event(
            tx,
            stamp(now),
            "ill_released",
            Channel.ILL,
            patron_pk=loan.patron_pk,
            item_pk=copy.pk,
            record_pk=copy.record_pk,
            loan_id=loan.id,
        )
        trap_or_shelve(
            ctx.core, tx, copy, storage.waiting_holds(tx, copy.record_pk), now, Channel.ILL
        )


# --- a partner's action -------------------------------------------------------------------------


def on_action(
    ctx: IllContext, message: RequestingAgencyMessage, raw_xml: str | None
) -> Confirmation:
    head = message.header
    partner = ctx.addressed(
        head.supplying_agency, "supplyingAgencyId", head.requesting_agency, "requestingAgencyId"
    )
    if isinstance(partner, Confirmation):  # I7: only known partners may request
        return partner
    event = LENDER_EVENT_OF_ACTION.get(message.action)
    if event is None:
        return Confirmation.error(
            ErrorType.UNSUPPORTED_ACTION_TYPE, f"action {message.action.value} is not supported"
        )

    def work(tx: Transaction, now: datetime) -> Confirmation:
        row = _partner_request(
            tx,
            partner.agency_id,
            head.requesting_agency_request_id,
            head.supplying_agency_request_id,
        )
        if row is None:
            return _not_found(f"requestingAgencyRequestId {head.requesting_agency_request_id}")
        chosen = event
        if message.action is Action.RENEW:
            chosen = _renewal(ctx, tx, row)
        try:
            transition = lender_step(row.state, chosen)
        except IllegalTransition:
            return Confirmation.error(
                ErrorType.UNRECOGNISED_DATA_VALUE,
                f"action {message.action.value} is not possible: the request is {row.state}",
            )
        received(tx, row.id, message, now, raw_xml)
        changes: dict[str, object] = {}
        if chosen is LenderEvent.CANCEL and transition.next == LenderState.CANCELLED:
            _release(ctx, tx, row, now)
        if chosen is LenderEvent.RENEW_YES:
            assert row.due_at is not None
            due = stamp(max(now, parse_stamp(row.due_at)) + timedelta(days=ctx.settings.loan_days))
            if row.loan_id is not None:
                ill_storage.set_loan_due(tx, row.loan_id, due)
            changes = {"due_at": due, "renewals_used": row.renewals_used + 1}
        advance(tx, row, transition, now, changes=changes)
        return Confirmation.accepted()

    return ctx.core.write(work)


def _partner_request(
    tx: Transaction, partner: str, requesting_id: str, supplying_id: str
) -> IllRequest | None:
    if supplying_id:
        row = ill_storage.request_by_number(tx, supplying_id, lock=True)
        if row is not None and row.role == "lender" and row.partner == partner:
            return row
    return ill_storage.lender_request_by_partner_id(tx, partner, requesting_id, lock=True)


def _renewal(ctx: IllContext, tx: Transaction, row: IllRequest) -> LenderEvent:
    """Renew yes while renewals are left and no local reader waits for the title (R5)."""
    if row.renewals_used >= ctx.settings.renewals:
        return LenderEvent.RENEW_NO
    if row.record_pk is not None and storage.waiting_holds(tx, row.record_pk):
        return LenderEvent.RENEW_NO  # R5
    return LenderEvent.RENEW_YES
