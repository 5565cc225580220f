"""Our outgoing ISO 18626 messages: the engine queues them in the transaction of the decision
that sends them; the ill/ front-end's sender claims the due ones, POSTs them, and records what
came of each. A partner that is down delays its messages and loses none (I5): a failed attempt
is tried again after a delay that doubles from the request's first_retry_seconds up to an
hour, until delivered ([ill] max_attempts 0) or max_attempts is spent.

Claims follow the notices outbox (gateway/notify/outbox.py): a claim names the sender and lasts
a lease; PostgreSQL takes it with FOR UPDATE SKIP LOCKED, SQLite's writers are one at a time.
Messages of one request to one partner go out in order: a message is not due while an earlier
one of its request to the same url is still queued (claimed or not).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.circulation import ill_storage
from gateway.circulation.clock import stamp
from gateway.circulation.ill_json import from_json, to_json
from gateway.circulation.ill_types import Confirmation, Message, Request, Status
from gateway.store import Store, Transaction
from gateway.store.engine import Row

MAX_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True)
class OutgoingMessage:
    id: int
    url: str  # the partner's ISO 18626 endpoint (from [[ill.partners]] url)
    message: Message  # ill_types.Request | SupplyingAgencyMessage | RequestingAgencyMessage
    attempts: int


def claim_due(
    store: Store, now: datetime, sender: str, lease: timedelta, limit: int
) -> list[OutgoingMessage]:
    """Claim up to `limit` due messages nobody holds a live claim on, for `lease`; at most one
    per request and url (the earliest), so that they go out in order."""
    at = stamp(now)
    with store.write() as tx:
        skip_locked = f"{tx.for_update} SKIP LOCKED" if tx.for_update else ""
        rows = tx.execute(
            "SELECT o.id, o.url, o.message, o.attempts FROM ill_outbox o"
            " WHERE o.state = 'queued' AND o.next_attempt_at <= ?"
            " AND (o.claimed_until IS NULL OR o.claimed_until <= ?)"
            " AND NOT EXISTS (SELECT 1 FROM ill_outbox e WHERE e.request_pk = o.request_pk"
            " AND e.url = o.url AND e.state = 'queued' AND e.id < o.id)"
            f" ORDER BY o.next_attempt_at, o.id LIMIT ?{skip_locked}",
            (at, at, limit),
        )
        claimed = [OutgoingMessage(int(r[0]), r[1], from_json(r[2]), int(r[3])) for r in rows]
        until = stamp(now + lease)
        for message in claimed:
            tx.execute(
                "UPDATE ill_outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                (sender, until, message.id),
            )
    return claimed


def _claim_held(tx: Transaction, message_id: int, sender: str | None) -> Row | None:
    """The message's request_pk, attempts and retry settings, locked; None when `sender` is
    named and no longer holds its claim (its lease ran out and another sender took the message,
    which records its own outcome: the slower sender's would overwrite it)."""
    sql = "SELECT request_pk, attempts, first_retry_seconds, max_attempts, url, message"
    sql += " FROM ill_outbox"
    if sender is None:
        return tx.one(f"{sql} WHERE id = ?{tx.for_update}", (message_id,))
    return tx.one(f"{sql} WHERE id = ? AND claimed_by = ?{tx.for_update}", (message_id, sender))


def record_delivered(
    store: Store,
    message_id: int,
    now: datetime,
    confirmation: Confirmation,
    *,
    sender: str | None = None,
) -> None:
    """The partner confirmed the message (OK, or ERROR: it got it, and sending it again would
    not change its answer). An ERROR goes into the request's history for staff to see. With
    `sender`, only while that sender holds the claim."""
    at = stamp(now)
    with store.write() as tx:
        row = _claim_held(tx, message_id, sender)
        if row is None:
            return
        request_pk = row[0]
        tx.execute(
            "UPDATE ill_outbox SET state = 'delivered', delivered_at = ?,"
            " attempts = attempts + 1, last_error = '', confirmation = ?,"
            " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
            (at, to_json(confirmation), message_id),
        )
        if request_pk is not None and confirmation.ok and isinstance(from_json(row[5]), Request):
            # The lender confirmed our request: it has received it (ISO 18626 RequestReceived),
            # until it says more.
            ill_storage.lender_confirmed_request(
                tx, int(request_pk), str(row[4]), Status.REQUEST_RECEIVED.value
            )
        if request_pk is not None and not confirmation.ok:
            ill_storage.add_message(
                tx,
                int(request_pk),
                at,
                "in",
                "Confirmation",
                status="ERROR",
                note=f"{confirmation.error_type or ''}: {confirmation.error_value}"[:500],
                outbox_pk=message_id,
            )


def record_failed(
    store: Store, message_id: int, now: datetime, error: str, *, sender: str | None = None
) -> str | None:
    """A failed attempt (no answer, a refused connection, an HTTP error): try again later.
    With `sender`, only while that sender holds the claim. The message's state now: queued
    (tried again later) or failed (its attempts used up); None if the claim was not held."""
    with store.write() as tx:
        row = _claim_held(tx, message_id, sender)
        if row is None:
            return None
        attempts = int(row[1]) + 1
        first, most = int(row[2]), int(row[3])
        delay = min(timedelta(seconds=first * 2 ** min(attempts - 1, 20)), MAX_BACKOFF)
        state = "failed" if most and attempts >= most else "queued"
        tx.execute(
            "UPDATE ill_outbox SET attempts = ?, state = ?, next_attempt_at = ?, last_error = ?,"
            " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
            (attempts, state, stamp(now + delay), error[:500], message_id),
        )
    return state


def record_sent_xml(store: Store, message_id: int, raw_xml: str) -> None:
    """Keep the XML the sender made of a message in the request's history (optional)."""
    with store.write() as tx:
        tx.execute(
            "UPDATE ill_messages SET raw_xml = ? WHERE outbox_pk = ? AND direction = 'out'",
            (raw_xml, message_id),
        )


@dataclass(frozen=True)
class OutboxEntry:
    """What staff and tests see of one outgoing message."""

    id: int
    request_pk: int
    url: str
    message: Message
    state: str
    attempts: int
    next_attempt_at: str
    last_error: str


def pending(store: Store) -> list[OutboxEntry]:
    """Messages not yet delivered, oldest first."""
    with store.read() as tx:
        rows = tx.execute(
            "SELECT id, request_pk, url, message, state, attempts, next_attempt_at, last_error"
            " FROM ill_outbox WHERE state <> 'delivered' ORDER BY id"
        )
    return [
        OutboxEntry(int(r[0]), int(r[1]), r[2], from_json(r[3]), r[4], int(r[5]), r[6], r[7])
        for r in rows
    ]
