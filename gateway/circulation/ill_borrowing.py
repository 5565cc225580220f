"""Borrowing from partner libraries for our readers (we are the requesting agency).

A reader confirmed for ILL (I7) files a request (I4: nothing is stored when it is refused);
it gets our number (I3), the service fee goes to the reader's account, and the Request goes to
the first lender of the rota. An Unfilled (or RetryPossible) answer sends it on to the next;
with none left the reader is told. When the book arrives staff receive it: Received goes to
the lender and a temporary copy is trapped on our hold shelf for the reader, so the ordinary
desk, SIP2 and R9 pickup rules apply. The reader's return at the desk ends the local loan
(ill_desk.py); staff then ship it back (ShippedReturn). Notices (accepted, arrived, unfilled,
overdue) go through the notice outbox: a mail that fails never fails anything (I5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from gateway.circulation import ill_storage, storage
from gateway.circulation.checks import run_checks
from gateway.circulation.clock import stamp
from gateway.circulation.ill_common import (
    FIELD_LIMIT,
    NOTE_LIMIT,
    TITLE_LIMIT,
    IllContext,
    IllResult,
    header,
    locked_request,
    move,
    received,
    send,
    step_or_reason,
)
from gateway.circulation.ill_states import (
    BORROWER_EVENT_OF_STATUS,
    BorrowerEvent,
    BorrowerState,
    IllegalTransition,
    Transition,
    borrower_step,
)
from gateway.circulation.ill_storage import IllRequest
from gateway.circulation.ill_types import (
    BibliographicInfo,
    Confirmation,
    DeliveryInfo,
    ErrorType,
    PatronInfo,
    PublicationInfo,
    ReasonForMessage,
    Request,
    RequestingAgencyMessage,
    ServiceInfo,
    SupplyingAgencyMessage,
)
from gateway.circulation.notices import EMAIL, queue_notice
from gateway.circulation.policy import ILL_COPY_TYPE
from gateway.circulation.reasons import Reason, reason
from gateway.circulation.states import Channel, HoldState
from gateway.circulation.storage import Copy, Patron
from gateway.config import IllSettings
from gateway.store import Transaction
from marc.bibliographic import BibRecord, Name

TEMPORARY_DATABASE = "ill"  # where the titles of borrowed copies are kept (never searched)
COPY_PREFIX = "ILL-"  # a borrowed copy's barcode: ILL-ST00000001
SENT_BACK_STATUS = "馆际互借已还"  # a borrowed copy shipped back to its lender


@dataclass(frozen=True)
class IllForm:
    """The seed's request form (I4)."""

    title: str
    author: str = ""
    publisher: str = ""
    year: str = ""
    isbn: str = ""
    issn: str = ""
    language: str = ""
    material_type: str = ""
    lenders: tuple[str, ...] = ()  # agency ids, in the order to ask; () = every partner
    recipient: str = ""
    email: str = ""
    phone: str = ""
    delivery: str = ""
    reference: str = ""  # the reader's own request number (自定义申请单号)
    note: str = ""


# --- I4 and I7: the checks a request runs -----------------------------------------------------


def title_given(form: IllForm) -> list[Reason]:
    title = form.title.strip()
    if not title:
        return [reason("ill_title_missing")]
    if len(title) > TITLE_LIMIT:
        return [reason("ill_title_too_long", limit=TITLE_LIMIT, length=len(title))]
    return []


def recipient_given(form: IllForm) -> list[Reason]:
    return [] if form.recipient.strip() else [reason("ill_recipient_missing")]


def email_given(form: IllForm) -> list[Reason]:
    email = form.email.strip()
    if not email:
        return [reason("ill_email_missing")]
    return [] if EMAIL.match(email) else [reason("ill_email_invalid", email=email)]


def note_short(form: IllForm) -> list[Reason]:
    length = len(form.note.strip())
    return (
        [reason("ill_note_too_long", limit=NOTE_LIMIT, length=length)]
        if length > NOTE_LIMIT
        else []
    )


