"""`libgate batches undo N`: take a batch back, in one transaction.

A load: copies it created go, unless they have circulated since (a loan, hold, ILL request or
audit event names them: listed and kept); copies it re-described get their description back;
records it added go, unless they circulated or still carry copies it did not create (listed
and kept); records it overlaid return to their version before it (stored MARC, identifiers
and browse entries exactly). A delete: records, identifiers, browse entries, copies and the
loans and holds it archived come back, under their former ids when those are free.
Everything else is left alone. The search index catches up from the store's change sequence
(restored records take a new one, removed ones leave tombstones).

Refused, changing nothing: a batch already undone; a batch still running (its process alive on
this host, or on another host); a batch recorded before batches kept outcomes; and a batch
whose records or copies a later batch (not undone) changed again: the later ones must be
undone first, newest first (the refusal names them). Undoing batches in any other order
would restore a version a later batch had replaced, so it is not offered.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.catalogue import repository
from gateway.catalogue.batches import storage
from gateway.catalogue.textindex import index_for, next_change_seq
from gateway.circulation.withdrawal import circulated
from gateway.store import Store, Transaction

# A test hook (tests/test_batches_kill.py): `inside:PATH` or `after:PATH` makes an undo write
# PATH and sleep there, inside its transaction or just after its commit, so a test can kill it.
PAUSE_ENV = "LIBGATE_TEST_UNDO_PAUSE"
INDEX_WAIT_SECONDS = 5.0


class UndoRefused(Exception):
    """Nothing was changed; the message says why."""


@dataclass
class UndoResult:
    batch: int
    removed_records: list[str] = field(default_factory=list)
    restored_records: list[str] = field(default_factory=list)
    removed_copies: list[str] = field(default_factory=list)
    restored_copies: list[str] = field(default_factory=list)
    kept: list[dict[str, str]] = field(default_factory=list)  # {"what", "why"}
    index_current: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "removed_records": self.removed_records,
            "restored_records": self.restored_records,
            "removed_copies": self.removed_copies,
            "restored_copies": self.restored_copies,
            "kept": self.kept,
        }


def effective_state(batch: storage.BatchSummary) -> str:
    """A batch's state as it is: `running` only while its process lives (one killed with
    kill -9 never recorded its end: it is interrupted)."""
    return state_as_it_is(batch.state, batch.host, batch.pid)


def state_as_it_is(state: str, host: str, pid: int | None) -> str:
    """`effective_state` from a batch row's state, host and pid columns."""
    if state != "running":
        return state
    if host == socket.gethostname() and pid is not None and not _alive(pid):
        return "interrupted"
    return "running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def undo_batch(store: Store, batch_id: int, by: str) -> UndoResult:
    """Undo batch `batch_id` (see the module docstring); UndoRefused when it may not be."""
    result = UndoResult(batch_id)
    with store.write() as tx:
        batch = storage.batch_by_id(tx, batch_id, lock=True)
        _check(tx, batch, batch_id)
        assert batch is not None
        if batch.kind == "delete":
            _undo_delete(tx, batch_id, result)
        else:
            _undo_load(tx, batch_id, result)
        storage.mark_undone(tx, batch_id, _now(), by, result.as_dict())
        _pause_for_tests("inside")
    _pause_for_tests("after")
    # False when another process writes the index: it catches up, or the next search does.
    result.index_current = index_for(store).catch_up(store, wait_seconds=INDEX_WAIT_SECONDS)
    return result


def _check(tx: Transaction, batch: storage.BatchSummary | None, batch_id: int) -> None:
    if batch is None:
        raise UndoRefused(f"there is no batch {batch_id}")
    if batch.state == "undone":
        raise UndoRefused(f"batch {batch_id} was already undone ({batch.undone_at})")
    if effective_state(batch) == "running":
        where = batch.host if batch.host != socket.gethostname() else "this machine"
        raise UndoRefused(
            f"batch {batch_id} is still running (process {batch.pid} on {where});"
            " undo it when it has finished"
        )
    if not batch.detailed:
        raise UndoRefused(
            f"batch {batch_id} was recorded before batches kept what they changed; it cannot"
            " be undone"
        )
    later = storage.later_batches_touching(tx, batch_id)
    if later:
        newest_first = sorted(later, reverse=True)
        shared = "; ".join(
            f"batch {n}: {', '.join(later[n][:3])}" + (" ..." if len(later[n]) > 3 else "")
            for n in newest_first
        )
        raise UndoRefused(
            f"later batches changed records or copies of batch {batch_id} again ({shared});"
            f" undo {', '.join(str(n) for n in newest_first)} first, newest first"
        )


