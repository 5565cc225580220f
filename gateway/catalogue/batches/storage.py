"""The batch tables (migration 0012), as small functions over a caller's transaction.

A batch's rows are written in the same transaction as the catalogue change they describe, so
a batch never says more or less than what happened, even after kill -9: a load's committed
store batches are in it, and an undo finds exactly them.

- `batches`: one row per load or delete (the former `load_runs`), with its state;
- `batch_records`: the outcome of every record read or named, in order;
- `record_versions` (+ `version_identifiers`, `version_headings`): each record as it was
  before the batch first touched it (`added`: it did not exist; `changed`: its stored row,
  identifiers and browse entries; `deleted`: the same, and it is gone);
- `batch_items`: copies the batch created, re-described or deleted (with the copy before);
- `batch_loans`, `batch_holds`: the circulation rows a deletion took with its copies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.catalogue.search_index import write_headings
from gateway.store import Transaction

CHUNK = 500
VERSION_COLUMNS = (
    "format",
    "marc",
    "bib",
    "title",
    "author",
    "year",
    "digest",
    "sort_title",
    "sort_author",
)
ITEM_STATE_COLUMNS = (
    "library",
    "location",
    "call_number",
    "item_type",
    "status",
    "source",
    "properties",
)
LOAN_COLUMNS = (
    "id",
    "item_pk",
    "patron_pk",
    "record_pk",
    "checked_out_at",
    "due_at",
    "renewals",
    "returned_at",
    "channel",
)
HOLD_COLUMNS = (
    "id",
    "patron_pk",
    "record_pk",
    "state",
    "placed_at",
    "expires_at",
    "item_pk",
    "ready_at",
    "pickup_deadline",
    "pickup_desk",
    "closed_at",
    "channel",
)


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


# --- a batch's life -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchStart:
    """Who started what, where."""

    kind: str  # load | delete
    database: str
    command: str
    started_at: str
    run_by: str
    host: str
    pid: int
    files: tuple[str, ...] = ()
    options: dict[str, Any] | None = None


def start_batch(tx: Transaction, start: BatchStart) -> int:
    return tx.insert(
        "INSERT INTO batches (kind, started_at, database, command, state, run_by, host, pid,"
        " files, options) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
        (
            start.kind,
            start.started_at,
            start.database,
            start.command,
            start.run_by,
            start.host,
            start.pid,
            json.dumps(list(start.files), ensure_ascii=False),
            json.dumps(start.options or {}, ensure_ascii=False, sort_keys=True),
        ),
    )


def finish_batch(
    tx: Transaction,
    batch_id: int,
    finished_at: str,
    state: str,
    counts: dict[str, int],
    report_json: str | None = None,
) -> None:
    tx.execute(
        "UPDATE batches SET finished_at = ?, state = ?, counts = ?,"
        " report = coalesce(?, report) WHERE id = ?",
        (finished_at, state, json.dumps(counts, sort_keys=True), report_json, batch_id),
    )


def outcome_counts(tx: Transaction, batch_id: int) -> dict[str, int]:
    rows = tx.execute(
        "SELECT outcome, count(*) FROM batch_records WHERE batch_id = ? GROUP BY outcome",
        (batch_id,),
    )
    return {str(outcome): int(count) for outcome, count in rows}


def mark_undone(
    tx: Transaction, batch_id: int, at: str, by: str, undo_report: dict[str, Any]
) -> None:
    tx.execute(
        "UPDATE batches SET state = 'undone', undone_at = ?, undone_by = ?, undo_report = ?"
        " WHERE id = ?",
        (at, by, json.dumps(undo_report, ensure_ascii=False, sort_keys=True), batch_id),
    )


# --- what a load writes with each store batch ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """One record's outcome, as `batch_records` holds it."""

    position: int
    file_no: int
    record_no: int | None
    offset: int | None
    database: str
    record_id: str | None
    outcome: str
    matched_by: str = ""
    matched_id: str | None = None
    copies_created: int = 0
    reason: str = ""
    replaced_by: int | None = None
    changes: list[dict[str, Any]] | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "position": self.position,
            "file": self.file_no,
            "record": self.record_no,
            "offset": self.offset,
            "database": self.database,
            "id": self.record_id,
            "outcome": self.outcome,
            "copies_created": self.copies_created,
        }
        if self.matched_by:
            data["matched_by"] = self.matched_by
        if self.matched_id is not None and self.matched_id != self.record_id:
            data["matched_id"] = self.matched_id
        if self.reason:
            data["reason"] = self.reason
        if self.replaced_by is not None:
            data["replaced_by"] = self.replaced_by
        if self.changes is not None:
            data["changes"] = self.changes
        return data