def fields_short(form: IllForm) -> list[Reason]:
    named = {
        "author": form.author,
        "publisher": form.publisher,
        "year": form.year,
        "isbn": form.isbn,
        "issn": form.issn,
        "language": form.language,
        "type": form.material_type,
        "recipient": form.recipient,
        "email": form.email,
        "phone": form.phone,
        "delivery": form.delivery,
        "reference": form.reference,
    }
    return [
        reason("ill_field_too_long", field=name, limit=FIELD_LIMIT)
        for name, value in named.items()
        if len(value.strip()) > FIELD_LIMIT
    ]


FORM_CHECKS = (title_given, recipient_given, email_given, note_short, fields_short)  # I4


def rota_of(settings: IllSettings, form: IllForm) -> list[str] | Reason:
    """I7: the lenders to ask, each a known partner with an address."""
    names = list(form.lenders) or [p.agency_id for p in settings.partners]
    if not names:
        return reason("ill_no_lender")
    rota = []
    for name in names:
        partner = settings.partner(name)
        if partner is None:
            return reason("ill_partner_unknown", agency=name)
        if not partner.url:
            return reason("ill_partner_no_url", agency=name)
        rota.append(partner.agency_id)
    return rota


@dataclass(frozen=True)
class RequestCase:
    """What a reader's request is decided on: the form, the reader (read, and locked when it
    is to be filed) and the reader's ILL registration."""

    settings: IllSettings
    form: IllForm
    patron_barcode: str
    patron: Patron | None
    registration: str | None  # ill_readers.state: confirmed, revoked, or None (never asked)


def reader_known(case: RequestCase) -> list[Reason]:
    return [] if case.patron else [reason("patron_unknown", patron=case.patron_barcode)]


def reader_registered(case: RequestCase) -> list[Reason]:
    """I7: only readers the ILL staff confirmed may file a request."""
    if case.patron is None or case.registration == "confirmed":
        return []
    return [reason("ill_reader_not_registered", patron=case.patron_barcode)]


def form_complete(case: RequestCase) -> list[Reason]:
    return list(run_checks(FORM_CHECKS, case.form))  # I4


def lenders_known(case: RequestCase) -> list[Reason]:
    rota = rota_of(case.settings, case.form)  # I7
    return [rota] if isinstance(rota, Reason) else []


REQUEST_CHECKS = (reader_known, reader_registered, form_complete, lenders_known)


def request_case(
    ctx: IllContext, tx: Transaction, patron_barcode: str, form: IllForm, *, lock: bool
) -> RequestCase:
    """The one way a request's case is read, for filing it (locked) and checking it (not)."""
    patron = storage.patron_by_barcode(tx, patron_barcode, lock=lock)
    registration = ill_storage.reader_state(tx, patron.pk) if patron else None
    return RequestCase(ctx.settings, form, patron_barcode, patron, registration)


# --- filing a request ---------------------------------------------------------------------------


def check_request(ctx: IllContext, patron_barcode: str, form: IllForm) -> IllResult:
    """What file_request would decide of this form now (every reason), writing nothing."""
    with ctx.core.store.read() as tx:
        case = request_case(ctx, tx, patron_barcode, form, lock=False)
        refusals = run_checks(REQUEST_CHECKS, case)
    return IllResult(not refusals, refusals)


def file_request(ctx: IllContext, patron_barcode: str, form: IllForm) -> IllResult:
    def work(tx: Transaction, now: datetime) -> IllResult:
        case = request_case(ctx, tx, patron_barcode, form, lock=True)
        refusals = run_checks(REQUEST_CHECKS, case)
        patron, rota = case.patron, rota_of(ctx.settings, form)
        if refusals or patron is None or isinstance(rota, Reason):
            return IllResult(False, refusals)
        at = stamp(now)
        number = ctx.number(tx)  # I3
        first = ctx.settings.partner(rota[0])
        assert first is not None
        fee = ctx.settings.service_fee
        request_pk = ill_storage.insert_request(
            tx,
            {
                "number": number,
                "role": "borrower",
                "state": BorrowerState.NEW.value,
                "partner": first.agency_id,
                "partner_url": first.url,
                "our_agency": str(ctx.agency),
                "requesting_agency_request_id": number,
                "patron_pk": patron.pk,
                "reader_barcode": patron.barcode,
                "reader_name": patron.name,
                "title": form.title.strip(),
                "author": form.author.strip(),
                "publisher": form.publisher.strip(),
                "year": form.year.strip(),
                "isbn": form.isbn.strip(),
                "issn": form.issn.strip(),
                "language": form.language.strip(),
                "material_type": form.material_type.strip(),
                "recipient": form.recipient.strip(),
                "email": form.email.strip(),
                "phone": form.phone.strip(),
                "delivery": form.delivery.strip(),
                "reference": form.reference.strip(),
                "note": form.note.strip(),
                "rota": json.dumps(rota),
                "fee": fee,
                "retry_first_seconds": ctx.settings.first_retry_seconds,
                "retry_max_attempts": ctx.settings.max_attempts,
                "created_at": at,
                "updated_at": at,
            },
        )
        if fee > 0:  # the reader's account (帐务日志)
            currency = ctx.core.policy.circulation.currency
            description = f"馆际互借服务费 {number}"
            fee_id = storage.insert_fee(tx, patron.pk, "processing", fee, currency, description, at)
            storage.log_event(
                tx,
                at,
                "fee_added",
                Channel.ILL,
                patron_pk=patron.pk,
                fee_id=fee_id,
                kind="processing",
                amount=fee,
                currency=currency,
                description=description,
            )
        row = ill_storage.request_by_pk(tx, request_pk)
        assert row is not None
        return advance(ctx, tx, row, borrower_step(row.state, BorrowerEvent.SEND), now)

    return ctx.core.write(work)


