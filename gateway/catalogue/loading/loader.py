"""The batch load pipeline: frame → prepare (`prepare`, `parallel`) → match and store
(`batch`), committed in batches, counted in the report (`report`).

On SQLite a batch's transaction holds the database's only write lock, and a kiosk's checkout
waits for it. So on SQLite the loader sizes its batches by time: it measures how long each
batch held the lock and sizes the next one to hold it about `batch_target_ms` (never more
records than `batch_size`). On PostgreSQL writers lock rows, not the database, and batches
stay `batch_size` records (fewer round trips).

The search index (Tantivy, `textindex`) is written in the same batches: one IndexWriter for
the whole load, each batch's documents added after its store commit (no delete for records
that are new) and committed with the batch's change sequence (at most one index commit a
second: a commit costs ~45 ms whatever its size; a batch not yet committed to the index is
caught up from the store after a crash). If another process holds the
index's writer, the load goes on without it and the index catches up from the store's change
sequence (at the end of the load if the writer comes free, else at the next search or start).

A first load into an empty catalogue (no records in any database) has no copies a kiosk could
be checking out, so it is a bulk load: batches of `batch_size` records from the first,
whatever their lock time, and the search index committed every `BULK_COMMIT_SECONDS` (fewer
commits, fewer rewritten pages). The report says which batching a load used
(`[loader] bulk_first_load = false` turns this off).

Crash safety comes from two facts: a batch is one transaction (never a half-written record),
and storing is idempotent (a record whose digest is already stored is "unchanged"). So after
kill -9 at any moment, rerunning the same command ends in the same database as a clean load.

Ctrl-C ends a load cleanly: `request_stop` (the CLI calls it on SIGINT) lets the batch in hand
finish, then the load stops reading, closes its workers, brings the search index up to date
and records the run with `interrupted` in its report. A KeyboardInterrupt (a second Ctrl-C,
or a caller that installs no handler) ends it the same way, except that the batch it
interrupted is not counted (its transaction is rolled back, unless it had just committed:
rerunning the load then counts those records as unchanged).

Every load is a batch (`gateway.catalogue.batches`): a `batches` row when it starts (state
running; done at the end, interrupted when Ctrl-C or an error stopped it), and with each store
transaction the outcome of each of its records and the versions it replaced, so `libgate
batches undo N` can take back exactly what was committed, even of a load killed half way.
A dry run (`dry_run`) decides every record as the load would, reading only: no batch, no
store write, no index write; its report lists each record's outcome.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from gateway.catalogue import repository
from gateway.catalogue.batches import storage as batch_storage
from gateway.catalogue.batches.who import runner
from gateway.catalogue.loading.batch import REPORT_COUNTER, BatchPlanner, Entry, MatchPolicy
from gateway.catalogue.loading.copy_words import checked_copies
from gateway.catalogue.loading.matching import parse_match
from gateway.catalogue.loading.messages import source_label
from gateway.catalogue.loading.parallel import prepare_all
from gateway.catalogue.loading.prepare import (
    Prepared,
    Rejection,
    looks_unimarc_record,
    prepare_record,
    rejection_of,
)
from gateway.catalogue.loading.report import FileReport, LoadReport, PhaseTimes
from gateway.catalogue.search_index import IndexBatch
from gateway.catalogue.textindex import Writer, WriterBusy, index_for, store_state
from gateway.circulation.copy_status import CopyWords
from gateway.config import DEFAULT_ON_SHELF_STATUS, DatabaseSettings
from gateway.store import Store, Transaction
from gateway.store.engine import DataRefused, IntegrityViolation
from marc.errors import RecordRejected
from marc.holdings import HoldingsProfile
from marc.iso2709 import frame_records
from marc.xml_input import looks_like_xml, read_xml_records

log = logging.getLogger("libgate.loader")
FIRST_TIMED_BATCH = 50  # SQLite: records in the first batch, before any batch was timed
BULK_COMMIT_SECONDS = 10.0  # a bulk first load commits the search index at most this often
LAST_CATCH_UP_WAIT = 5.0  # seconds a load waits at its end for another process's index writer
ProgressCallback = Callable[[int], None]  # bytes of the current file processed so far


@dataclass(frozen=True)
class LoadOptions:
    database: DatabaseSettings
    profile: HoldingsProfile
    encoding: str = "auto"
    # The match rule: 001, isbn, none, or points separated by commas; None = the database's
    # configured `match` (default 001).
    match: str | None = None
    on_match: str = "replace"  # replace | ignore | merge-copies
    on_new: str = "add"  # add | ignore
    on_duplicate: str = "reject"  # reject | last: a later record with a 001 the file had
    dry_run: bool = False  # decide and report only: nothing is written
    run_by: str = ""  # who ran it ("" = the OS user)
    batch_size: int = 500  # the most records in one transaction
    batch_target_ms: int = 100  # SQLite: how long one batch should hold the write lock
    workers: int = 0  # processes preparing records; 0 = in this process
    on_shelf_status: str = DEFAULT_ON_SHELF_STATUS  # [circulation]: a copy with no status
    # Into an empty catalogue: batch_size batches, no timing (the CLI passes [loader]
    # bulk_first_load, default true; callers of the library ask for it).
    bulk_first_load: bool = False
    # A file's own holdings profile (`libgate load FILE:PROFILE`); other files use `profile`.
    file_profiles: Mapping[Path, HoldingsProfile] = field(default_factory=dict)
    # Every configured profile: a record where the file's profile finds no copy but another
    # finds some gets a warning that names it (the CLI passes the configured profiles).
    known_profiles: tuple[HoldingsProfile, ...] = ()
    # The library's status words and item types: copies are read against them (synonyms
    # mapped, unknown words warned). None: copies are stored as the profile reads them.
    copy_words: CopyWords | None = None


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
        self.policy = MatchPolicy(
            parse_match(options.match if options.match is not None else options.database.match),
            options.on_match,
            options.on_new,
            options.on_duplicate,
        )
        self.store = store
        self.options = options
        self.rejects = rejects
        self.on_progress = on_progress
        self.on_file_start = on_file_start
        self._batch_limit = options.batch_size
        self._writer: Writer | None = None
        self._bulk = False
        self._stop_requested = False
        self._interrupted = False  # a stop request cut the load short
        self._file_profile = options.profile  # the profile of the file being loaded
        # Of the file being loaded, by record number: prepare-time rejects with what was read
        # of the record, and XML records' lines.
        self._rejections: dict[int, Rejection] = {}
        self._lines: dict[int, int | None] = {}
        self.times = PhaseTimes()
        self.batches = 0
        self.planner = BatchPlanner(options.database.name, self.policy, None)
        self._position = 0  # records read so far, over every file
        self._dry_rows: dict[tuple[int, int], batch_storage.OutcomeRow] = {}
        if store.dialect == "sqlite":
            # Start small: the first batch's time tells how large the next ones may be.
            self._batch_limit = min(options.batch_size, FIRST_TIMED_BATCH)

    def request_stop(self) -> None:
        """Stop after the batch in hand (safe to call from a signal handler): what is stored
        stays, the report says the load was interrupted."""
        self._stop_requested = True

    def load(self, paths: list[Path], command: str = "load") -> LoadReport:
        options = self.options
        report = LoadReport(
            database=options.database.name,
            match=self.policy.rule.spec,
            profile=options.profile.name,
            encoding=options.encoding,
            format=options.database.format,
            profile_labels={
                p.name: label
                for p in (options.profile, *options.known_profiles)
                if (label := source_label(p.description))
            },
        )
        started = time.perf_counter()
        self.times = report.times
        report.workers = options.workers
        if options.dry_run:
            report.dry_run = True
            report.batching = "dry run"
            self._read_files(paths, report)
            report.records = list(self._dry_rows.values())
            report.batches = self.batches
            report.elapsed_seconds = time.perf_counter() - started
            return report
        with self.store.write() as tx:
            batch_id = batch_storage.start_batch(tx, self._batch_start(paths, command))
            empty = options.bulk_first_load and repository.catalogue_empty(tx)
        report.batch = batch_id
        self.planner = BatchPlanner(options.database.name, self.policy, batch_id)
        try:
            self._load_files(paths, report, empty)
        except BaseException:
            # An error: what was committed stays (and can be undone); the batch says it did
            # not finish.
            with contextlib.suppress(Exception), self.store.write() as tx:
                batch_storage.finish_batch(
                    tx, batch_id, _now(), "interrupted", batch_storage.outcome_counts(tx, batch_id)
                )
            raise
        report.elapsed_seconds = time.perf_counter() - started
        with self.store.write() as tx:
            batch_storage.finish_batch(
                tx,
                batch_id,
                _now(),
                "interrupted" if report.interrupted else "done",
                batch_storage.outcome_counts(tx, batch_id),
                report.to_json(),
            )
        return report

    def _batch_start(self, paths: list[Path], command: str) -> batch_storage.BatchStart:
        options = self.options
        return batch_storage.BatchStart(
            kind="load",
            database=options.database.name,
            command=command,
            started_at=_now(),
            run_by=runner(options.run_by),
            host=socket.gethostname(),
            pid=os.getpid(),
            files=tuple(str(p) for p in paths),
            options={
                "match": self.policy.rule.spec,
                "on_match": options.on_match,
                "on_new": options.on_new,
                "on_duplicate": options.on_duplicate,
                "profile": options.profile.name,
                "file_profiles": {str(p): f.name for p, f in options.file_profiles.items()},
                "encoding": options.encoding,
                "format": options.database.format,
            },
        )

    def _load_files(self, paths: list[Path], report: LoadReport, empty: bool) -> None:
        if empty:
            self._bulk = True
            self._batch_limit = self.options.batch_size
            log.info(
                "first load into an empty catalogue: batches of %d records from the first",
                self.options.batch_size,
            )
        report.batching = (
            "bulk first load"
            if self._bulk
            else "timed"
            if self.store.dialect == "sqlite"
            else "fixed"
        )
        index_started = time.perf_counter()
        index = index_for(self.store)
        with contextlib.ExitStack() as stack:
            try:
                self._writer = stack.enter_context(index.writer())
                if self._bulk:
                    self._writer.commit_seconds = BULK_COMMIT_SECONDS
                self._writer.catch_up(self.store)
            except WriterBusy:
                self._writer = None
                log.info("the search index is being written by another process; it will catch up")
            self.times.index += time.perf_counter() - index_started
            self._read_files(paths, report)
            index_started = time.perf_counter()
            if self._writer is not None:
                self._writer.flush()
            self._writer = None
        index.catch_up(self.store, wait_seconds=LAST_CATCH_UP_WAIT)
        self.times.index += time.perf_counter() - index_started
        report.batches = self.batches
        total = report.total()
        if total["loaded"] or total["overlaid"]:
            self.store.analyze(repository.searched_tables(self.store.dialect))

    def _read_files(self, paths: list[Path], report: LoadReport) -> None:
        try:
            for file_no, path in enumerate(paths):
                if self._stop_requested:
                    self._interrupted = True
                    break
                if self.on_file_start is not None:
                    self.on_file_start(path)
                file_report = FileReport(path=str(path))
                report.files.append(file_report)
                self.planner.start_file(file_no)
                self.load_file(path, file_report, file_no)
        except KeyboardInterrupt:
            self._interrupted = True
        report.interrupted = self._interrupted

    def profile_for(self, path: Path) -> HoldingsProfile:
        return self.options.file_profiles.get(path, self.options.profile)

    def load_file(
        self, path: Path, file_report: FileReport | None = None, file_no: int = 0
    ) -> FileReport:
        """Load one file, counting into `file_report` (so that a load stopped by Ctrl-C still
        reports what it stored of the file). Stops after a batch when a stop was requested."""
        file_report = file_report if file_report is not None else FileReport(path=str(path))
        profile = self._file_profile = self.profile_for(path)
        file_report.profile = profile.name
        self._rejections.clear()
        self._lines.clear()
        try:
            handle = path.open("rb")
        except OSError as error:
            file_report.error = f"cannot open: {error.strerror or error}"
            return file_report
        with handle:
            head = handle.read(64)
            handle.seek(0)
            entries = (
                self._xml_entries(path, profile)
                if looks_like_xml(head)
                else self._iso_entries(handle, profile)
            )
            with contextlib.closing(entries):  # a stopped load closes the workers here
                batch: list[Entry] = []
                for entry in entries:
                    batch.append(entry)
                    if len(batch) >= self._batch_limit:
                        self._finish_batch(batch, file_report, file_no)
                        batch = []
                        if self.on_progress is not None and entry.offset is not None:
                            self.on_progress(entry.offset + len(entry.raw))
                        if self._stop_requested:
                            self._interrupted = True
                            break
                if batch:
                    self._finish_batch(batch, file_report, file_no)
        return file_report

    def _iso_entries(
        self, handle: BinaryIO, profile: HoldingsProfile
    ) -> Generator[Entry, None, None]:
        options = self.options
        outcomes = prepare_all(
            frame_records(handle),
            options.database.format,
            options.encoding,
            profile,
            options.workers,
            options.on_shelf_status,
            self.times,
            options.known_profiles,
        )
        with contextlib.closing(outcomes):
            for chunk, outcome in outcomes:
                entry = Entry(chunk.number, chunk.offset, chunk.data)
                if isinstance(outcome, Rejection):
                    entry.reject_reason = outcome.reason
                    self._rejections[chunk.number] = outcome
                else:
                    entry.prepared = self._checked(outcome, profile)
                yield entry

    def _xml_entries(self, path: Path, profile: HoldingsProfile) -> Generator[Entry, None, None]:
        fmt = self.options.database.format
        for item in read_xml_records(path):
            started = time.perf_counter()
            entry = Entry(item.number, None, b"")
            self._lines[item.number] = item.line
            if isinstance(item.record, RecordRejected):
                entry.reject_reason = item.record.reason
                self._rejections[item.number] = rejection_of(item.record)
            else:
                record_format = (
                    fmt
                    if fmt != "auto"
                    else ("unimarc" if looks_unimarc_record(item.record) else "marc21")
                )
                try:
                    prepared = prepare_record(
                        item.record,
                        record_format,
                        profile,
                        "utf-8",
                        on_shelf_status=self.options.on_shelf_status,
                        other_profiles=self.options.known_profiles,
                    )
                    entry.prepared = self._checked(prepared, profile)
                except RecordRejected as rejected:
                    entry.reject_reason = rejected.reason
                    self._rejections[item.number] = rejection_of(rejected, record_format)
            self.times.map += time.perf_counter() - started
            yield entry

    def _checked(self, prepared: Prepared, profile: HoldingsProfile) -> Prepared:
        words = self.options.copy_words
        if words is None:
            return prepared
        return checked_copies(prepared, words, profile.item_tag or "copies")

    def _rejection(self, entry: Entry) -> Rejection:
        """Why an entry was rejected, with what was read of the record: prepare-time rejects
        carry it; a reject of the store (a barcode another record owns, a match that is not
        clear) is described from the prepared record."""
        assert entry.reject_reason is not None
        early = self._rejections.pop(entry.number, None)
        if early is not None:
            return early
        prepared = entry.prepared
        if prepared is None:
            return Rejection(entry.reject_reason)
        bib = prepared.mapped.bib
        # The store's reasons name the copy's barcode when a copy is at fault: then the field
        # at fault is the profile's item field.
        item_tag = self._file_profile.item_tag
        words = set(entry.reject_reason.split())
        copy_at_fault = any(i.barcode in words for i in prepared.mapped.items)
        return Rejection(
            entry.reject_reason,
            entry.reject_field or (item_tag if copy_at_fault and item_tag else None),
            bib.control_number or prepared.record_id,
            bib.title,
            prepared.mapped.format,
        )

    def _index(self, pending: IndexBatch, store_id: str) -> None:
        """A committed batch's documents into the search index (when this load holds its
        writer), committed with the batch's change sequence."""
        if self._writer is None or pending.seq is None:
            return
        started = time.perf_counter()
        self._writer.apply_batch(self.store, pending.seq, store_id, pending.documents)
        self.times.index += time.perf_counter() - started

    def _size_next_batch(self, records: int, held_seconds: float) -> None:
        """SQLite: as many records as fit in `batch_target_ms` at this batch's pace, at most
        twice as many as this batch (one quick batch is no promise), within `batch_size`."""
        if self.store.dialect != "sqlite" or records == 0 or self._bulk:
            return
        per_record = max(held_seconds, 1e-6) / records
        fitting = int(self.options.batch_target_ms / 1000 / per_record)
        self._batch_limit = max(1, min(fitting, 2 * records, self.options.batch_size))

    def _finish_batch(self, batch: list[Entry], report: FileReport, file_no: int) -> None:
        ready = [e for e in batch if e.prepared is not None]
        started = time.perf_counter()
        if self.planner.dry_run:
            with self.store.read() as tx:
                self.planner.plan(tx, ready)
            self.times.store += time.perf_counter() - started
            self.batches += 1
            for row in self._outcome_rows(batch, file_no):
                self._dry_rows[(file_no, row.record_no or 0)] = row
            for entry in batch:  # after: the record it replaces may be of this very batch
                if entry.replaces is not None:
                    earlier = self._dry_rows.get((file_no, entry.replaces))
                    if earlier is not None:
                        self._dry_rows[(file_no, entry.replaces)] = replace(
                            earlier, replaced_by=entry.number
                        )
        else:
            self._store_batch(batch, ready, file_no, started)
        self._count(batch, report)

    def _store_batch(
        self, batch: list[Entry], ready: list[Entry], file_no: int, started: float
    ) -> None:
        position = self._position
        try:
            with self.store.write() as tx:
                self.planner.plan(tx, ready)
                pending = self.planner.write(tx, ready)
                self._write_outcomes(tx, batch, file_no)
                store_id = store_state(tx).store_id
            held = time.perf_counter() - started
            self.times.store += held
            self.batches += 1
            self._size_next_batch(len(batch), held)
            self._index(pending, store_id)
        except (IntegrityViolation, DataRefused):
            # A constraint we did not foresee: store one record per transaction to find the
            # culprit, so that only it is rejected (with the database's words).
            self.times.store += time.perf_counter() - started
            self.planner.written()  # rolled back: nothing of the batch is pending any more
            self._position = position
            for entry in batch:
                entry.reset()
                try:
                    self.batches += 1
                    with self.store.write() as tx:
                        if entry.prepared is not None:
                            self.planner.plan(tx, [entry])
                            pending = self.planner.write(tx, [entry])
                        else:
                            pending = IndexBatch()
                        self._write_outcomes(tx, [entry], file_no)
                        store_id = store_state(tx).store_id
                    self._index(pending, store_id)
                except (IntegrityViolation, DataRefused) as violation:
                    entry.reset()
                    entry.reject(f"the database refused the record: {violation}")
                    with self.store.write() as tx:
                        self._write_outcomes(tx, [entry], file_no)
                self.planner.written()
            return
        self.planner.written()

    def _outcome_rows(self, entries: list[Entry], file_no: int) -> list[batch_storage.OutcomeRow]:
        rows = []
        for entry in entries:
            if not entry.outcome:
                entry.outcome = "reject"  # refused while being prepared
            prepared, target = entry.prepared, entry.target
            self._position += 1
            rows.append(
                batch_storage.OutcomeRow(
                    position=self._position,
                    file_no=file_no,
                    record_no=entry.number,
                    offset=entry.offset,
                    database=self.options.database.name,
                    record_id=prepared.record_id if prepared else None,
                    outcome=entry.outcome,
                    matched_by=entry.matched_by,
                    matched_id=target.record_id if target and entry.outcome != "new" else None,
                    copies_created=entry.items_added,
                    reason=entry.reject_reason or entry.reason,
                    changes=entry.changes,
                )
            )
        return rows

    def _write_outcomes(self, tx: Transaction, entries: list[Entry], file_no: int) -> None:
        """The entries' outcome rows, in the transaction that stored them; a record that
        replaced an earlier one of its file (--on-duplicate last) marks it."""
        batch_id = self.planner.batch_id
        assert batch_id is not None
        rows = self._outcome_rows(entries, file_no)
        by_number = {row.record_no: index for index, row in enumerate(rows)}
        for entry in entries:
            if entry.replaces is None:
                continue
            index = by_number.get(entry.replaces)
            if index is not None:
                rows[index] = replace(rows[index], replaced_by=entry.number)
            else:
                batch_storage.set_replaced_by(tx, batch_id, file_no, entry.replaces, entry.number)
        batch_storage.write_outcomes(tx, batch_id, rows)

    def _count(self, batch: list[Entry], report: FileReport) -> None:
        """Counted once the batch is done: a batch a KeyboardInterrupt cut short is not."""
        report.framed += len(batch)
        for entry in batch:
            line = self._lines.pop(entry.number, None)
            control_number = (
                entry.prepared.mapped.bib.control_number if entry.prepared is not None else None
            )
            for warning in entry.warnings:
                report.warn(entry.number, entry.offset, warning, control_number, line)
            if entry.prepared is not None:
                # A record the store refused keeps its warnings: they often say why (LC's
                # 906 $b "cbc" read as a barcode under the wrong profile).
                for warning in entry.prepared.mapped.warnings:
                    report.warn(entry.number, entry.offset, warning, control_number, line)
            if entry.reject_reason is not None:
                why = self._rejection(entry)
                report.reject(entry.number, entry.offset, why, line=line)
                if self.rejects is not None and entry.raw:
                    self.rejects.write(entry.raw)
                continue
            assert entry.prepared is not None
            counter = REPORT_COUNTER[entry.outcome]
            setattr(report, counter, getattr(report, counter) + 1)
            report.items_added += entry.items_added
            report.items_updated += entry.items_updated
            report.encodings[entry.prepared.encoding] += 1
            if entry.prepared.encoding_note:
                report.encoding_mismatches += 1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