OUTCOME_COLUMNS = (
    "position, file_no, record_no, record_offset, database, record_id, outcome, matched_by,"
    " matched_id, copies_created, reason, replaced_by, changes"
)


def write_outcomes(tx: Transaction, batch_id: int, rows: list[OutcomeRow]) -> None:
    if not rows:
        return
    tx.executemany(
        f"INSERT INTO batch_records (batch_id, {OUTCOME_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                batch_id,
                r.position,
                r.file_no,
                r.record_no,
                r.offset,
                r.database,
                r.record_id,
                r.outcome,
                r.matched_by,
                r.matched_id,
                r.copies_created,
                r.reason,
                r.replaced_by,
                json.dumps(r.changes, ensure_ascii=False) if r.changes is not None else None,
            )
            for r in rows
        ],
    )


def set_replaced_by(
    tx: Transaction, batch_id: int, file_no: int, record_no: int, replaced_by: int
) -> None:
    tx.execute(
        "UPDATE batch_records SET replaced_by = ? WHERE batch_id = ? AND file_no = ?"
        " AND record_no = ?",
        (replaced_by, batch_id, file_no, record_no),
    )


def earlier_in_file(
    tx: Transaction, batch_id: int, file_no: int, record_ids: list[str]
) -> dict[str, int]:
    """Record id → the number of the latest record of this file with that id that was not
    itself a duplicate (the one a later duplicate is measured against)."""
    found: dict[str, int] = {}
    for chunk in _chunks(record_ids):
        for record_id, number in tx.execute(
            "SELECT record_id, max(record_no) FROM batch_records WHERE batch_id = ?"
            f" AND record_id IN ({_marks(chunk)}) AND file_no = ? AND outcome <> 'duplicate'"
            " GROUP BY record_id",
            (batch_id, *chunk, file_no),
        ):
            found[str(record_id)] = int(number)
    return found


def keep_versions(tx: Transaction, batch_id: int, record_pks: list[int], action: str) -> set[int]:
    """Keep the stored rows (and identifiers and browse entries) of records this batch is
    about to change or delete, unless it kept them already (first touch wins: the version
    before the batch). Returns the records kept now."""
    kept: set[int] = set()
    columns = ", ".join(VERSION_COLUMNS)
    for chunk in _chunks(sorted(set(record_pks))):
        rows = tx.execute(
            "INSERT INTO record_versions (batch_id, record_pk, database, record_id, action,"
            f" {columns}) SELECT ?, id, database, record_id, ?, {columns} FROM bib_records"
            f" WHERE id IN ({_marks(chunk)}) ON CONFLICT DO NOTHING RETURNING record_pk",
            (batch_id, action, *chunk),
        )
        kept.update(int(r[0]) for r in rows)
    for chunk in _chunks(sorted(kept)):
        marks = _marks(chunk)
        tx.execute(
            "INSERT INTO version_identifiers (batch_id, record_pk, kind, value)"
            f" SELECT ?, record_pk, kind, value FROM bib_identifiers WHERE record_pk IN ({marks})",
            (batch_id, *chunk),
        )
        tx.execute(
            "INSERT INTO version_headings (batch_id, record_pk, field, sort_key, heading)"
            " SELECT ?, e.record_pk, h.field, h.sort_key, h.heading FROM browse_entries e"
            f" JOIN browse_headings h ON h.id = e.heading_id WHERE e.record_pk IN ({marks})",
            (batch_id, *chunk),
        )
    return kept


