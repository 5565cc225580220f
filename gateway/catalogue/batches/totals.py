"""What `/metrics` shows of the batches (gateway/metrics.BatchCollector): how many there are
by kind and state, and their records by outcome. Loads run in the `libgate load` process, which
nobody scrapes, so the serving process reads these from the store instead of counting.

Cheap at any catalogue size: one row per batch (a site has hundreds to thousands), each
finished batch's outcome counts already summed in its `counts` column; only a batch still
marked running has its `batch_records` counted (by its index, while it loads). Batches recorded
before schema version 12 (`detailed` = 0) have no outcome counts: they count as batches only.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from gateway.catalogue.batches.storage import outcome_counts
from gateway.catalogue.batches.undo import state_as_it_is
from gateway.store import Transaction


@dataclass
class BatchTotals:
    batches: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, state)
    records: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, outcome)


def batch_totals(tx: Transaction) -> BatchTotals:
    totals = BatchTotals()
    for batch_id, kind, state, host, pid, counts in tx.execute(
        "SELECT id, kind, state, host, pid, counts FROM batches"
    ):
        kind = str(kind)
        pid = int(pid) if pid is not None else None
        totals.batches[(kind, state_as_it_is(str(state), str(host), pid))] += 1
        # A running batch (or one killed before it finished) has not summed its counts yet.
        outcomes = (
            outcome_counts(tx, int(batch_id)) if state == "running" else json.loads(counts or "{}")
        )
        for outcome, count in outcomes.items():
            totals.records[(kind, str(outcome))] += int(count)
    return totals


__all__ = ["BatchTotals", "batch_totals"]
