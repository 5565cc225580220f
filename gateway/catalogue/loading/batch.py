"""One batch of prepared records on its way into the store: match each to a stored record
(`--match`), refuse a copy barcode another record owns, then overlay in place and insert the
new records and copies in a few statements. The caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.catalogue import repository
from gateway.catalogue.loading.prepare import Prepared
from gateway.catalogue.model import ItemData
from gateway.catalogue.search_index import IndexBatch
from gateway.store import Transaction
from marc.errors import RecordRejected

MATCH_MODES = ("001", "isbn", "none")


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


def store_batch(tx: Transaction, entries: list[Entry], database: str, match: str) -> IndexBatch:
    """Match, overlay and insert a batch in the caller's transaction; each entry gets its
    outcome (loaded, overlaid, unchanged) or its reject reason. Returns the batch's index
    work: its change sequence and the search documents to write once the store committed."""
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
            target = _match(tx, prepared, by_control, database, match)
        except RecordRejected as rejected:
            entry.reject_reason = rejected.reason
            continue
        target_pk = target.pk if target else None
        clash = _barcode_clash(tx, prepared, target_pk, stored_items)
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
    return pending


def _match(
    tx: Transaction,
    prepared: Prepared,
    by_control: dict[str, repository.StoredRecord],
    database: str,
    mode: str,
) -> repository.StoredRecord | None:
    """The stored record this one overlays, or None for a new record (by `--match` mode)."""
    same_id = by_control.get(prepared.record_id)
    if mode == "001":
        return same_id
    if mode == "none":
        if same_id is not None:
            raise RecordRejected(
                f"record {prepared.record_id} is already in database"
                f" {database}; --match none only adds new records"
                " (use --match 001 to overlay)"
            )
        return None
    isbns = prepared.mapped.bib.isbns
    if not isbns:
        return same_id
    matches = repository.records_by_identifier(tx, database, "isbn", isbns[0])
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