def request_message(row: IllRequest, now: datetime) -> Request:
    """The Request for the current lender of the rota."""
    return Request(
        header=header(row, now),
        bibliographic=BibliographicInfo(
            title=row.title, author=row.author, isbn=row.isbn, issn=row.issn
        ),
        publication=PublicationInfo(
            publisher=row.publisher, year=row.year, publication_type=row.material_type
        ),
        service=ServiceInfo(note=row.note),
        patron=PatronInfo(
            patron_id=row.reader_barcode, name=row.reader_name, email=row.email, phone=row.phone
        ),
        delivery=DeliveryInfo(recipient=row.recipient, email=row.email, method=row.delivery),
        language=row.language,
    )


def advance(
    ctx: IllContext,
    tx: Transaction,
    row: IllRequest,
    transition: Transition,
    now: datetime,
    changes: dict[str, object] | None = None,
) -> IllResult:
    """Move the request as `transition` says (with `changes` to its row; borrower
    transitions set no ISO status) and queue what it sends."""
    moved = move(tx, row, transition, now, changes)
    sent = transition.send
    if sent is not None and sent.kind == "Request":
        send(tx, moved, request_message(moved, now), now)
    elif sent is not None and sent.action is not None:
        send(tx, moved, RequestingAgencyMessage(header(moved, now), sent.action), now)
    return IllResult(True, (), moved)


# --- the lender's answers -----------------------------------------------------------------------


def on_supplying_agency_message(
    ctx: IllContext, message: SupplyingAgencyMessage, raw_xml: str | None
) -> Confirmation:
    head = message.header
    lender = ctx.addressed(
        head.requesting_agency, "requestingAgencyId", head.supplying_agency, "supplyingAgencyId"
    )
    if isinstance(lender, Confirmation):  # I7
        return lender

    def work(tx: Transaction, now: datetime) -> Confirmation:
        row = ill_storage.request_by_number(tx, head.requesting_agency_request_id, lock=True)
        if row is None or row.role != "borrower" or row.partner != lender.agency_id:
            return Confirmation.error(
                ErrorType.UNRECOGNISED_DATA_VALUE,
                f"requestingAgencyRequestId {head.requesting_agency_request_id}:"
                " request with a given ID not found",
            )
        received(tx, row.id, message, now, raw_xml)
        event = BORROWER_EVENT_OF_STATUS[message.status]
        if (
            event is BorrowerEvent.UNFILLED_NEXT
            and message.reason_for_message is ReasonForMessage.NOTIFICATION
        ):
            # A broker (CrossLink) tells us so of each of its own lenders that could not
            # supply while it works through its rota: news, not its answer; ours stays.
            return Confirmation.accepted()
        left = row.rota_index + 1 < len(row.lenders)
        if event is BorrowerEvent.UNFILLED_NEXT and not left:
            event = BorrowerEvent.UNFILLED_LAST
        try:
            transition = borrower_step(row.state, event)
        except IllegalTransition:
            # Tolerated (research note §1.6): recorded, confirmed, nothing changes.
            return Confirmation.accepted()
        changes: dict[str, object] = {"status": message.status.value}
        if head.supplying_agency_request_id:
            changes["supplying_agency_request_id"] = head.supplying_agency_request_id
        if message.due_date is not None:
            changes["due_at"] = stamp(message.due_date)
        if message.reason_unfilled or message.reason_retry:
            changes["reason"] = message.reason_unfilled or message.reason_retry
        if event is BorrowerEvent.UNFILLED_NEXT and transition.next == BorrowerState.SENT:
            following = ctx.settings.partner(row.lenders[row.rota_index + 1])
            changes.update(
                rota_index=row.rota_index + 1,
                partner=following.agency_id if following else row.lenders[row.rota_index + 1],
                partner_url=following.url if following else "",
                supplying_agency_request_id="",
                status="",
            )
        advance(ctx, tx, row, transition, now, changes)
        notice = _notice_for(row, event, transition)
        if notice:
            _tell_reader(ctx, tx, row, notice, now, lender=lender.name or lender.agency_id)
        return Confirmation.accepted()

    return ctx.core.write(work)


