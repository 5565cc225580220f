"""The engine's one write path runs a decision again when the store reports a conflict worth
retrying, and never after a constraint refused it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.circulation.clock import FixedClock
from gateway.circulation.core import MAX_ATTEMPTS, EngineCore
from gateway.circulation.policy import Policy
from gateway.config import settings_from_dict
from gateway.store import Store, Transaction
from gateway.store.engine import IntegrityViolation, RetryableConflict


def _core(store: Store) -> EngineCore:
    policy = Policy.from_settings(settings_from_dict({}))
    return EngineCore(store, policy, FixedClock(datetime(2026, 3, 2, tzinfo=UTC)))


def test_a_conflict_is_retried_until_the_work_succeeds(store: Store) -> None:
    attempts: list[int] = []

    def work(tx: Transaction, now: datetime) -> str:
        attempts.append(1)
        tx.execute(
            "INSERT INTO bib_records (database, record_id, format, marc, bib, title,"
            " digest) VALUES ('main', ?, 'unimarc', ?, '{}', 't', 'd')",
            (f"r{len(attempts)}", b"m"),
        )
        if len(attempts) < MAX_ATTEMPTS:
            raise RetryableConflict("could not serialize access")
        return "done"

    assert _core(store).write(work) == "done"
    assert len(attempts) == MAX_ATTEMPTS
    with store.read() as tx:  # the failed attempts left nothing behind
        assert tx.execute("SELECT record_id FROM bib_records") == [(f"r{MAX_ATTEMPTS}",)]


def test_a_conflict_that_persists_is_raised_after_the_last_attempt(store: Store) -> None:
    attempts: list[int] = []

    def work(tx: Transaction, now: datetime) -> None:
        attempts.append(1)
        raise RetryableConflict("deadlock detected")

    with pytest.raises(RetryableConflict):
        _core(store).write(work)
    assert len(attempts) == MAX_ATTEMPTS


@pytest.mark.parametrize("error", [IntegrityViolation("duplicate"), ValueError("a bug")])
def test_other_errors_are_never_retried(store: Store, error: Exception) -> None:
    attempts: list[int] = []

    def work(tx: Transaction, now: datetime) -> None:
        attempts.append(1)
        raise error

    with pytest.raises(type(error)):
        _core(store).write(work)
    assert attempts == [1]
