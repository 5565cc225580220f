"""Copies from another system's CSV export: `libgate items import FILE.csv`.

Header row (a contract): `barcode,database,record_id,location,call_number,item_type,status`;
`library` and any other extra columns are allowed. Re-import updates by barcode. A bad row is
reported with its line number and the reason, and the other rows still load.
"""

from __future__ import annotations

from pathlib import Path

from gateway.catalogue import repository
from gateway.catalogue.model import ItemData
from gateway.csv_input import CsvFileError, CsvImportReport, read_rows
from gateway.store import Store

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


def import_items(
    store: Store, path: Path, databases: set[str], on_shelf_status: str
) -> ItemsImportReport:
    """A new copy with a blank status gets `on_shelf_status` ([circulation] on_shelf_status);
    a known copy with a blank status keeps its own."""
    rows = read_rows(path, REQUIRED_COLUMNS)
    report = ItemsImportReport(path=str(path))
    for start in range(0, len(rows), BATCH_ROWS):
        with store.write() as tx:
            batch = rows[start : start + BATCH_ROWS]
            existing = repository.items_by_barcode(
                tx, [r["barcode"] for _, r in batch if r.get("barcode")]
            )
            for line, row in batch:
                report.rows += 1
                problem = _row_problem(row, databases)
                if problem:
                    report.errors.append(
                        {"line": line, "barcode": row.get("barcode", ""), "reason": problem}
                    )
                    continue
                record = repository.find_record(tx, row["database"], row["record_id"])
                if record is None:
                    report.errors.append(
                        {
                            "line": line,
                            "barcode": row["barcode"],
                            "reason": f"record {row['record_id']} is not in database {row['database']}",
                        }
                    )
                    continue
                item = ItemData(
                    barcode=row["barcode"],
                    library=row.get("library", ""),
                    location=row["location"],
                    call_number=row["call_number"],
                    item_type=row["item_type"],
                    status=row["status"] or on_shelf_status,
                )
                stored = existing.get(item.barcode)
                if stored is None:
                    pk = repository.insert_item(tx, record.pk, item, "csv")
                    report.added += 1
                else:
                    pk = stored.pk
                    same = (
                        stored.record_pk,
                        stored.location,
                        stored.call_number,
                        stored.item_type,
                        stored.status,
                    ) == (
                        record.pk,
                        item.location,
                        item.call_number,
                        item.item_type,
                        row["status"] or stored.status,
                    )
                    if "library" in row:
                        same = same and stored.library == item.library
                    if same:
                        report.unchanged += 1
                        continue
                    if "library" not in row:
                        item = ItemData(
                            item.barcode,
                            stored.library,
                            item.location,
                            item.call_number,
                            item.item_type,
                            item.status,
                        )
                    repository.update_item_description(tx, pk, record.pk, item, "csv")
                    if row["status"]:
                        repository.set_item_status(tx, pk, row["status"])
                    report.updated += 1
                existing[item.barcode] = repository.StoredItem(
                    pk,
                    item.barcode,
                    record.pk,
                    item.library,
                    item.location,
                    item.call_number,
                    item.item_type,
                    row["status"] or (stored.status if stored else item.status),
                    "csv",
                )
    return report


def _row_problem(row: dict[str, str], databases: set[str]) -> str | None:
    barcode = row.get("barcode", "")
    if not barcode:
        return "barcode is empty"
    if any(ch.isspace() for ch in barcode) or len(barcode) > 64:
        return f"barcode {barcode[:70]!r} has spaces or is longer than 64 characters"
    if row.get("database", "") not in databases:
        return f"unknown database {row.get('database', '')!r} (configured: {', '.join(sorted(databases))})"
    if not row.get("record_id"):
        return "record_id is empty"
    return None