def _notice_for(row: IllRequest, event: BorrowerEvent, transition: Transition) -> str:
    if event is BorrowerEvent.EXPECT and row.state == BorrowerState.SENT:
        return "ill_accepted"
    if event is BorrowerEvent.UNFILLED_LAST and transition.next == BorrowerState.END_OF_ROTA:
        return "ill_unfilled"
    if event is BorrowerEvent.OVERDUE:
        return "ill_overdue"
    return ""


def _tell_reader(
    ctx: IllContext, tx: Transaction, row: IllRequest, kind: str, now: datetime, **values: str
) -> None:
    """A notice to the reader, at the reader's address or else the form's (I5: queued only;
    sending is the notice outbox's, and its failures fail nothing)."""
    if row.patron_pk is None:
        return
    patron = storage.patron_by_pk(tx, row.patron_pk)
    if not EMAIL.match(patron.email or ""):
        patron = replace(patron, email=row.email)
    queue_notice(
        tx,
        patron,
        kind,
        stamp(now),
        ctx.core.policy.circulation.language,
        title=row.title,
        number=row.number or "",
        **values,
    )


# --- staff actions ------------------------------------------------------------------------------


def receive(ctx: IllContext, number: str) -> IllResult:
    """The book arrived: Received to the lender, and a temporary copy trapped on our hold
    shelf for the reader (R9's pickup period, R10's desk), who is told."""
    policy = ctx.core.policy

    def work(tx: Transaction, now: datetime) -> IllResult:
        row = locked_request(tx, number, "borrower")
        if isinstance(row, Reason):
            return IllResult(False, (row,))
        transition = step_or_reason(row, BorrowerEvent.RECEIVE, "receive")
        if isinstance(transition, Reason):
            return IllResult(False, (transition,), row)
        assert row.patron_pk is not None and row.number is not None
        at = stamp(now)
        bib = BibRecord(
            format="unimarc",
            control_number=row.number,
            title=row.title,
            publisher=row.publisher,
            names=(Name(row.author),) if row.author else (),
        )
        record_pk = ill_storage.insert_temporary_record(
            tx, TEMPORARY_DATABASE, row.number, row.title, row.author, bib.to_json()
        )
        barcode = COPY_PREFIX + row.number
        location = ""
        item_pk = ill_storage.insert_temporary_copy(
            tx, barcode, record_pk, location, ILL_COPY_TYPE, policy.circulation.on_hold_shelf_status
        )
        copy = storage.copy_by_pk(tx, item_pk)
        patron = storage.patron_by_pk(tx, row.patron_pk, lock=True)
        deadline, desk = _trap_for_reader(ctx, tx, copy, patron, now)
        attached = {"record_pk": record_pk, "item_pk": item_pk, "barcode": barcode}
        result = advance(ctx, tx, row, transition, now, attached)
        _tell_reader(ctx, tx, row, "ill_arrived", now, deadline=deadline, desk=desk)
        storage.log_event(
            tx,
            at,
            "ill_received",
            Channel.ILL,
            patron_pk=patron.pk,
            item_pk=item_pk,
            record_pk=record_pk,
        )
        return result

    return ctx.core.write(work)


