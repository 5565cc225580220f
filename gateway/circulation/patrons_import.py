"""Readers from CSV: `libgate patrons import FILE.csv`.

Header row (a contract): `barcode,name,pin,category,email,phone` (UTF-8; extra columns are
allowed). Re-import updates by barcode; an empty pin keeps the stored one. A bad row is
reported with its line number and the reason; the other rows still load.
"""

from __future__ import annotations

from pathlib import Path

from gateway.circulation import storage
from gateway.circulation.pins import check_pin, hash_pin
from gateway.circulation.policy import Policy
from gateway.csv_input import CsvFileError, CsvImportReport, read_rows
from gateway.store import Store

REQUIRED_COLUMNS = ("barcode", "name", "pin", "category", "email", "phone")


PatronsFileError = CsvFileError  # the file as a whole cannot be imported


PatronsImportReport = CsvImportReport


def import_patrons(store: Store, path: Path, policy: Policy) -> PatronsImportReport:
    rows = read_rows(path, REQUIRED_COLUMNS)
    report = PatronsImportReport(path=str(path))
    for start in range(0, len(rows), 200):
        with store.write() as tx:
            for line, row in rows[start : start + 200]:
                report.rows += 1
                problem = _problem(row, policy)
                if problem:
                    report.errors.append(
                        {"line": line, "barcode": row.get("barcode", ""), "reason": problem}
                    )
                    continue
                existing = storage.patron_by_barcode(tx, row["barcode"])
                if existing is None:
                    new_hash = hash_pin(row["pin"]) if row["pin"] else ""
                    storage.insert_patron(tx, row["barcode"], _details(row, new_hash))
                    report.added += 1
                    continue
                pin_same = not row["pin"] or check_pin(row["pin"], existing.pin_hash)
                stored = (existing.name, existing.category, existing.email, existing.phone)
                if pin_same and stored == (
                    row["name"],
                    row["category"],
                    row["email"],
                    row["phone"],
                ):
                    report.unchanged += 1
                    continue
                new_hash = existing.pin_hash if pin_same else hash_pin(row["pin"])
                storage.update_patron_details(tx, existing.pk, _details(row, new_hash))
                report.updated += 1
    return report


def _details(row: dict[str, str], pin_hash: str) -> storage.PatronDetails:
    return storage.PatronDetails(
        name=row["name"],
        pin_hash=pin_hash,
        category=row["category"],
        email=row["email"],
        phone=row["phone"],
    )


def _problem(row: dict[str, str], policy: Policy) -> str | None:
    barcode = row.get("barcode", "")
    if not barcode:
        return "barcode is empty"
    if any(ch.isspace() for ch in barcode) or len(barcode) > 64 or "|" in barcode:
        return f"barcode {barcode[:70]!r} has spaces or '|' or is longer than 64 characters"
    if not row.get("name"):
        return "name is empty"
    if row.get("category", "") not in policy.categories:
        return (
            f"unknown category {row.get('category', '')!r} (configured:"
            f" {', '.join(policy.categories)})"
        )
    email = row.get("email", "")
    if email and ("@" not in email or any(ch.isspace() for ch in email)):
        return f"email {email!r} is not an address"
    return None
