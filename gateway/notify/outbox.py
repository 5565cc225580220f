"""The outbox table: which notices are due, claiming one for sending, and recording each
attempt. Synchronous SQL, run from the reactor's thread pool.

Several `serve` processes may share one database, so a sender claims a notice before sending
it: the claim names the sender and lasts a lease, and no other sender takes a notice under a
live claim. A sender that dies holding a claim only delays its notice until the lease ends.
PostgreSQL takes the claim with `FOR UPDATE SKIP LOCKED` (two senders never wait on, or both
take, one row); SQLite's write transactions are already one at a time across processes
(`BEGIN IMMEDIATE`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.circulation.clock import stamp
from gateway.store import Store

MAX_BACKOFF = timedelta(hours=6)


@dataclass(frozen=True)
class Notice:
    id: int
    kind: str
    to_address: str
    subject: str
    body: str
    attempts: int
    state: str
    last_error: str
    created_at: str


COLUMNS = "id, kind, to_address, subject, body, attempts, state, last_error, created_at"


def claim_next(store: Store, now: datetime, sender: str, lease: timedelta) -> Notice | None:
    """Claim the next due notice nobody holds a live claim on, for `lease`; None when there
    is none. Only the claimant sends it (until the lease ends)."""
    at = stamp(now)
    with store.write() as tx:
        # PostgreSQL: a row another sender is claiming right now is passed over, not waited
        # for; one it has claimed and committed fails the claimed_until test.
        skip_locked = f"{tx.for_update} SKIP LOCKED" if tx.for_update else ""
        row = tx.one(
            f"SELECT {COLUMNS} FROM notices WHERE state = 'queued' AND next_attempt_at <= ?"
            " AND (claimed_until IS NULL OR claimed_until <= ?)"
            f" ORDER BY next_attempt_at, id LIMIT 1{skip_locked}",
            (at, at),
        )
        if row is None:
            return None
        notice = Notice(*row)
        tx.execute(
            "UPDATE notices SET claimed_by = ?, claimed_until = ? WHERE id = ?",
            (sender, stamp(now + lease), notice.id),
        )
    return notice


def mark_sent(store: Store, notice_id: int, now: datetime) -> None:
    with store.write() as tx:
        tx.execute(
            "UPDATE notices SET state = 'sent', sent_at = ?, attempts = attempts + 1,"
            " last_error = '', claimed_by = NULL, claimed_until = NULL WHERE id = ?",
            (stamp(now), notice_id),
        )


def mark_failed_attempt(
    store: Store,
    notice: Notice,
    now: datetime,
    error: str,
    max_attempts: int,
    first_retry_seconds: int,
) -> str:
    """Record a failed attempt; returns the notice's new state (queued again, or failed)."""
    attempts = notice.attempts + 1
    delay = min(timedelta(seconds=first_retry_seconds * 2 ** (attempts - 1)), MAX_BACKOFF)
    state = "failed" if attempts >= max_attempts else "queued"
    with store.write() as tx:
        tx.execute(
            "UPDATE notices SET attempts = ?, state = ?, next_attempt_at = ?, last_error = ?,"
            " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
            (attempts, state, stamp(now + delay), error[:500], notice.id),
        )
    return state


def list_notices(store: Store, failed_only: bool = False) -> list[Notice]:
    where = "WHERE state = 'failed' OR (state = 'queued' AND attempts > 0)" if failed_only else ""
    with store.read() as tx:
        rows = tx.execute(f"SELECT {COLUMNS} FROM notices {where} ORDER BY id")
    return [Notice(*row) for row in rows]
