"""One batch of prepared records on its way into the store: decide what happens to each
(`BatchPlanner.plan`), then, unless this is a dry run, write it (`BatchPlanner.write`).

Deciding reads only: the duplicate check (the same 001 earlier in the file), the match rule
(`matching`), the match actions (`--on-match replace|ignore|merge-copies`, `--on-new
add|ignore`), a copy barcode another record owns, and for an overlay the fields it changes
against the record's version before this load. A dry run decides exactly as a load does, on a
view of the catalogue that holds what the run would have written; a load writes what was
decided, with the batch's outcome rows and versions, in the caller's transaction.

Outcomes: `new`, `overlay` (the stored record replaced), `merged` (stored record kept, the
file's new copies added), `unchanged`, `ignored` (--match none on a stored id, --on-match
ignore, --on-new ignore), `reject` and `duplicate` (a later record with a 001 the file already
had; rejected unless --on-duplicate last).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.catalogue import repository
from gateway.catalogue.batches import storage as batch_storage
from gateway.catalogue.indexes import IndexDocument
from gateway.catalogue.loading.changes import record_changes
from gateway.catalogue.loading.matching import (
    ON_DUPLICATE,
    ON_MATCH,
    ON_NEW,
    CatalogueView,
    MatchRule,
    find_match,
)
from gateway.catalogue.loading.messages import DUPLICATE_001, DUPLICATE_001_REPLACED
from gateway.catalogue.loading.prepare import Prepared
from gateway.catalogue.model import ItemData
from gateway.catalogue.repository import StoredItem, StoredRecord
from gateway.catalogue.search_index import IndexBatch
from gateway.store import Transaction
from marc.errors import RecordRejected, RecordWarning

# A report's counter for each outcome (the report's field names are a contract).
REPORT_COUNTER = {
    "new": "loaded",
    "overlay": "overlaid",
    "merged": "merged",
    "unchanged": "unchanged",
    "ignored": "ignored",
    "reject": "rejected",
    "duplicate": "rejected",
}


@dataclass(frozen=True)
class MatchPolicy:
    """How records find their stored record and what happens then (`libgate load` options)."""

    rule: MatchRule
    on_match: str = "replace"
    on_new: str = "add"
    on_duplicate: str = "reject"

    def __post_init__(self) -> None:
        for name, value, known in (
            ("--on-match", self.on_match, ON_MATCH),
            ("--on-new", self.on_new, ON_NEW),
            ("--on-duplicate", self.on_duplicate, ON_DUPLICATE),
        ):
            if value not in known:
                raise ValueError(f"{name} must be one of {', '.join(known)}, not {value!r}")


@dataclass
class Entry:
    """One framed record on its way through a batch."""

    number: int
    offset: int | None
    raw: bytes
    prepared: Prepared | None = None
    reject_reason: str | None = None
    outcome: str = ""  # new | overlay | merged | unchanged | ignored | reject | duplicate
    items_added: int = 0
    items_updated: int = 0
    target: StoredRecord | None = None  # the record it became or overlays (pk < 0: not yet)
    matched_by: str = ""
    reason: str = ""  # why it was ignored
    changes: list[dict[str, Any]] | None = None  # overlay: the fields it changes
    replaces: int | None = None  # --on-duplicate last: the earlier record of the file it replaces
    warnings: list[RecordWarning] = field(default_factory=list)  # the batch's own (duplicates)
    reject_field: str | None = None  # the field at fault in a reject the batch decided
    new_items: list[ItemData] = field(default_factory=list)
    updated_items: list[tuple[StoredItem, ItemData]] = field(default_factory=list)

    def reset(self) -> None:
        """Forget what was decided for a prepared record (its transaction was rolled back);
        a record refused while being prepared stays refused."""
        if self.prepared is None:
            return
        self.reject_reason = self.reject_field = None
        self.outcome = self.matched_by = self.reason = ""
        self.items_added = self.items_updated = 0
        self.target = None
        self.changes = None
        self.replaces = None
        self.warnings.clear()
        self.new_items.clear()
        self.updated_items.clear()

    def reject(self, reason: str, outcome: str = "reject", field: str | None = None) -> None:
        self.outcome = outcome
        self.reject_reason = reason
        self.reject_field = field

    @property
    def record_pk(self) -> int | None:
        return self.target.pk if self.target is not None and self.target.pk > 0 else None


class BatchPlanner:
    """Decides and writes the store batches of one load (`batch_id`), or decides only (a dry
    run: `batch_id` None, and the view keeps what the run would have written)."""

    def __init__(self, database: str, policy: MatchPolicy, batch_id: int | None) -> None:
        self.database = database
        self.policy = policy
        self.batch_id = batch_id
        self.view = CatalogueView(database)
        self.file_no = 0
        # 001 → number of the record of this file that a later one with that 001 meets: the
        # whole file in a dry run; in a load, the batch in hand (the store has the rest).
        self.seen: dict[str, int] = {}

    @property
    def dry_run(self) -> bool:
        return self.batch_id is None

    def start_file(self, file_no: int) -> None:
        self.file_no = file_no
        self.seen.clear()

    def written(self) -> None:
        """A load's batch is committed: the store now holds what was pending."""
        self.view.forget_pending()
        self.seen.clear()

    # --- deciding ---------------------------------------------------------------------------

    def plan(self, tx: Transaction, entries: list[Entry]) -> None:
        """Decide every prepared entry of the batch, in file order."""
        ready = [e for e in entries if e.prepared is not None and e.reject_reason is None]
        record_ids = [e.prepared.record_id for e in ready if e.prepared]
        barcodes = [i.barcode for e in ready if e.prepared for i in e.prepared.mapped.items]
        self.view.prefetch(tx, record_ids, barcodes, lock=not self.dry_run)
        earlier: dict[str, int] = {}
        if self.batch_id is not None:
            with_001 = [e.prepared.record_id for e in ready if e.prepared and _has_001(e)]
            earlier = batch_storage.earlier_in_file(tx, self.batch_id, self.file_no, with_001)
        for entry in ready:
            self._plan_entry(tx, entry, earlier)
        self._describe_overlays(tx, [e for e in ready if e.outcome == "overlay"])

    def _plan_entry(self, tx: Transaction, entry: Entry, earlier: dict[str, int]) -> None:
        prepared = entry.prepared
        assert prepared is not None
        record_id, bib = prepared.record_id, prepared.mapped.bib
        if _has_001(entry):
            before = self.seen.get(record_id, earlier.get(record_id))
            if before is not None and not self._allow_duplicate(entry, before):
                return
            self.seen[record_id] = entry.number
        doc = prepared.mapped.index
        sort_title = doc.sort_title if isinstance(doc, IndexDocument) else ""
        try:
            match = find_match(tx, self.view, self.policy.rule, record_id, bib, sort_title)
        except RecordRejected as rejected:
            entry.reject(rejected.reason)
            return
        if match is None:
            self._plan_new(tx, entry, sort_title)
            return
        target = match.stored
        entry.target, entry.matched_by = target, match.point
        if self.policy.on_match == "ignore":
            if target.digest == prepared.digest:
                entry.outcome = "unchanged"
            else:
                entry.outcome = "ignored"
                entry.reason = f"matches record {target.record_id} (--on-match ignore)"
            return
        merging = self.policy.on_match == "merge-copies"
        clash = self._barcode_clash(tx, entry, target.pk)
        if clash:
            entry.reject(clash)
            return
        if merging:
            entry.new_items = [
                i for i in prepared.mapped.items if self.view.item(i.barcode) is None
            ]
            entry.outcome = "merged" if entry.new_items else "unchanged"
        elif target.digest == prepared.digest:
            entry.outcome = "unchanged"
            return
        else:
            entry.outcome = "overlay"
            entry.target = StoredRecord(
                target.pk, self.database, target.record_id, prepared.mapped.format, prepared.digest
            )
            self.view.put(entry.target, bib, sort_title, added=False)
            for item in prepared.mapped.items:
                existing = self.view.item(item.barcode)
                if existing is None:
                    entry.new_items.append(item)
                else:
                    entry.updated_items.append((existing, item))
        self._place_items(entry)

    def _allow_duplicate(self, entry: Entry, before: int) -> bool:
        """The same 001 as record `before` of this file: rejected, or (--on-duplicate last)
        let through to replace it. Either way both record numbers are named."""
        assert entry.prepared is not None
        record_id = entry.prepared.record_id
        if self.policy.on_duplicate == "last":
            entry.replaces = before
            entry.warnings.append(
                RecordWarning(
                    DUPLICATE_001_REPLACED,
                    f"001 {record_id} is in records {before} and {entry.number} of this file;"
                    f" record {entry.number} replaces record {before} (--on-duplicate last)",
                    "001",
                )
            )
            return True
        entry.reject(
            f"001 {record_id} is also record {before} of this file: a later record with the"
            " same 001 is not loaded (load with --on-duplicate last to let the later one"
            " replace it)",
            "duplicate",
            "001",
        )
        entry.warnings.append(
            RecordWarning(
                DUPLICATE_001,
                f"001 {record_id} is in records {before} and {entry.number} of this file;"
                f" record {entry.number} is rejected",
                "001",
            )
        )
        return False

    def _plan_new(self, tx: Transaction, entry: Entry, sort_title: str) -> None:
        prepared = entry.prepared
        assert prepared is not None
        record_id = prepared.record_id
        if self.view.by_id(record_id) is not None:
            # The rule did not look at the id (none, or points without 001), but the id is
            # taken: the record cannot be added.
            if not self.policy.rule.points:
                entry.outcome = "ignored"
                entry.reason = (
                    f"record {record_id} is already in database {self.database};"
                    " --match none only adds new records"
                )
            else:
                entry.reject(
                    f"record {record_id} is already in database {self.database}, but the match"
                    f" rule ({self.policy.rule.spec}) did not find it: add 001 to the rule to"
                    " overlay it"
                )
            return
        if self.policy.on_new == "ignore":
            entry.outcome = "ignored"
            entry.reason = "no stored record matches (--on-new ignore)"
            return
        clash = self._barcode_clash(tx, entry, None)
        if clash:
            entry.reject(clash)
            return
        entry.outcome = "new"
        entry.target = StoredRecord(
            self.view.placeholder(),
            self.database,
            record_id,
            prepared.mapped.format,
            prepared.digest,
        )
        self.view.put(entry.target, prepared.mapped.bib, sort_title, added=True)
        entry.new_items = list(prepared.mapped.items)
        self._place_items(entry)

    def _place_items(self, entry: Entry) -> None:
        assert entry.target is not None
        pk = entry.target.pk
        entry.items_added = len(entry.new_items)
        entry.items_updated = len(entry.updated_items)
        for item in entry.new_items:
            self.view.put_item(StoredItem.of(0, pk, item, "marc"))
        for existing, item in entry.updated_items:
            self.view.put_item(StoredItem.of(existing.pk, pk, item, "marc", existing.status))

    def _barcode_clash(self, tx: Transaction, entry: Entry, target_pk: int | None) -> str:
        assert entry.prepared is not None
        for item in entry.prepared.mapped.items:
            existing = self.view.item(item.barcode)
            if existing is None or existing.record_pk == target_pk:
                continue
            owner = self._owner(existing.record_pk, tx)
            return (
                f"copy barcode {item.barcode} already belongs to {owner}; item barcodes"
                " are unique across the library"
            )
        return ""

    def _owner(self, record_pk: int, tx: Transaction) -> str:
        for pending in self.view.records.values():
            if pending.stored.pk == record_pk:
                return f"record {pending.stored.record_id} in database {self.database}"
        if record_pk > 0:
            owner = repository.record_by_pk(tx, record_pk)
            if owner is not None:
                return f"record {owner.record_id} in database {owner.database}"
        return "another record"

    def _describe_overlays(self, tx: Transaction, overlays: list[Entry]) -> None:
        """Each overlay's changes against the record's version before this load (none when
        the load itself added the record)."""
        stored = [e.target.pk for e in overlays if e.target is not None and e.target.pk > 0]
        if not stored:
            return
        before: dict[int, bytes | None] = {}
        if self.batch_id is not None:
            for pk, (_, marc) in batch_storage.versions_before(tx, self.batch_id, stored).items():
                before[pk] = marc
        current = batch_storage.stored_marc(tx, [pk for pk in stored if pk not in before])
        before.update(current)
        for entry in overlays:
            assert entry.target is not None and entry.prepared is not None
            old = before.get(entry.target.pk)
            if old is not None:
                entry.changes = record_changes(old, entry.prepared.mapped.marc)

    # --- writing (a load, not a dry run) ------------------------------------------------------

    def write(self, tx: Transaction, entries: list[Entry]) -> IndexBatch:
        """Write what `plan` decided, with the batch's versions, in the caller's transaction.
        Returns the batch's index work (its change sequence and search documents)."""
        batch_id = self.batch_id
        assert batch_id is not None, "a dry run writes nothing"
        pending = IndexBatch()
        changing = [
            e
            for e in entries
            if e.outcome in ("overlay", "merged") and e.target is not None and e.target.pk > 0
        ]
        batch_storage.keep_versions(
            tx, batch_id, [e.target.pk for e in changing if e.target], "changed"
        )
        batch_storage.keep_items_before(
            tx,
            batch_id,
            [old.pk for e in entries for old, _ in e.updated_items if old.pk > 0],
            "updated",
        )
        new_records: dict[int, tuple[str, Prepared]] = {}  # placeholder pk → (id, record)
        inserts: dict[str, tuple[int, ItemData]] = {}  # barcode → (record pk, copy)
        for entry in entries:
            target, prepared = entry.target, entry.prepared
            if entry.outcome not in ("new", "overlay", "merged") or target is None:
                continue
            assert prepared is not None
            if entry.outcome == "new" or (entry.outcome == "overlay" and target.pk < 0):
                new_records[target.pk] = (target.record_id, prepared)
            elif entry.outcome == "overlay":
                repository.update_record(tx, target.pk, prepared.mapped, prepared.digest, pending)
            for item in entry.new_items:
                inserts[item.barcode] = (target.pk, item)
            for existing, item in entry.updated_items:
                if item.barcode in inserts or existing.pk <= 0:
                    inserts[item.barcode] = (target.pk, item)
                else:
                    repository.update_item_description(tx, existing.pk, target.pk, item, "marc")
        # New records and copies in a few statements: a round trip for each was most of
        # PostgreSQL's loading time.
        real_pk = repository.insert_records(
            tx,
            self.database,
            [(rid, p.mapped, p.digest) for rid, p in new_records.values()],
            pending,
        )
        by_placeholder = {pk: real_pk[rid] for pk, (rid, _) in new_records.items()}
        batch_storage.keep_added(
            tx, batch_id, [(pk, self.database, rid) for rid, pk in real_pk.items()]
        )
        rows = [(by_placeholder.get(pk, pk), item) for pk, item in inserts.values()]
        repository.insert_items(tx, rows, "marc")
        batch_storage.keep_items_created(tx, batch_id, [(i.barcode, pk) for pk, i in rows])
        pending.flush(tx)
        for entry in entries:
            target = entry.target
            if target is not None and target.pk < 0 and target.pk in by_placeholder:
                entry.target = StoredRecord(
                    by_placeholder[target.pk],
                    target.database,
                    target.record_id,
                    target.format,
                    target.digest,
                )
        return pending


def _has_001(entry: Entry) -> bool:
    return entry.prepared is not None and bool(entry.prepared.mapped.bib.control_number)
