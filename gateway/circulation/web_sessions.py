"""Readers' web sessions (the portal's login), kept in the store (table `web_sessions`, schema
0011) so every worker process, and every gateway on one PostgreSQL, shares them.

A session belongs to a reader's account: it is opened after the reader's PIN was checked
(pin_guard.py), and holds a random token (the cookie) and a CSRF token for the forms that
change something. Only the token's SHA-256 is stored, so the table lets nobody in. A login
always opens a new session with a new token (the token rotates at login); a session ends at
logout, after `idle` without use, or with its reader. A blocked reader's session still shows
the account: the engine refuses the actions themselves.

Time is given by the caller (the engine's clock), stored as the engine's stamps.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from gateway.circulation import storage
from gateway.circulation.clock import stamp
from gateway.store import Store

TOKEN_BYTES = 32
# A session in use is marked seen at most this often: a page load must not cost a write each.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class WebSession:
    """A reader logged in to the portal, as a request sees it."""

    patron_barcode: str
    patron_name: str
    csrf_token: str  # to compare with the token a state-changing form carries
    created_at: str  # the login
    last_seen_at: str  # the last use (to TOUCH_INTERVAL); the idle timeout runs from here


def token_hash(token: str) -> str:
    """What the store keeps of a session token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(
    store: Store, patron_barcode: str, address: str, now: datetime
) -> tuple[str, WebSession]:
    """A new session for a reader whose PIN was just checked: (its token, the session).
    Raises LookupError when there is no such reader."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    csrf_token = secrets.token_urlsafe(TOKEN_BYTES)
    at = stamp(now)
    with store.write() as tx:
        patron = storage.patron_by_barcode(tx, patron_barcode)
        if patron is None:
            raise LookupError(f"no reader with card number {patron_barcode!r}")
        tx.execute(
            "INSERT INTO web_sessions (token_hash, patron_pk, csrf_token, created_at,"
            " last_seen_at, address) VALUES (?, ?, ?, ?, ?, ?)",
            (token_hash(token), patron.pk, csrf_token, at, at, address),
        )
    return token, WebSession(patron.barcode, patron.name, csrf_token, at, at)


def find_session(store: Store, token: str, now: datetime, idle: timedelta) -> WebSession | None:
    """The session of a cookie's token; None when there is none, or when it was idle longer
    than `idle` (it is then deleted). A session found is marked seen `now` (at most once per
    TOUCH_INTERVAL)."""
    key = token_hash(token)
    with store.read_statement() as tx:
        row = tx.one(
            "SELECT p.barcode, p.name, s.csrf_token, s.created_at, s.last_seen_at"
            " FROM web_sessions s JOIN patrons p ON p.id = s.patron_pk WHERE s.token_hash = ?",
            (key,),
        )
    if row is None:
        return None
    session = WebSession(*(str(value) for value in row))
    idle_since = stamp(now - idle)
    if session.last_seen_at < idle_since:
        with store.write() as tx:
            tx.execute(
                "DELETE FROM web_sessions WHERE token_hash = ? AND last_seen_at < ?",
                (key, idle_since),
            )
        return None
    if session.last_seen_at <= stamp(now - TOUCH_INTERVAL):
        seen = stamp(now)
        with store.write() as tx:
            tx.execute(
                "UPDATE web_sessions SET last_seen_at = ? WHERE token_hash = ?"
                " AND last_seen_at < ?",
                (seen, key, seen),
            )
        session = replace(session, last_seen_at=seen)
    return session


def close_session(store: Store, token: str) -> None:
    """Logout: the session ends, whatever state it was in (an unknown token is no error)."""
    with store.write() as tx:
        tx.execute("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash(token),))


def prune_sessions(store: Store, now: datetime, idle: timedelta) -> int:
    """Delete every session idle longer than `idle`; how many went."""
    with store.write() as tx:
        gone = tx.execute(
            "DELETE FROM web_sessions WHERE last_seen_at < ? RETURNING token_hash",
            (stamp(now - idle),),
        )
    return len(gone)
