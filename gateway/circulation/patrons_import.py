"""Readers from CSV: `libgate patrons import FILE.csv`.

Header row (a contract): `barcode,name,pin,category,email,phone` (UTF-8; extra columns are
allowed). Re-import updates by barcode; an empty pin keeps the stored one. A bad row is
reported with its line number and the reason; the other rows still load.
"""

from __future__ import annotations

from pathlib import Path

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
                existing = tx.one(
                    "SELECT id, name, pin_hash, category, email, phone FROM patrons"
                    " WHERE barcode = ?",
                    (row["barcode"],),
                )
                if existing is None:
                    tx.insert(
                        "INSERT INTO patrons (barcode, name, pin_hash, category, email, phone)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            row["barcode"],
                            row["name"],
                            hash_pin(row["pin"]) if row["pin"] else "",
                            row["category"],
                            row["email"],
                            row["phone"],
                        ),
                    )
                    report.added += 1
                    continue
                pk, name, pin_hash, category, email, phone = existing
                pin_same = not row["pin"] or check_pin(row["pin"], pin_hash)
                if pin_same and (name, category, email, phone) == (
                    row["name"],
                    row["category"],
                    row["email"],
                    row["phone"],
                ):
                    report.unchanged += 1
                    continue
                new_hash = pin_hash if pin_same else hash_pin(row["pin"])
                tx.execute(
                    "UPDATE patrons SET name = ?, pin_hash = ?, category = ?, email = ?, phone = ?"
                    " WHERE id = ?",
                    (row["name"], new_hash, row["category"], row["email"], row["phone"], pk),
                )
                report.updated += 1
    return report


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
