"""The outbox table: which notices are due, and recording each attempt. Synchronous SQL, run
from the reactor's thread pool."""

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


def due_notices(store: Store, now: datetime, limit: int = 50) -> list[Notice]:
    with store.read() as tx:
        rows = tx.execute(
            f"SELECT {COLUMNS} FROM notices WHERE state = 'queued' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, id LIMIT ?",
            (stamp(now), limit),
        )
    return [Notice(*row) for row in rows]


def mark_sent(store: Store, notice_id: int, now: datetime) -> None:
    with store.write() as tx:
        tx.execute(
            "UPDATE notices SET state = 'sent', sent_at = ?, attempts = attempts + 1,"
            " last_error = '' WHERE id = ?",
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
            "UPDATE notices SET attempts = ?, state = ?, next_attempt_at = ?, last_error = ?"
            " WHERE id = ?",
            (attempts, state, stamp(now + delay), error[:500], notice.id),
        )
    return state


def list_notices(store: Store, failed_only: bool = False) -> list[Notice]:
    where = "WHERE state = 'failed' OR (state = 'queued' AND attempts > 0)" if failed_only else ""
    with store.read() as tx:
        rows = tx.execute(f"SELECT {COLUMNS} FROM notices {where} ORDER BY id")
    return [Notice(*row) for row in rows]
