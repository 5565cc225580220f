"""Readers from CSV: `libgate patrons import FILE.csv`.

Header row (a contract): `barcode,name,pin,category,email,phone` (UTF-8 or GB18030, as
`gateway.csv_input` reads them; extra columns are allowed). Re-import updates by barcode; an empty pin keeps the stored one. A bad row is
reported with its line number and the reason; the other rows still load.

An import must not stop circulation. On SQLite a write transaction holds the database's only
write lock, and a PIN hash or check (scrypt) costs ~50 ms, so the import works in two steps
per slice of the file:
1. plan, holding no lock: read the stored readers in one short read transaction, then decide
   each row, hashing a PIN only for a new reader or a changed PIN (checking a given PIN against
   the stored hash is a scrypt too, and it is done here as well). An unchanged reader needs no
   write at all, so an unchanged nightly re-import never takes the write lock;
2. write the planned rows in short transactions (`WRITE_BATCH_ROWS` rows, and never longer
   than `WRITE_BATCH_SECONDS`), with no hashing inside.
Between the two steps another writer may change a reader of the file. Each planned row is
re-read in the write transaction and written as the file says (last writer wins): the
planned hash is always a hash of the file's PIN whatever was stored, and an empty PIN keeps
the hash stored at write time, so the result is what a re-run of the import would give.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from gateway.circulation import storage
from gateway.circulation.pins import check_pin, hash_pin
from gateway.circulation.policy import Policy
from gateway.csv_input import CsvFileError, read_rows
from gateway.csv_report import CsvImportReport
from gateway.store import Store, Transaction
from marc.holdings import barcode_problem

REQUIRED_COLUMNS = ("barcode", "name", "pin", "category", "email", "phone")
PLAN_SLICE_ROWS = 200  # rows read and decided together, outside any write transaction
WRITE_BATCH_ROWS = 100  # at most this many readers per write transaction ...
WRITE_BATCH_SECONDS = 0.05  # ... and no more rows once a transaction has run this long


PatronsFileError = CsvFileError  # the file as a whole cannot be imported


PatronsImportReport = CsvImportReport


@dataclass(frozen=True)
class _PlannedWrite:
    """A reader the file adds or changes, with its PIN already hashed."""

    line: int  # where the row is in the file
    barcode: str
    details: storage.PatronDetails
    keep_pin: bool  # the file's pin is empty: keep whatever hash is stored when writing


def import_patrons(store: Store, path: Path, policy: Policy) -> PatronsImportReport:
    read = read_rows(path, REQUIRED_COLUMNS)
    report = PatronsImportReport(path=str(path), encoding=read.encoding)
    rows = read.rows
    for start in range(0, len(rows), PLAN_SLICE_ROWS):
        writes = _plan_slice(store, rows[start : start + PLAN_SLICE_ROWS], policy, report)
        _write(store, writes, report)
    return report


def _plan_slice(
    store: Store,
    rows: list[tuple[int, dict[str, str]]],
    policy: Policy,
    report: PatronsImportReport,
) -> list[_PlannedWrite]:
    """Decide each row of a slice; returns the rows that need a write, in file order."""
    valid: list[tuple[int, dict[str, str]]] = []
    for line, row in rows:
        problem = _problem(row, policy)
        if problem:
            report.reject(line, row.get("barcode", ""), problem)
        else:
            valid.append((line, row))
    with store.read() as tx:
        known = {row["barcode"]: _stored_details(tx, row["barcode"]) for _, row in valid}
    # Hashing from here on: no transaction is open. `known` follows the planned writes, so a
    # barcode twice in the file is decided as if the first row were already stored.
    writes: list[_PlannedWrite] = []
    for line, row in valid:
        stored = known[row["barcode"]]
        planned = _plan_row(line, row, stored)
        if planned is None:
            report.add(line, row["barcode"], "unchanged")
            continue
        writes.append(planned)
        kept = stored.pin_hash if planned.keep_pin and stored else planned.details.pin_hash
        known[row["barcode"]] = replace(planned.details, pin_hash=kept)
    return writes


def _plan_row(
    line: int, row: dict[str, str], stored: storage.PatronDetails | None
) -> _PlannedWrite | None:
    """The write a row needs, or None when the stored reader already says the same."""
    pin = row["pin"]
    if stored is None:
        details = _details(row, hash_pin(pin) if pin else "")
        return _PlannedWrite(line, row["barcode"], details, not pin)
    pin_same = not pin or check_pin(pin, stored.pin_hash)
    wanted = _details(row, stored.pin_hash if pin_same else hash_pin(pin))
    if wanted == stored:
        return None
    return _PlannedWrite(line, row["barcode"], wanted, not pin)


def _write(store: Store, writes: list[_PlannedWrite], report: PatronsImportReport) -> None:
    """Planned rows in short write transactions; counts only what was committed."""
    done = 0
    while done < len(writes):
        outcomes: list[tuple[str, tuple[str, ...]]] = []
        with store.write() as tx:
            started = time.monotonic()
            while (
                done + len(outcomes) < len(writes)
                and len(outcomes) < WRITE_BATCH_ROWS
                # at least one row, even when the process was descheduled right after BEGIN
                and (not outcomes or time.monotonic() - started < WRITE_BATCH_SECONDS)
            ):
                outcomes.append(_apply(tx, writes[done + len(outcomes)]))
        for planned, (outcome, changed) in zip(writes[done:], outcomes, strict=False):
            report.add(planned.line, planned.barcode, outcome, changed=changed)
        done += len(outcomes)


def _apply(tx: Transaction, planned: _PlannedWrite) -> tuple[str, tuple[str, ...]]:
    """Write one planned reader as the file says; returns added, updated or unchanged, and
    for an update the columns it changed."""
    current = storage.patron_by_barcode(tx, planned.barcode)
    if current is None:
        storage.insert_patron(tx, planned.barcode, planned.details)
        return "added", ()
    details = planned.details
    if planned.keep_pin:
        details = replace(details, pin_hash=current.pin_hash)
    before = _details_of(current)
    if details == before:
        return "unchanged", ()
    storage.update_patron_details(tx, current.pk, details)
    return "updated", _changed_columns(before, details)


def _changed_columns(
    before: storage.PatronDetails, after: storage.PatronDetails
) -> tuple[str, ...]:
    """The CSV columns an update changed (`pin` when the stored hash is new)."""
    columns = [("name", "name"), ("pin", "pin_hash"), ("category", "category")]
    columns += [("email", "email"), ("phone", "phone")]
    return tuple(
        column for column, name in columns if getattr(before, name) != getattr(after, name)
    )


def _stored_details(tx: Transaction, barcode: str) -> storage.PatronDetails | None:
    patron = storage.patron_by_barcode(tx, barcode)
    return _details_of(patron) if patron else None


def _details_of(patron: storage.Patron) -> storage.PatronDetails:
    return storage.PatronDetails(
        name=patron.name,
        pin_hash=patron.pin_hash,
        category=patron.category,
        email=patron.email,
        phone=patron.phone,
    )


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
    problem = barcode_problem(barcode)
    if problem is not None:
        return f"barcode {barcode[:70]!r} {problem}"
    if "|" in barcode:  # SIP2's field separator: a card with one could never log in
        return f"barcode {barcode[:70]!r} has a '|'"
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
