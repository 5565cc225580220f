"""Copies from another system's CSV export: `libgate items import FILE.csv`.

Header row (a contract): `barcode,database,record_id,location,call_number,item_type,status`;
`library` and any other extra columns are allowed. Re-import updates by barcode. A bad row is
reported with its line number and the reason, and the other rows still load.

Status and item type are the library's words (`gateway.circulation.copy_status`): a word the
configuration does not know is refused with the known ones, a configured synonym is read as the
word it stands for. A blank status gives a new copy the on-shelf word and keeps a known copy's;
a blank item type keeps a known copy's and is refused for a new one. A copy on loan or on the
hold shelf keeps the status the engine gave it: a row that would change it is refused.
"""

from __future__ import annotations

from pathlib import Path

from gateway.catalogue import repository
from gateway.catalogue.model import ItemData
from gateway.circulation.copy_status import (
    CopyWords,
    UnknownWord,
    Vocabulary,
    status_held_by_engine,
)
from gateway.csv_input import CsvFileError, read_rows
from gateway.csv_report import CsvImportReport
from gateway.store import Store, Transaction
from marc.holdings import barcode_problem, has_digit

REQUIRED_COLUMNS = (
    "barcode",
    "database",
    "record_id",
    "location",
    "call_number",
    "item_type",
    "status",
)
BATCH_ROWS = 500


ItemsFileError = CsvFileError  # the file as a whole cannot be imported


ItemsImportReport = CsvImportReport


class _RowRefused(Exception):
    """This row is rejected; str() says why."""


def import_items(
    store: Store, path: Path, databases: set[str], words: CopyWords, on_shelf_status: str
) -> ItemsImportReport:
    """A new copy with a blank status gets `on_shelf_status` ([circulation] on_shelf_status);
    a known copy with a blank status keeps its own."""
    read = read_rows(path, REQUIRED_COLUMNS)
    report = ItemsImportReport(path=str(path), encoding=read.encoding)
    rows = read.rows
    for start in range(0, len(rows), BATCH_ROWS):
        with store.write() as tx:
            batch = rows[start : start + BATCH_ROWS]
            existing = repository.items_by_barcode(
                tx, [r["barcode"] for _, r in batch if r.get("barcode")]
            )
            for line, row in batch:
                try:
                    _import_row(tx, line, row, existing, databases, words, on_shelf_status, report)
                except _RowRefused as refusal:
                    report.reject(line, row.get("barcode", ""), str(refusal))
    return report


def _import_row(
    tx: Transaction,
    line: int,
    row: dict[str, str],
    existing: dict[str, repository.StoredItem],
    databases: set[str],
    words: CopyWords,
    on_shelf_status: str,
    report: ItemsImportReport,
) -> None:
    """Add or update the row's copy (and note it in `existing`), or raise `_RowRefused`."""
    _check_identity(row, databases)
    status = _word(words.statuses, row["status"])
    not_ours = words.settable(status) if status else None
    if not_ours is not None:
        raise _RowRefused(not_ours)
    item_type = _word(words.item_types, row["item_type"])
    barcode = row["barcode"]
    stored = existing.get(barcode)
    if stored is None and not item_type:
        raise _RowRefused(f"item_type is empty; known: {', '.join(words.item_types.words)}")
    record = repository.find_record(tx, row["database"], row["record_id"])
    if record is None:
        raise _RowRefused(f"record {row['record_id']} is not in database {row['database']}")
    if stored is None:
        item = ItemData(
            barcode=barcode,
            library=row.get("library", ""),
            location=row["location"],
            call_number=row["call_number"],
            item_type=item_type,
            status=status or on_shelf_status,
        )
        pk = repository.insert_item(tx, record.pk, item, "csv")
        existing[barcode] = repository.StoredItem.of(pk, record.pk, item, "csv")
        report.add(line, barcode, "added")
        return
    item = ItemData(
        barcode=barcode,
        library=row.get("library", stored.library),
        location=row["location"],
        call_number=row["call_number"],
        item_type=item_type or stored.item_type,
        status=status or stored.status,
    )
    changed = _changes(stored, record.pk, item)
    if not changed:
        report.add(line, barcode, "unchanged")
        return
    if "status" in changed:
        held = status_held_by_engine(tx, stored.pk)
        if held:
            raise _RowRefused(
                f"copy {barcode} is {held}: its status stays {stored.status} (leave status"
                " empty to update the rest of the row)"
            )
    repository.update_item_description(tx, stored.pk, record.pk, item, "csv")
    if "status" in changed:
        repository.set_item_status(tx, stored.pk, item.status)
    existing[barcode] = repository.StoredItem.of(stored.pk, record.pk, item, "csv")
    report.add(line, barcode, "updated", changed=changed)


def _check_identity(row: dict[str, str], databases: set[str]) -> None:
    barcode = row.get("barcode", "")
    if not barcode:
        raise _RowRefused("barcode is empty")
    problem = barcode_problem(barcode)
    if problem is not None:
        raise _RowRefused(f"barcode {barcode[:70]!r} {problem}")
    if not has_digit(barcode):
        raise _RowRefused(f"barcode {barcode!r} has no digit: it is not a copy barcode")
    if row.get("database", "") not in databases:
        raise _RowRefused(
            f"unknown database {row.get('database', '')!r} (configured:"
            f" {', '.join(sorted(databases))})"
        )
    if not row.get("record_id"):
        raise _RowRefused("record_id is empty")


def _word(vocabulary: Vocabulary, given: str) -> str:
    """Our word for a non-blank value ("" stays ""), or the refusal naming the known words."""
    if not given:
        return ""
    try:
        return vocabulary.word(given)
    except UnknownWord as unknown:
        raise _RowRefused(str(unknown)) from None


def _changes(stored: repository.StoredItem, record_pk: int, item: ItemData) -> tuple[str, ...]:
    """The columns whose values differ from the stored copy's."""
    pairs = (
        ("record_id", stored.record_pk, record_pk),
        ("library", stored.library, item.library),
        ("location", stored.location, item.location),
        ("call_number", stored.call_number, item.call_number),
        ("item_type", stored.item_type, item.item_type),
        ("status", stored.status, item.status),
    )
    return tuple(name for name, before, after in pairs if before != after)
