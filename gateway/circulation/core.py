"""What every part of the engine shares: the store, the policy, the clock, and the one way to
run a decision in a write transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from gateway.circulation.clock import Clock
from gateway.circulation.policy import Policy
from gateway.store import Store, Transaction
from gateway.store.engine import RetryableConflict

T = TypeVar("T")
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class EngineCore:
    store: Store
    policy: Policy
    clock: Clock

    def write(self, work: Callable[[Transaction, datetime], T]) -> T:
        """Run `work` in a write transaction; a conflict the store says is worth retrying (a
        PostgreSQL deadlock or serialisation failure) runs it again, and a constraint
        violation is a refusal, never half a change."""
        attempts = 0
        while True:
            attempts += 1
            try:
                with self.store.write() as tx:
                    return work(tx, self.clock.now())
            except RetryableConflict:
                if attempts < MAX_ATTEMPTS:
                    continue
                raise