def keep_added(tx: Transaction, batch_id: int, records: list[tuple[int, str, str]]) -> None:
    """Records (pk, database, record id) this batch added: undo removes them."""
    if records:
        tx.executemany(
            "INSERT INTO record_versions (batch_id, record_pk, database, record_id, action)"
            " VALUES (?, ?, ?, ?, 'added') ON CONFLICT DO NOTHING",
            [(batch_id, pk, database, record_id) for pk, database, record_id in records],
        )


def versions_before(
    tx: Transaction, batch_id: int, record_pks: list[int]
) -> dict[int, tuple[str, bytes | None]]:
    """The version before this batch of records it already touched: record pk → (action,
    stored MARC, None for a record the batch added)."""
    found: dict[int, tuple[str, bytes | None]] = {}
    for chunk in _chunks(sorted(set(record_pks))):
        for pk, action, marc in tx.execute(
            "SELECT record_pk, action, marc FROM record_versions WHERE batch_id = ?"
            f" AND record_pk IN ({_marks(chunk)})",
            (batch_id, *chunk),
        ):
            found[int(pk)] = (str(action), bytes(marc) if marc is not None else None)
    return found


def keep_items_before(tx: Transaction, batch_id: int, item_pks: list[int], action: str) -> None:
    """Copies this batch is about to re-describe or delete, as they are (first touch wins)."""
    columns = ", ".join(ITEM_STATE_COLUMNS)
    for chunk in _chunks(sorted(set(item_pks))):
        tx.execute(
            f"INSERT INTO batch_items (batch_id, barcode, action, item_pk, record_pk, {columns})"
            f" SELECT ?, barcode, ?, id, record_pk, {columns} FROM items"
            f" WHERE id IN ({_marks(chunk)}) ON CONFLICT DO NOTHING",
            (batch_id, action, *chunk),
        )


def keep_items_created(tx: Transaction, batch_id: int, items: list[tuple[str, int]]) -> None:
    """Copies (barcode, record pk) this batch created: undo removes them."""
    if items:
        tx.executemany(
            "INSERT INTO batch_items (batch_id, barcode, action, record_pk)"
            " VALUES (?, ?, 'created', ?) ON CONFLICT DO NOTHING",
            [(batch_id, barcode, record_pk) for barcode, record_pk in items],
        )


def stored_marc(tx: Transaction, record_pks: list[int]) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for chunk in _chunks(sorted(set(record_pks))):
        for pk, marc in tx.execute(
            f"SELECT id, marc FROM bib_records WHERE id IN ({_marks(chunk)})", chunk
        ):
            found[int(pk)] = bytes(marc)
    return found


# --- reading batches ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchSummary:
    id: int
    kind: str
    database: str
    command: str
    started_at: str
    finished_at: str | None
    state: str
    run_by: str
    host: str
    pid: int | None
    files: list[str]
    options: dict[str, Any]
    counts: dict[str, int]
    detailed: bool
    undone_at: str | None
    undone_by: str | None
    undo_report: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch": self.id,
            "kind": self.kind,
            "database": self.database,
            "state": self.state,
            "by": self.run_by,
            "started": self.started_at,
            "ended": self.finished_at,
            "files": self.files,
            "options": self.options,
            "counts": self.counts,
            "command": self.command,
            "detailed": self.detailed,
            "undone": self.undone_at,
            "undone_by": self.undone_by,
            "undo": self.undo_report,
        }


BATCH_COLUMNS = (
    "id, kind, database, command, started_at, finished_at, state, run_by, host, pid, files,"
    " options, counts, detailed, undone_at, undone_by, undo_report"
)