def _trap_for_reader(
    ctx: IllContext, tx: Transaction, copy: Copy, patron: Patron, now: datetime
) -> tuple[str, str]:
    """A ready hold of the reader on the borrowed copy: the hold shelf's rules apply to it
    from now on (R14 checkout by that reader only, R9 pickup deadline, R10 desk)."""
    policy = ctx.core.policy
    at = stamp(now)
    hold_id = storage.insert_hold(
        tx, patron.pk, copy.record_pk, at, stamp(now + policy.request_period), Channel.ILL
    )
    deadline = stamp(now + policy.pickup_period)  # R9
    desk = policy.desk_for(copy.location)  # R10
    storage.make_ready(tx, hold_id, copy.pk, at, deadline, desk)
    storage.log_event(
        tx,
        at,
        "hold_trapped",
        Channel.ILL,
        patron_pk=patron.pk,
        item_pk=copy.pk,
        record_pk=copy.record_pk,
        hold_id=hold_id,
        pickup_deadline=deadline,
        pickup_desk=desk,
    )
    return deadline, desk


def ship_return(ctx: IllContext, number: str) -> IllResult:
    """Send the book back to its lender (ShippedReturn). A copy the reader never collected
    goes back too: its hold is cancelled. One still on loan to the reader cannot."""

    def work(tx: Transaction, now: datetime) -> IllResult:
        row = locked_request(tx, number, "borrower")
        if isinstance(row, Reason):
            return IllResult(False, (row,))
        transition = step_or_reason(row, BorrowerEvent.SHIP_RETURN, "return")
        if isinstance(transition, Reason):
            return IllResult(False, (transition,), row)
        if row.item_pk is not None:
            loan = storage.open_loan_of_copy(tx, row.item_pk)
            if loan is not None:
                why = reason("ill_not_now", number=number, state="on loan", action="return")
                return IllResult(False, (why,), row)
            ready = storage.ready_hold_of_copy(tx, row.item_pk)
            if ready is not None:
                storage.close_hold(tx, ready.id, HoldState.CANCELLED, stamp(now))
            storage.set_copy_status(tx, row.item_pk, SENT_BACK_STATUS)
        return advance(ctx, tx, row, transition, now)

    return ctx.core.write(work)


def cancel(ctx: IllContext, number: str) -> IllResult:
    """Ask the lender to cancel (before it shipped; its answer decides)."""
    return _ask(ctx, number, BorrowerEvent.CANCEL, "cancel")


def renew(ctx: IllContext, number: str) -> IllResult:
    """Ask the lender to renew (its RenewResponse decides, and brings the new due date)."""
    return _ask(ctx, number, BorrowerEvent.RENEW, "renew")


def _ask(ctx: IllContext, number: str, event: BorrowerEvent, action: str) -> IllResult:
    def work(tx: Transaction, now: datetime) -> IllResult:
        row = locked_request(tx, number, "borrower")
        if isinstance(row, Reason):
            return IllResult(False, (row,))
        transition = step_or_reason(row, event, action)
        if isinstance(transition, Reason):
            return IllResult(False, (transition,), row)
        return advance(ctx, tx, row, transition, now)

    return ctx.core.write(work)


def reader_returned(tx: Transaction, row: IllRequest, item_pk: int, now: datetime) -> None:
    """The reader returned the borrowed copy at the desk: it waits to go back to its lender
    (not to the shelf)."""
    transition = borrower_step(row.state, BorrowerEvent.READER_RETURN)
    ill_storage.update_request(tx, row.id, state=transition.next, updated_at=stamp(now))
    storage.set_copy_status(tx, item_pk, SENT_BACK_STATUS)


def set_reader(ctx: IllContext, patron_barcode: str, state: str) -> IllResult:
    """I7: ILL staff confirm (or revoke) a reader's registration for interlibrary loan."""

    def work(tx: Transaction, now: datetime) -> IllResult:
        patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
        if patron is None:
            return IllResult(False, (reason("patron_unknown", patron=patron_barcode),))
        ill_storage.set_reader_state(tx, patron.pk, state, stamp(now))
        storage.log_event(tx, stamp(now), f"ill_reader_{state}", Channel.ILL, patron_pk=patron.pk)
        return IllResult(True)

    return ctx.core.write(work)
