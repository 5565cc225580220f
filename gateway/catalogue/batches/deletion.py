"""`libgate records delete` and `libgate items delete`: each run is one transaction and, when
it deletes anything, one batch of kind `delete` that `libgate batches undo` reverses.

Circulation decides what may go (`Engine.withdraw`: a copy on loan, trapped or of a title with
waiting holds is refused with its reason unless `force`; ILL ever refuses), and with `force`
ends the loans and settles the holds first. Then the batch keeps what it removes (the record's
stored row, identifiers and browse entries, the copies, and their closed loans and holds,
which must leave the circulation tables for the rows they name to go), and deletes it. The
audit log (circulation_events) keeps every event. The search index catches up from the
tombstones the deleted records leave.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.catalogue import repository
from gateway.catalogue.batches import storage
from gateway.catalogue.textindex import index_for
from gateway.circulation.engine import Engine
from gateway.circulation.reasons import Reason
from gateway.store import Store, Transaction

INDEX_WAIT_SECONDS = 5.0


@dataclass
class DeletionResult:
    batch: int | None = None  # None: nothing was deleted
    deleted_records: list[str] = field(default_factory=list)
    deleted_copies: list[str] = field(default_factory=list)
    refused: list[tuple[str, tuple[Reason, ...]]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    effects: list[Reason] = field(default_factory=list)  # what --force did to circulation

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "deleted_records": self.deleted_records,
            "deleted_copies": self.deleted_copies,
            "refused": [
                {"what": what, "reasons": [r.as_dict() for r in reasons]}
                for what, reasons in self.refused
            ],
            "missing": self.missing,
            "effects": [r.as_dict() for r in self.effects],
        }


def delete_records(
    store: Store,
    engine: Engine,
    database: str,
    record_ids: list[str],
    *,
    force: bool,
    by: str,
    command: str,
) -> DeletionResult:
    """Delete records of `database` with all their copies."""
    result = DeletionResult()
    with store.write() as tx:
        found = repository.find_records(  # unlocked: the engine locks titles in its order
            tx, database, list(dict.fromkeys(record_ids)), lock=False
        )
        result.missing = [f"{database}/{r}" for r in dict.fromkeys(record_ids) if r not in found]
        pks = [found[r].pk for r in dict.fromkeys(record_ids) if r in found]
        withdrawal = engine.withdraw(tx, record_pks=pks, force=force)
        for record_id, stored in found.items():
            if stored.pk in withdrawal.refused_titles:
                result.refused.append(
                    (f"record {database}/{record_id}", withdrawal.refused_titles[stored.pk])
                )
        going = [pk for pk in pks if pk not in withdrawal.refused_titles]
        result.effects = withdrawal.effects
        if going:
            by_pk = {s.pk: s for s in found.values()}
            rows = []
            for position, record_id in enumerate(dict.fromkeys(record_ids), start=1):
                named = found.get(record_id)
                refused = named is not None and named.pk in withdrawal.refused_titles
                outcome = "missing" if named is None else "refused" if refused else "deleted"
                why = (
                    "; ".join(r.en for r in withdrawal.refused_titles[named.pk])
                    if named is not None and refused
                    else ""
                )
                rows.append(
                    storage.OutcomeRow(
                        position, 0, None, None, database, record_id, outcome, reason=why
                    )
                )
            batch_id = _delete(
                tx,
                _start(database, command, by, force),
                [c.pk for c in withdrawal.copies],
                going,
                rows,
                result,
            )
            result.deleted_records = [f"{database}/{by_pk[pk].record_id}" for pk in going]
            result.deleted_copies = sorted(c.barcode for c in withdrawal.copies)
            storage.finish_batch(
                tx,
                batch_id,
                _now(),
                "done",
                {"deleted": len(going), "copies deleted": len(withdrawal.copies)},
                _report(result),
            )
    _catch_up(store, result)
    return result


def delete_items(
    store: Store,
    engine: Engine,
    barcodes: list[str],
    *,
    force: bool,
    by: str,
    command: str,
) -> DeletionResult:
    """Delete copies by barcode (their records stay)."""
    result = DeletionResult()
    wanted = list(dict.fromkeys(barcodes))
    with store.write() as tx:
        found = repository.items_by_barcode(tx, wanted, lock=False)  # the engine locks them
        result.missing = [b for b in wanted if b not in found]
        withdrawal = engine.withdraw(
            tx, item_pks=[found[b].pk for b in wanted if b in found], force=force
        )
        for barcode in wanted:
            item = found.get(barcode)
            if item is not None and item.pk in withdrawal.refused_copies:
                result.refused.append((f"copy {barcode}", withdrawal.refused_copies[item.pk]))
        result.effects = withdrawal.effects
        if withdrawal.copies:
            databases = sorted(
                {
                    label.database
                    for label in (
                        repository.record_by_pk(tx, c.record_pk) for c in withdrawal.copies
                    )
                    if label is not None
                }
            )
            batch_id = _delete(
                tx,
                _start(",".join(databases), command, by, force),
                [c.pk for c in withdrawal.copies],
                [],
                [],
                result,
            )
            result.deleted_copies = sorted(c.barcode for c in withdrawal.copies)
            storage.finish_batch(
                tx,
                batch_id,
                _now(),
                "done",
                {"copies deleted": len(withdrawal.copies)},
                _report(result),
            )
    _catch_up(store, result)
    return result


def _start(database: str, command: str, by: str, force: bool) -> storage.BatchStart:
    return storage.BatchStart(
        kind="delete",
        database=database,
        command=command,
        started_at=_now(),
        run_by=by,
        host=socket.gethostname(),
        pid=os.getpid(),
        options={"force": force},
    )


def _delete(
    tx: Transaction,
    start: storage.BatchStart,
    item_pks: list[int],
    record_pks: list[int],
    rows: list[storage.OutcomeRow],
    result: DeletionResult,
) -> int:
    """Keep, then delete, in the batch's (and the caller's) transaction."""
    batch_id = storage.start_batch(tx, start)
    result.batch = batch_id
    storage.keep_versions(tx, batch_id, record_pks, "deleted")
    storage.keep_items_before(tx, batch_id, item_pks, "deleted")
    storage.archive_circulation(tx, batch_id, item_pks, record_pks)
    storage.delete_items(tx, item_pks)
    storage.delete_records(tx, record_pks)
    storage.write_outcomes(tx, batch_id, rows)
    return batch_id


def _report(result: DeletionResult) -> str:
    return json.dumps(result.as_dict(), ensure_ascii=False, sort_keys=True)


def _catch_up(store: Store, result: DeletionResult) -> None:
    if result.batch is not None:  # if another process writes the index, it catches up
        index_for(store).catch_up(store, wait_seconds=INDEX_WAIT_SECONDS)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