def _summary(row: Sequence[Any]) -> BatchSummary:
    return BatchSummary(
        id=int(row[0]),
        kind=str(row[1]),
        database=str(row[2]),
        command=str(row[3]),
        started_at=str(row[4]),
        finished_at=row[5],
        state=str(row[6]),
        run_by=str(row[7]),
        host=str(row[8]),
        pid=int(row[9]) if row[9] is not None else None,
        files=json.loads(row[10] or "[]"),
        options=json.loads(row[11] or "{}"),
        counts=json.loads(row[12] or "{}"),
        detailed=bool(row[13]),
        undone_at=row[14],
        undone_by=row[15],
        undo_report=json.loads(row[16]) if row[16] else None,
    )


def list_batches(tx: Transaction, limit: int | None = None) -> list[BatchSummary]:
    """Newest first."""
    rows = tx.execute(
        f"SELECT {BATCH_COLUMNS} FROM batches ORDER BY id DESC"
        + (f" LIMIT {int(limit)}" if limit else "")
    )
    return [_summary(r) for r in rows]


def batch_by_id(tx: Transaction, batch_id: int, lock: bool = False) -> BatchSummary | None:
    row = tx.one(
        f"SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?" + (tx.for_update if lock else ""),
        (batch_id,),
    )
    return _summary(row) if row else None


def report_of(tx: Transaction, batch_id: int) -> dict[str, Any] | None:
    text = tx.scalar("SELECT report FROM batches WHERE id = ?", (batch_id,))
    return json.loads(text) if text else None


