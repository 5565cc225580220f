"""The batch load pipeline: frame → prepare → match → store, committed in batches.

Crash safety comes from two facts: a batch is one transaction (never a half-written record),
and storing is idempotent (a record whose digest is already stored is "unchanged"). So after
kill -9 at any moment, rerunning the same command ends in the same database as a clean load.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from gateway.catalogue import repository
from gateway.catalogue.loading.parallel import prepare_all
from gateway.catalogue.loading.prepare import Prepared, looks_unimarc_record, prepare_record
from gateway.catalogue.loading.report import FileReport, LoadReport
from gateway.catalogue.model import ItemData
from gateway.catalogue.search_index import IndexBatch
from gateway.config import DatabaseSettings
from gateway.store import Store
from gateway.store.engine import DataRefused, IntegrityViolation, Transaction
from marc.errors import RecordRejected
from marc.holdings import HoldingsProfile
from marc.iso2709 import frame_records
from marc.xml_input import looks_like_xml, read_xml_records

MATCH_MODES = ("001", "isbn", "none")
ProgressCallback = Callable[[int], None]  # bytes of the current file processed so far


@dataclass(frozen=True)
class LoadOptions:
    database: DatabaseSettings
    profile: HoldingsProfile
    encoding: str = "auto"
    match: str = "001"
    batch_size: int = 500
    workers: int = 0  # processes preparing records; 0 = in this process


@dataclass
class Entry:
    """One framed record on its way through a batch."""

    number: int
    offset: int | None
    raw: bytes
    prepared: Prepared | None = None
    reject_reason: str | None = None
    outcome: str = ""  # loaded | overlaid | unchanged | rejected
    items_added: int = 0
    items_updated: int = 0


@dataclass
class RejectsWriter:
    """Raw bytes of every rejected record, byte-exact, so it can be fixed and reloaded."""

    handle: BinaryIO
    written: int = field(default=0)

    def write(self, raw: bytes) -> None:
        self.handle.write(raw if raw.endswith(b"\x1d") else raw + b"\x1d")
        self.written += 1


class Loader:
    def __init__(
        self,
        store: Store,
        options: LoadOptions,
        rejects: RejectsWriter | None = None,
        on_progress: ProgressCallback | None = None,
        on_file_start: Callable[[Path], None] | None = None,
    ) -> None:
        if options.match not in MATCH_MODES:
            raise ValueError(f"--match must be one of {', '.join(MATCH_MODES)}")
        self.store = store
        self.options = options
        self.rejects = rejects
        self.on_progress = on_progress
        self.on_file_start = on_file_start

    def load(self, paths: list[Path], command: str = "load") -> LoadReport:
        report = LoadReport(
            database=self.options.database.name,
            match=self.options.match,
            profile=self.options.profile.name,
            encoding=self.options.encoding,
        )
        started = time.perf_counter()
        with self.store.write() as tx:
            run_id = repository.start_load_run(tx, report.database, command, _now())
        for path in paths:
            if self.on_file_start is not None:
                self.on_file_start(path)
            report.files.append(self.load_file(path))
        total = report.total()
        if total["loaded"] or total["overlaid"]:
            self.store.analyze(repository.searched_tables(self.store.dialect))
        report.elapsed_seconds = time.perf_counter() - started
        with self.store.write() as tx:
            repository.finish_load_run(tx, run_id, _now(), report.to_json())
        return report

    def load_file(self, path: Path) -> FileReport:
        file_report = FileReport(path=str(path))
        try:
            handle = path.open("rb")
        except OSError as error:
            file_report.error = f"cannot open: {error.strerror or error}"
            return file_report
        with handle:
            head = handle.read(64)
            handle.seek(0)
            entries = self._xml_entries(path) if looks_like_xml(head) else self._iso_entries(handle)
            batch: list[Entry] = []
            for entry in entries:
                file_report.framed += 1
                batch.append(entry)
                if len(batch) >= self.options.batch_size:
                    self._finish_batch(batch, file_report)
                    batch = []
                    if self.on_progress is not None and entry.offset is not None:
                        self.on_progress(entry.offset + len(entry.raw))
            if batch:
                self._finish_batch(batch, file_report)
        return file_report

    def _iso_entries(self, handle: BinaryIO) -> Iterator[Entry]:
        options = self.options
        for chunk, outcome in prepare_all(
            frame_records(handle),
            options.database.format,
            options.encoding,
            options.profile,
            options.workers,
        ):
            entry = Entry(chunk.number, chunk.offset, chunk.data)
            if isinstance(outcome, str):
                entry.reject_reason = outcome
            else:
                entry.prepared = outcome
            yield entry

    def _xml_entries(self, path: Path) -> Iterator[Entry]:
        fmt = self.options.database.format
        for number, item in enumerate(read_xml_records(path), start=1):
            entry = Entry(number, None, b"")
            if isinstance(item, RecordRejected):
                entry.reject_reason = item.reason
            else:
                record_format = (
                    fmt
                    if fmt != "auto"
                    else ("unimarc" if looks_unimarc_record(item) else "marc21")
                )
                try:
                    entry.prepared = prepare_record(
                        item, record_format, self.options.profile, "utf-8"
                    )
                except RecordRejected as rejected:
                    entry.reject_reason = rejected.reason
            yield entry

    def _finish_batch(self, batch: list[Entry], report: FileReport) -> None:
        ready = [e for e in batch if e.prepared is not None]
        try:
            with self.store.write() as tx:
                self._store_batch(tx, ready)
        except (IntegrityViolation, DataRefused):
            # A constraint we did not foresee: store one record per transaction to find the
            # culprit, so that only it is rejected (with the database's words).
            for entry in ready:
                entry.outcome = ""
                entry.items_added = entry.items_updated = 0
                try:
                    with self.store.write() as tx:
                        self._store_batch(tx, [entry])
                except (IntegrityViolation, DataRefused) as violation:
                    entry.reject_reason = f"the database refused the record: {violation}"
                    entry.outcome = "rejected"
        for entry in batch:
            if entry.reject_reason is not None:
                control = entry.prepared.record_id if entry.prepared else None
                report.reject(entry.number, entry.offset, entry.reject_reason, control)
                if self.rejects is not None and entry.raw:
                    self.rejects.write(entry.raw)
                continue
            assert entry.prepared is not None
            setattr(report, entry.outcome, getattr(report, entry.outcome) + 1)
            report.items_added += entry.items_added
            report.items_updated += entry.items_updated
            report.encodings[entry.prepared.encoding] += 1
            if entry.prepared.encoding_note:
                report.encoding_mismatches += 1
            for warning in entry.prepared.mapped.warnings:
                report.warn(entry.number, entry.offset, warning)

    def _store_batch(self, tx: Transaction, entries: list[Entry]) -> None:
        database = self.options.database.name
        by_control = repository.find_records(
            tx, database, [e.prepared.record_id for e in entries if e.prepared]
        )
        barcodes = [i.barcode for e in entries if e.prepared for i in e.prepared.mapped.items]
        stored_items = repository.items_by_barcode(tx, barcodes)
        pending = IndexBatch()
        new_items: dict[str, tuple[int, ItemData]] = {}
        new_records: dict[int, tuple[str, Prepared]] = {}  # placeholder pk → (id, record)
        for entry in entries:
            prepared = entry.prepared
            assert prepared is not None
            try:
                target = self._match(tx, prepared, by_control)
            except RecordRejected as rejected:
                entry.reject_reason = rejected.reason
                continue
            target_pk = target.pk if target else None
            clash = self._barcode_clash(tx, prepared, target_pk, stored_items)
            if clash:
                entry.reject_reason = clash
                continue
            if target is not None and target.digest == prepared.digest:
                entry.outcome = "unchanged"
                continue
            if target is None:
                # New records are inserted together after the loop; until then a negative
                # placeholder stands for the id the database will give.
                pk = -(len(new_records) + 1)
                record_id = prepared.record_id
                new_records[pk] = (record_id, prepared)
                entry.outcome = "loaded"
            else:
                pk, record_id = target.pk, target.record_id  # an overlay keeps the stored id
                if pk < 0:  # the same record twice in this batch: the later one wins
                    new_records[pk] = (record_id, prepared)
                else:
                    repository.update_record(tx, pk, prepared.mapped, prepared.digest, pending)
                entry.outcome = "overlaid"
            by_control[record_id] = repository.StoredRecord(
                pk, database, record_id, prepared.mapped.format, prepared.digest
            )
            for item in prepared.mapped.items:
                existing = stored_items.get(item.barcode)
                if item.barcode in new_items:
                    # A copy added earlier in this batch (the same record twice): still pending.
                    new_items[item.barcode] = (pk, item)
                    entry.items_updated += 1
                elif existing is None:
                    new_items[item.barcode] = (pk, item)
                    entry.items_added += 1
                else:
                    repository.update_item_description(tx, existing.pk, pk, item, "marc")
                    entry.items_updated += 1
                stored_items[item.barcode] = repository.StoredItem(
                    existing.pk if existing else 0,
                    item.barcode,
                    pk,
                    item.library,
                    item.location,
                    item.call_number,
                    item.item_type,
                    existing.status if existing else item.status,
                    "marc",
                )
        # New records and copies in a few statements: a round trip for each was most of
        # PostgreSQL's loading time.
        real_pk = repository.insert_records(
            tx, database, [(rid, p.mapped, p.digest) for rid, p in new_records.values()], pending
        )
        placeholder_pk = {pk: real_pk[rid] for pk, (rid, _) in new_records.items()}
        repository.insert_items(
            tx,
            [
                (placeholder_pk.get(record_pk, record_pk), item)
                for record_pk, item in new_items.values()
            ],
            "marc",
        )
        pending.flush(tx)

    def _match(
        self, tx: Transaction, prepared: Prepared, by_control: dict[str, repository.StoredRecord]
    ) -> repository.StoredRecord | None:
        mode = self.options.match
        same_id = by_control.get(prepared.record_id)
        if mode == "001":
            return same_id
        if mode == "none":
            if same_id is not None:
                raise RecordRejected(
                    f"record {prepared.record_id} is already in database"
                    f" {self.options.database.name}; --match none only adds new records"
                    " (use --match 001 to overlay)"
                )
            return None
        isbns = prepared.mapped.bib.isbns
        if not isbns:
            return same_id
        matches = repository.records_by_identifier(tx, self.options.database.name, "isbn", isbns[0])
        if len(matches) > 1:
            ids = ", ".join(m.record_id for m in matches[:5])
            raise RecordRejected(
                f"ISBN {isbns[0]} matches {len(matches)} records ({ids}): cannot tell which to"
                " overlay; load with --match 001"
            )
        if matches:
            match = by_control.get(matches[0].record_id, matches[0])
            if same_id is not None and same_id.pk != match.pk:
                raise RecordRejected(
                    f"ISBN {isbns[0]} matches record {match.record_id} but 001"
                    f" {prepared.record_id} is another record"
                )
            return match
        return same_id

    def _barcode_clash(
        self,
        tx: Transaction,
        prepared: Prepared,
        target_pk: int | None,
        stored_items: dict[str, repository.StoredItem],
    ) -> str | None:
        for item in prepared.mapped.items:
            existing = stored_items.get(item.barcode)
            if existing is not None and existing.record_pk != target_pk:
                owner = repository.record_by_pk(tx, existing.record_pk)
                where = (
                    f"record {owner.record_id} in database {owner.database}"
                    if owner
                    else "another record"
                )
                return (
                    f"copy barcode {item.barcode} already belongs to {where}; item barcodes"
                    " are unique across the library"
                )
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
