"""Readers' web sessions kept in the store (schema 0011), on both engines: open, find, a fresh
token at each login, the idle timeout, logout, pruning; the token itself is never stored, and a
session opened through one store is found through another on the same database (another
worker process)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.circulation.clock import FixedClock, stamp
from gateway.circulation.engine import Engine
from gateway.circulation.web_sessions import (
    WebSession,
    close_session,
    find_session,
    open_session,
    prune_sessions,
)
from gateway.store import Store, open_store
from tests.circulation_support import build_library

IDLE = timedelta(minutes=30)


@pytest.fixture
def library(store: Store, tmp_path: Path) -> tuple[Engine, FixedClock, Store]:
    engine, clock = build_library(store, tmp_path)
    return engine, clock, store


def stored_rows(store: Store) -> list[tuple[object, ...]]:
    with store.read() as tx:
        return [
            tuple(row)
            for row in tx.execute(
                "SELECT token_hash, patron_pk, csrf_token, created_at, last_seen_at, address"
                " FROM web_sessions ORDER BY created_at, token_hash"
            )
        ]


def test_a_session_opened_at_login_is_found_by_its_token(library) -> None:
    _, clock, store = library
    token, session = open_session(store, "A", "192.0.2.7", clock.now())
    at = stamp(clock.now())
    assert session == WebSession("A", "甲", session.csrf_token, at, at)
    assert len(token) >= 43 and len(session.csrf_token) >= 43 and token != session.csrf_token
    assert find_session(store, token, clock.now(), IDLE) == session
    assert find_session(store, token + "x", clock.now(), IDLE) is None
    assert find_session(store, "", clock.now(), IDLE) is None
    [row] = stored_rows(store)
    assert row[0] == hashlib.sha256(token.encode()).hexdigest() and row[5] == "192.0.2.7"


def test_the_token_is_never_stored(library) -> None:
    _, clock, store = library
    tokens = [open_session(store, reader, "", clock.now())[0] for reader in ("A", "B", "A")]
    for row in stored_rows(store):
        for token in tokens:
            assert all(token not in str(value) for value in row)


def test_each_login_gets_a_new_token_and_logout_ends_only_its_session(library) -> None:
    _, clock, store = library
    old, old_session = open_session(store, "A", "", clock.now())
    new, new_session = open_session(store, "A", "", clock.now())  # logging in again
    assert new != old and new_session.csrf_token != old_session.csrf_token
    close_session(store, old)  # the portal ends the session the browser had
    assert find_session(store, old, clock.now(), IDLE) is None
    assert find_session(store, new, clock.now(), IDLE) == new_session
    close_session(store, old)  # twice is harmless
    close_session(store, new)
    assert find_session(store, new, clock.now(), IDLE) is None and stored_rows(store) == []


def test_an_unknown_reader_gets_no_session(library) -> None:
    _, clock, store = library
    with pytest.raises(LookupError):
        open_session(store, "NOBODY", "", clock.now())
    assert stored_rows(store) == []


def test_a_session_idle_too_long_is_gone_and_use_keeps_one_alive(library) -> None:
    _, clock, store = library
    token, _ = open_session(store, "A", "", clock.now())
    for _ in range(4):  # used every 20 minutes, it outlives the 30 idle minutes
        clock.advance(minutes=20)
        found = find_session(store, token, clock.now(), IDLE)
        assert found is not None and found.last_seen_at == stamp(clock.now())
    clock.advance(minutes=30)
    assert find_session(store, token, clock.now(), IDLE) is not None  # exactly the limit
    clock.advance(minutes=30, seconds=1)
    assert find_session(store, token, clock.now(), IDLE) is None
    assert stored_rows(store) == []  # deleted, not only refused
    clock.advance(seconds=-1)  # nor does it come back
    assert find_session(store, token, clock.now(), IDLE) is None


def test_last_seen_is_written_at_most_once_a_minute(library) -> None:
    _, clock, store = library
    token, session = open_session(store, "A", "", clock.now())
    clock.advance(seconds=59)
    found = find_session(store, token, clock.now(), IDLE)
    assert found is not None and found.last_seen_at == session.created_at
    assert stored_rows(store)[0][4] == session.created_at
    clock.advance(seconds=1)
    found = find_session(store, token, clock.now(), IDLE)
    assert found is not None and found.last_seen_at == stamp(clock.now())
    assert stored_rows(store)[0][4] == stamp(clock.now())


def test_a_blocked_readers_session_still_reads_but_the_engine_refuses_actions(library) -> None:
    engine, clock, store = library
    token, _ = open_session(store, "A", "", clock.now())
    assert engine.block_patron("A", "lost card").ok
    found = find_session(store, token, clock.now(), IDLE)
    assert found is not None and found.patron_barcode == "A"
    assert engine.checkout("D", "O1").ok
    refused = engine.place_hold(found.patron_barcode, record=("main", "T-ONE"))
    assert [r.code for r in refused.reasons] == ["patron_blocked"]


def test_pruning_deletes_only_idle_sessions(library) -> None:
    _, clock, store = library
    idle_one, _ = open_session(store, "A", "", clock.now())
    clock.advance(minutes=20)
    busy_one, _ = open_session(store, "B", "", clock.now())
    clock.advance(minutes=11)  # A's idle 31 minutes, B's 11
    assert prune_sessions(store, clock.now(), IDLE) == 1
    assert find_session(store, idle_one, clock.now(), IDLE) is None
    assert find_session(store, busy_one, clock.now(), IDLE) is not None
    assert prune_sessions(store, clock.now(), IDLE) == 0
    clock.advance(hours=1)
    assert prune_sessions(store, clock.now(), IDLE) == 1 and stored_rows(store) == []


def test_a_session_is_shared_by_every_process_on_the_database(library, store_url: str) -> None:
    _, clock, store = library
    token, session = open_session(store, "A", "", clock.now())
    other = open_store(store_url)  # what another worker process opens
    try:
        assert find_session(other, token, clock.now(), IDLE) == session
        close_session(other, token)
    finally:
        other.close()
    assert find_session(store, token, clock.now(), IDLE) is None


def test_a_readers_sessions_go_with_the_reader(library) -> None:
    _, clock, store = library
    token, _ = open_session(store, "C", "", clock.now())
    with store.write() as tx:
        tx.execute("DELETE FROM patrons WHERE barcode = 'C'")
    assert stored_rows(store) == [] and find_session(store, token, clock.now(), IDLE) is None