def outcomes(tx: Transaction, batch_id: int) -> list[OutcomeRow]:
    rows = tx.execute(
        f"SELECT {OUTCOME_COLUMNS} FROM batch_records WHERE batch_id = ? ORDER BY position",
        (batch_id,),
    )
    return [
        OutcomeRow(
            position=int(r[0]),
            file_no=int(r[1]),
            record_no=r[2],
            offset=r[3],
            database=str(r[4]),
            record_id=r[5],
            outcome=str(r[6]),
            matched_by=str(r[7] or ""),
            matched_id=r[8],
            copies_created=int(r[9]),
            reason=str(r[10] or ""),
            replaced_by=r[11],
            changes=json.loads(r[12]) if r[12] else None,
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class ItemChange:
    """A copy a batch created, re-described or deleted."""

    barcode: str
    action: str
    item_pk: int | None
    record_pk: int
    before: dict[str, Any] | None  # the copy before the batch (updated, deleted)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"barcode": self.barcode, "action": self.action}
        if self.before is not None:
            data["before"] = self.before
        return data


def item_changes(tx: Transaction, batch_id: int) -> list[ItemChange]:
    columns = ", ".join(ITEM_STATE_COLUMNS)
    rows = tx.execute(
        f"SELECT barcode, action, item_pk, record_pk, {columns} FROM batch_items"
        " WHERE batch_id = ? ORDER BY barcode",
        (batch_id,),
    )
    return [
        ItemChange(
            barcode=str(r[0]),
            action=str(r[1]),
            item_pk=int(r[2]) if r[2] is not None else None,
            record_pk=int(r[3]),
            before=(
                dict(zip(ITEM_STATE_COLUMNS, r[4:], strict=True)) if r[1] != "created" else None
            ),
        )
        for r in rows
    ]


# --- what undo reads ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordVersion:
    """A record before the batch: `added` (it did not exist), `changed` or `deleted` (with
    its stored row, identifiers and browse entries)."""

    record_pk: int
    database: str
    record_id: str
    action: str
    row: dict[str, Any] | None  # VERSION_COLUMNS → value
    identifiers: list[tuple[str, str]]
    headings: list[tuple[str, str, str]]


def record_versions(tx: Transaction, batch_id: int) -> list[RecordVersion]:
    columns = ", ".join(VERSION_COLUMNS)
    rows = tx.execute(
        f"SELECT record_pk, database, record_id, action, {columns} FROM record_versions"
        " WHERE batch_id = ? ORDER BY record_pk",
        (batch_id,),
    )
    identifiers: dict[int, list[tuple[str, str]]] = {}
    for pk, kind, value in tx.execute(
        "SELECT record_pk, kind, value FROM version_identifiers WHERE batch_id = ?"
        " ORDER BY record_pk, kind, value",
        (batch_id,),
    ):
        identifiers.setdefault(int(pk), []).append((str(kind), str(value)))
    headings: dict[int, list[tuple[str, str, str]]] = {}
    for pk, field, key, heading in tx.execute(
        "SELECT record_pk, field, sort_key, heading FROM version_headings WHERE batch_id = ?"
        " ORDER BY record_pk, field, sort_key",
        (batch_id,),
    ):
        headings.setdefault(int(pk), []).append((str(field), str(key), str(heading)))
    found = []
    for r in rows:
        pk = int(r[0])
        row = None
        if r[3] != "added":
            row = dict(zip(VERSION_COLUMNS, r[4:], strict=True))
            row["marc"] = bytes(row["marc"])
        found.append(
            RecordVersion(
                pk,
                str(r[1]),
                str(r[2]),
                str(r[3]),
                row,
                identifiers.get(pk, []),
                headings.get(pk, []),
            )
        )
    return found


def later_batches_touching(tx: Transaction, batch_id: int) -> dict[int, list[str]]:
    """Batches after this one, not undone, that changed one of its records or copies: batch
    → what they share (record ids, barcodes)."""
    shared: dict[int, list[str]] = {}
    for later, database, record_id in tx.execute(
        "SELECT DISTINCT l.batch_id, l.database, l.record_id FROM record_versions v"
        " JOIN record_versions l ON l.database = v.database AND l.record_id = v.record_id"
        " JOIN batches b ON b.id = l.batch_id"
        " WHERE v.batch_id = ? AND l.batch_id > ? AND b.state <> 'undone'"
        " ORDER BY 1, 2, 3",
        (batch_id, batch_id),
    ):
        shared.setdefault(int(later), []).append(f"record {database}/{record_id}")
    for later, barcode in tx.execute(
        "SELECT DISTINCT l.batch_id, l.barcode FROM batch_items v"
        " JOIN batch_items l ON l.barcode = v.barcode"
        " JOIN batches b ON b.id = l.batch_id"
        " WHERE v.batch_id = ? AND l.batch_id > ? AND b.state <> 'undone'"
        " ORDER BY 1, 2",
        (batch_id, batch_id),
    ):
        shared.setdefault(int(later), []).append(f"copy {barcode}")
    return shared


def archived_loans(tx: Transaction, batch_id: int) -> list[dict[str, Any]]:
    rows = tx.execute(
        f"SELECT {', '.join(LOAN_COLUMNS)} FROM batch_loans WHERE batch_id = ? ORDER BY id",
        (batch_id,),
    )
    return [dict(zip(LOAN_COLUMNS, r, strict=True)) for r in rows]


def archived_holds(tx: Transaction, batch_id: int) -> list[dict[str, Any]]:
    rows = tx.execute(
        f"SELECT {', '.join(HOLD_COLUMNS)} FROM batch_holds WHERE batch_id = ? ORDER BY id",
        (batch_id,),
    )
    return [dict(zip(HOLD_COLUMNS, r, strict=True)) for r in rows]


def archive_circulation(
    tx: Transaction, batch_id: int, item_pks: list[int], record_pks: list[int]
) -> tuple[int, int]:
    """Move the loans of these copies and records, and the holds of these records, into the
    batch (the circulation engine closed the open ones first): the catalogue rows they name
    can then go, and undo brings them back. Returns (loans, holds) moved."""
    loans = holds = 0
    loan_columns = ", ".join(LOAN_COLUMNS)
    hold_columns = ", ".join(HOLD_COLUMNS)
    loan_ids: set[int] = set()
    for chunk in _chunks(sorted(set(item_pks))):
        loan_ids.update(
            int(r[0])
            for r in tx.execute(f"SELECT id FROM loans WHERE item_pk IN ({_marks(chunk)})", chunk)
        )
    for chunk in _chunks(sorted(set(record_pks))):
        loan_ids.update(
            int(r[0])
            for r in tx.execute(f"SELECT id FROM loans WHERE record_pk IN ({_marks(chunk)})", chunk)
        )
    for chunk in _chunks(sorted(loan_ids)):
        marks = _marks(chunk)
        tx.execute(
            f"INSERT INTO batch_loans (batch_id, {loan_columns})"
            f" SELECT ?, {loan_columns} FROM loans WHERE id IN ({marks})",
            (batch_id, *chunk),
        )
        tx.execute(f"DELETE FROM loans WHERE id IN ({marks})", chunk)
        loans += len(chunk)
    for chunk in _chunks(sorted(set(record_pks))):
        marks = _marks(chunk)
        holds += len(
            tx.execute(
                f"INSERT INTO batch_holds (batch_id, {hold_columns})"
                f" SELECT ?, {hold_columns} FROM holds WHERE record_pk IN ({marks}) RETURNING id",
                (batch_id, *chunk),
            )
        )
        tx.execute(f"DELETE FROM holds WHERE record_pk IN ({marks})", chunk)
    return loans, holds


# --- what undo writes ---------------------------------------------------------------------------


def _free(tx: Transaction, table: str, pk: int) -> bool:
    return tx.one(f"SELECT 1 FROM {table} WHERE id = ?", (pk,)) is None


def reinsert_record(tx: Transaction, version: RecordVersion, seq: int) -> int:
    """A deleted record back, under its former id when that is free (SQLite may have given
    it to a newer record); returns its id."""
    assert version.row is not None
    columns: tuple[str, ...] = ("database", "record_id", "change_seq", *VERSION_COLUMNS)
    values = [version.database, version.record_id, seq, *(version.row[c] for c in VERSION_COLUMNS)]
    if _free(tx, "bib_records", version.record_pk):
        columns = ("id", *columns)
        values = [version.record_pk, *values]
    return int(
        tx.scalar(
            f"INSERT INTO bib_records ({', '.join(columns)})"
            f" VALUES ({_marks(values)}) RETURNING id",
            values,
        )
    )


def overwrite_record(tx: Transaction, record_pk: int, row: dict[str, Any], seq: int) -> None:
    """A record's stored row back to a version (with a new change sequence: the search index
    takes it)."""
    assignments = ", ".join(f"{c} = ?" for c in VERSION_COLUMNS)
    tx.execute(
        f"UPDATE bib_records SET {assignments}, change_seq = ? WHERE id = ?",
        (*(row[c] for c in VERSION_COLUMNS), seq, record_pk),
    )


def heading_ids_of(tx: Transaction, record_pks: list[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(sorted(set(record_pks))):
        found.update(
            int(r[0])
            for r in tx.execute(
                f"SELECT heading_id FROM browse_entries WHERE record_pk IN ({_marks(chunk)})",
                chunk,
            )
        )
    return found


def replace_index_rows(
    tx: Transaction,
    record_pk: int,
    database: str,
    identifiers: list[tuple[str, str]],
    headings: list[tuple[str, str, str]],
) -> None:
    """A record's identifiers and browse entries exactly as a version kept them."""
    tx.execute("DELETE FROM bib_identifiers WHERE record_pk = ?", (record_pk,))
    tx.execute("DELETE FROM browse_entries WHERE record_pk = ?", (record_pk,))
    if identifiers:
        tx.executemany(
            "INSERT INTO bib_identifiers (record_pk, kind, value) VALUES (?, ?, ?)",
            [(record_pk, kind, value) for kind, value in identifiers],
        )
    write_headings(tx, record_pk, database, headings)


def drop_orphan_headings(tx: Transaction, heading_ids: set[int]) -> None:
    """Headings an undo left without any record (browse already skips them)."""
    for chunk in _chunks(sorted(heading_ids)):
        tx.execute(
            f"DELETE FROM browse_headings WHERE id IN ({_marks(chunk)}) AND NOT EXISTS"
            " (SELECT 1 FROM browse_entries e WHERE e.heading_id = browse_headings.id)",
            chunk,
        )


def delete_records(tx: Transaction, record_pks: list[int]) -> None:
    """Records without copies; identifiers and browse entries go with them, and the search
    index learns of it from the tombstone a trigger leaves (migration 0008)."""
    for chunk in _chunks(sorted(set(record_pks))):
        tx.execute(f"DELETE FROM bib_records WHERE id IN ({_marks(chunk)})", chunk)


def delete_items(tx: Transaction, item_pks: list[int]) -> None:
    for chunk in _chunks(sorted(set(item_pks))):
        tx.execute(f"DELETE FROM items WHERE id IN ({_marks(chunk)})", chunk)


def reinsert_item(tx: Transaction, change: ItemChange, record_pk: int) -> int:
    """A deleted copy back, under its former id when free; returns its id."""
    assert change.before is not None and change.item_pk is not None
    columns = ["barcode", "record_pk", *ITEM_STATE_COLUMNS]
    values = [change.barcode, record_pk, *(change.before[c] for c in ITEM_STATE_COLUMNS)]
    if _free(tx, "items", change.item_pk):
        columns = ["id", *columns]
        values = [change.item_pk, *values]
    return int(
        tx.scalar(
            f"INSERT INTO items ({', '.join(columns)}) VALUES ({_marks(values)}) RETURNING id",
            values,
        )
    )


def restore_item_description(tx: Transaction, change: ItemChange) -> None:
    """A copy a MARC overlay re-described, described as before (its circulation status and
    notes, which a load never changes, stay as they are)."""
    assert change.before is not None and change.item_pk is not None
    before = change.before
    tx.execute(
        "UPDATE items SET record_pk = ?, library = ?, location = ?, call_number = ?,"
        " item_type = ?, source = ? WHERE id = ?",
        (
            change.record_pk,
            before["library"],
            before["location"],
            before["call_number"],
            before["item_type"],
            before["source"],
            change.item_pk,
        ),
    )


def reinsert_loans(
    tx: Transaction, loans: list[dict[str, Any]], items: dict[int, int], records: dict[int, int]
) -> None:
    """Archived loans back, pointing at the restored copies and records (`items`, `records`:
    former id → id now)."""
    for loan in loans:
        row = dict(loan)
        row["item_pk"] = items.get(row["item_pk"], row["item_pk"])
        row["record_pk"] = records.get(row["record_pk"], row["record_pk"])
        columns = [c for c in LOAN_COLUMNS if c != "id" or _free(tx, "loans", row["id"])]
        tx.execute(
            f"INSERT INTO loans ({', '.join(columns)}) VALUES ({_marks(columns)})",
            [row[c] for c in columns],
        )


def reinsert_holds(
    tx: Transaction, holds: list[dict[str, Any]], items: dict[int, int], records: dict[int, int]
) -> None:
    for hold in holds:
        row = dict(hold)
        if row["item_pk"] is not None:
            row["item_pk"] = items.get(row["item_pk"], row["item_pk"])
        row["record_pk"] = records.get(row["record_pk"], row["record_pk"])
        columns = [c for c in HOLD_COLUMNS if c != "id" or _free(tx, "holds", row["id"])]
        tx.execute(
            f"INSERT INTO holds ({', '.join(columns)}) VALUES ({_marks(columns)})",
            [row[c] for c in columns],
        )