def _undo_load(tx: Transaction, batch_id: int, result: UndoResult) -> None:
    versions = storage.record_versions(tx, batch_id)
    changes = storage.item_changes(tx, batch_id)
    created = [c for c in changes if c.action == "created"]
    current_items = repository.items_by_barcode(tx, [c.barcode for c in changes])
    records_now: dict[tuple[str, str], repository.StoredRecord] = {}
    for database in sorted({v.database for v in versions}):
        ids = [v.record_id for v in versions if v.database == database]
        for record_id, stored in repository.find_records(tx, database, ids).items():
            records_now[(database, record_id)] = stored
    added = [
        records_now[(v.database, v.record_id)]
        for v in versions
        if v.action == "added"
        if (v.database, v.record_id) in records_now
    ]
    circulated_items, circulated_records = circulated(
        tx,
        [current_items[c.barcode].pk for c in created if c.barcode in current_items],
        [r.pk for r in added],
    )
    # Copies first: a record can only go once its copies have.
    going_items = []
    for change in created:
        item = current_items.get(change.barcode)
        if item is None:
            continue
        if item.pk in circulated_items:
            result.kept.append(
                {
                    "what": f"copy {change.barcode}",
                    "why": f"circulated since: {circulated_items[item.pk]}",
                }
            )
            continue
        going_items.append(item.pk)
        result.removed_copies.append(change.barcode)
    storage.delete_items(tx, going_items)
    for change in changes:
        if change.action == "updated" and change.barcode in current_items:
            storage.restore_item_description(tx, change)
            result.restored_copies.append(change.barcode)
    seq: int | None = None
    going_records: list[int] = []
    touched_headings: set[int] = set()
    for version in versions:
        now = records_now.get((version.database, version.record_id))
        if now is None:
            continue
        stored = now
        label = f"{version.database}/{version.record_id}"
        if version.action == "added":
            if stored.pk in circulated_records:
                result.kept.append(
                    {
                        "what": f"record {label}",
                        "why": f"circulated since: {circulated_records[stored.pk]}",
                    }
                )
                continue
            going_records.append(stored.pk)
        elif version.row is not None and stored.digest != version.row["digest"]:
            seq = seq if seq is not None else next_change_seq(tx)
            touched_headings |= storage.heading_ids_of(tx, [stored.pk])
            storage.overwrite_record(tx, stored.pk, version.row, seq)
            storage.replace_index_rows(
                tx, stored.pk, version.database, version.identifiers, version.headings
            )
            result.restored_records.append(label)
    remaining = repository.copies_left(tx, going_records)
    for stored in [r for r in added if r.pk in remaining]:
        result.kept.append(
            {
                "what": f"record {stored.database}/{stored.record_id}",
                "why": "it has copies this batch did not create, or kept: "
                + ", ".join(remaining[stored.pk][:5]),
            }
        )
    going = [pk for pk in going_records if pk not in remaining]
    touched_headings |= storage.heading_ids_of(tx, going)
    storage.delete_records(tx, going)
    by_pk = {r.pk: r for r in added}
    result.removed_records += [f"{by_pk[pk].database}/{by_pk[pk].record_id}" for pk in going]
    storage.drop_orphan_headings(tx, touched_headings)


def _undo_delete(tx: Transaction, batch_id: int, result: UndoResult) -> None:
    versions = [v for v in storage.record_versions(tx, batch_id) if v.action == "deleted"]
    deleted_items = [c for c in storage.item_changes(tx, batch_id) if c.action == "deleted"]
    for version in versions:
        if repository.find_record(tx, version.database, version.record_id) is not None:
            raise UndoRefused(
                f"record {version.database}/{version.record_id} exists again (loaded since"
                " the delete); it cannot be restored over it"
            )
    taken = repository.items_by_barcode(tx, [c.barcode for c in deleted_items])
    if taken:
        raise UndoRefused(
            f"copy {sorted(taken)[0]} exists again (added since the delete); the deleted copy"
            " cannot be restored over it"
        )
    seq = next_change_seq(tx) if versions else 0
    records: dict[int, int] = {}  # former id → id now
    for version in versions:
        pk = storage.reinsert_record(tx, version, seq)
        records[version.record_pk] = pk
        storage.replace_index_rows(tx, pk, version.database, version.identifiers, version.headings)
        result.restored_records.append(f"{version.database}/{version.record_id}")
    items: dict[int, int] = {}
    for change in deleted_items:
        record_pk = records.get(change.record_pk, change.record_pk)
        if repository.record_by_pk(tx, record_pk) is None:
            raise UndoRefused(
                f"the record of copy {change.barcode} was deleted since; restore it first"
            )
        assert change.item_pk is not None
        items[change.item_pk] = storage.reinsert_item(tx, change, record_pk)
        result.restored_copies.append(change.barcode)
    storage.reinsert_loans(tx, storage.archived_loans(tx, batch_id), items, records)
    storage.reinsert_holds(tx, storage.archived_holds(tx, batch_id), items, records)


def _pause_for_tests(point: str) -> None:
    wanted = os.environ.get(PAUSE_ENV, "")
    where, _, path = wanted.partition(":")
    if where != point or not path:
        return
    Path(path).write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(60)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
