"""Catalogue storage: every SQL statement about records and items, as small functions that
run inside a caller's transaction and return typed values.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple

from gateway.catalogue.indexes import IndexDocument, index_document
from gateway.catalogue.model import BibRecord, ItemData, MappedRecord
from gateway.catalogue.search_index import IndexBatch, PendingRecord, delete_index, write_index
from gateway.store import Transaction

IDENTIFIER_KINDS = ("isbn", "issn", "isrc")


@dataclass(frozen=True, slots=True)
class StoredRecord:
    pk: int
    database: str
    record_id: str
    format: str
    digest: str


@dataclass(frozen=True, slots=True)
class StoredItem:
    pk: int
    barcode: str
    record_pk: int
    library: str
    location: str
    call_number: str
    item_type: str
    status: str
    source: str

    @classmethod
    def of(
        cls, pk: int, record_pk: int, item: ItemData, source: str, status: str | None = None
    ) -> StoredItem:
        """The row `item` is (or becomes) under `pk`; `status` when it is not the item's."""
        return cls(
            pk,
            item.barcode,
            record_pk,
            item.library,
            item.location,
            item.call_number,
            item.item_type,
            item.status if status is None else status,
            source,
        )


# Tables whose planner statistics matter for search; refreshed after bulk loads.
SEARCHED_TABLES = (
    "bib_records",
    "bib_identifiers",
    "items",
    "browse_headings",
    "browse_entries",
)


def searched_tables(dialect: str) -> tuple[str, ...]:
    return SEARCHED_TABLES


RECORD_COLUMNS = "id, database, record_id, format, digest"
ITEM_COLUMNS = "id, barcode, record_pk, library, location, call_number, item_type, status, source"


def find_record(tx: Transaction, database: str, record_id: str) -> StoredRecord | None:
    row = tx.one(
        f"SELECT {RECORD_COLUMNS} FROM bib_records WHERE database = ? AND record_id = ?"
        + tx.for_update,
        (database, record_id),
    )
    return StoredRecord(*row) if row else None


def record_by_pk(tx: Transaction, record_pk: int) -> StoredRecord | None:
    row = tx.one(f"SELECT {RECORD_COLUMNS} FROM bib_records WHERE id = ?", (record_pk,))
    return StoredRecord(*row) if row else None


def find_records(
    tx: Transaction, database: str, record_ids: list[str], lock: bool = True
) -> dict[str, StoredRecord]:
    """Records of a batch by control number, in one query per 500 ids (locked unless a dry
    run only looks)."""
    found: dict[str, StoredRecord] = {}
    for start in range(0, len(record_ids), 500):
        chunk = record_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in tx.execute(
            f"SELECT {RECORD_COLUMNS} FROM bib_records WHERE database = ?"
            f" AND record_id IN ({marks})" + (tx.for_update if lock else ""),
            (database, *chunk),
        ):
            found[row[2]] = StoredRecord(*row)
    return found


def records_by_identifier(
    tx: Transaction, database: str, kind: str, value: str
) -> list[StoredRecord]:
    rows = tx.execute(
        f"SELECT {', '.join('r.' + c.strip() for c in RECORD_COLUMNS.split(','))}"
        " FROM bib_identifiers i JOIN bib_records r ON r.id = i.record_pk"
        " WHERE r.database = ? AND i.kind = ? AND i.value = ? ORDER BY r.id",
        (database, kind, value),
    )
    return [StoredRecord(*row) for row in rows]


def records_by_sort_title(
    tx: Transaction, database: str, sort_title: str, year: int
) -> list[tuple[StoredRecord, str, str]]:
    """Records filed under a title sort key with a year, with their title and main author
    (the `title+author+year` match point compares those folded)."""
    rows = tx.execute(
        f"SELECT {RECORD_COLUMNS}, title, author FROM bib_records"
        " WHERE database = ? AND sort_title = ? AND year = ? ORDER BY id",
        (database, sort_title, year),
    )
    return [(StoredRecord(*row[:5]), str(row[5]), str(row[6] or "")) for row in rows]


def _document(mapped: MappedRecord) -> IndexDocument:
    return mapped.index if isinstance(mapped.index, IndexDocument) else index_document(mapped.bib)


def _identifier_rows(pk: int, mapped: MappedRecord) -> list[tuple[int, str, str]]:
    bib = mapped.bib
    return (
        [(pk, "isbn", v) for v in bib.isbns]
        + [(pk, "issn", v) for v in bib.issns]
        + [(pk, "isrc", v) for v in bib.isrcs]
    )


RECORD_DATA_COLUMNS = (
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


def _record_columns(mapped: MappedRecord, digest: str, doc: IndexDocument) -> tuple[Any, ...]:
    """The values of RECORD_DATA_COLUMNS, in that order."""
    bib = mapped.bib
    return (
        mapped.format,
        mapped.marc,
        mapped.bib_json if mapped.bib_json is not None else bib.to_json(),
        bib.display_title,
        bib.main_author,
        bib.year,
        digest,
        doc.sort_title,
        doc.sort_author,
    )


def insert_records(
    tx: Transaction,
    database: str,
    records: list[tuple[str, MappedRecord, str]],
    pending: IndexBatch,
    chunk: int = 200,
) -> dict[str, int]:
    """Store new records (record_id, mapped, digest) with multi-row INSERTs; returns their ids
    by record_id. Identifiers and index rows go to `pending`."""
    columns = ", ".join(("database", "record_id", "change_seq", *RECORD_DATA_COLUMNS))
    row = "(" + ", ".join("?" * (3 + len(RECORD_DATA_COLUMNS))) + ")"
    ids: dict[str, int] = {}
    if not records:
        return ids
    seq = pending.change_seq(tx)
    for start in range(0, len(records), chunk):
        part = [
            (rid, mapped, digest, _document(mapped))
            for rid, mapped, digest in records[start : start + chunk]
        ]
        params: list[Any] = []
        for record_id, mapped, digest, doc in part:
            params += [database, record_id, seq, *_record_columns(mapped, digest, doc)]
        rows = tx.execute(
            f"INSERT INTO bib_records ({columns}) VALUES "
            + ", ".join([row] * len(part))
            + " RETURNING id, record_id",
            params,
        )
        ids.update({record_id: int(pk) for pk, record_id in rows})
        for record_id, mapped, _, doc in part:
            _index(ids[record_id], database, record_id, mapped, doc, pending, replaces=False)
    return ids


def update_record(
    tx: Transaction, pk: int, mapped: MappedRecord, digest: str, pending: IndexBatch
) -> None:
    """Overlay a stored record's bibliographic data and rebuild its identifiers and index rows
    (with the batch's change sequence, so every search index takes the new version)."""
    doc = _document(mapped)
    assignments = ", ".join(f"{column} = ?" for column in RECORD_DATA_COLUMNS)
    tx.execute(
        f"UPDATE bib_records SET {assignments}, change_seq = ? WHERE id = ?",
        (*_record_columns(mapped, digest, doc), pending.change_seq(tx), pk),
    )
    row = tx.one("SELECT database, record_id FROM bib_records WHERE id = ?", (pk,))
    assert row is not None
    if not pending.discard(pk):
        tx.execute("DELETE FROM bib_identifiers WHERE record_pk = ?", (pk,))
        delete_index(tx, pk)
    _index(pk, row[0], row[1], mapped, doc, pending, replaces=True)


def _index(
    pk: int,
    database: str,
    record_id: str,
    mapped: MappedRecord,
    doc: IndexDocument,
    pending: IndexBatch,
    *,
    replaces: bool,
) -> None:
    pending.put(
        pk,
        PendingRecord(database, doc, _identifier_rows(pk, mapped), record_id, mapped.bib, replaces),
    )


def items_by_barcode(
    tx: Transaction, barcodes: list[str], lock: bool = True
) -> dict[str, StoredItem]:
    found: dict[str, StoredItem] = {}
    for start in range(0, len(barcodes), 500):
        chunk = barcodes[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in tx.execute(
            f"SELECT {ITEM_COLUMNS} FROM items WHERE barcode IN ({marks})"
            + (tx.for_update if lock else ""),
            chunk,
        ):
            found[row[1]] = StoredItem(*row)
    return found


def copies_left(tx: Transaction, record_pks: list[int]) -> dict[int, list[str]]:
    """The barcodes of the copies these records still have (records without any left out)."""
    found: dict[int, list[str]] = {}
    for start in range(0, len(record_pks), 500):
        chunk = record_pks[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for record_pk, barcode in tx.execute(
            f"SELECT record_pk, barcode FROM items WHERE record_pk IN ({marks}) ORDER BY barcode",
            chunk,
        ):
            found.setdefault(int(record_pk), []).append(str(barcode))
    return found


def insert_item(tx: Transaction, record_pk: int, item: ItemData, source: str) -> int:
    return tx.insert(
        "INSERT INTO items (barcode, record_pk, library, location, call_number, item_type,"
        " status, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            item.barcode,
            record_pk,
            item.library,
            item.location,
            item.call_number,
            item.item_type,
            item.status,
            source,
        ),
    )


def insert_items(tx: Transaction, rows: list[tuple[int, ItemData]], source: str) -> None:
    if rows:
        tx.executemany(
            "INSERT INTO items (barcode, record_pk, library, location, call_number, item_type,"
            " status, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (i.barcode, pk, i.library, i.location, i.call_number, i.item_type, i.status, source)
                for pk, i in rows
            ],
        )


def update_item_description(
    tx: Transaction, item_pk: int, record_pk: int, item: ItemData, source: str
) -> None:
    """New description of an existing copy; its circulation status is left alone."""
    tx.execute(
        "UPDATE items SET record_pk = ?, library = ?, location = ?, call_number = ?,"
        " item_type = ?, source = ? WHERE id = ?",
        (record_pk, item.library, item.location, item.call_number, item.item_type, source, item_pk),
    )


def set_item_status(tx: Transaction, item_pk: int, status: str) -> None:
    tx.execute("UPDATE items SET status = ? WHERE id = ?", (status, item_pk))


class StoredMarc(NamedTuple):
    """A record as loaded: its id, its MARC format and its ISO 2709 bytes."""

    record_id: str
    format: str
    marc: bytes


def record_marc(tx: Transaction, database: str) -> list[StoredMarc]:
    """Every record in a database, in load order."""
    rows = tx.execute(
        "SELECT record_id, format, marc FROM bib_records WHERE database = ? ORDER BY id",
        (database,),
    )
    return [StoredMarc(r[0], r[1], bytes(r[2])) for r in rows]


def copies_by_record(tx: Transaction, database: str) -> dict[str, list[ItemData]]:
    """Every copy of a database's records as it is now (from MARC or CSV, with its live
    status), by record id, in the order they were added."""
    found: dict[str, list[ItemData]] = {}
    rows = tx.execute(
        "SELECT r.record_id, i.barcode, i.library, i.location, i.call_number, i.item_type,"
        " i.status FROM items i JOIN bib_records r ON r.id = i.record_pk"
        " WHERE r.database = ? ORDER BY i.id",
        (database,),
    )
    for record_id, *item in rows:
        found.setdefault(record_id, []).append(ItemData(*item))
    return found


def record_count(tx: Transaction, database: str | None = None) -> int:
    if database is None:
        return int(tx.scalar("SELECT count(*) FROM bib_records"))
    return int(tx.scalar("SELECT count(*) FROM bib_records WHERE database = ?", (database,)))


def catalogue_empty(tx: Transaction) -> bool:
    """No record in any database (so no copy either: copies belong to records)."""
    return tx.one("SELECT 1 FROM bib_records LIMIT 1") is None


def item_count(tx: Transaction) -> int:
    return int(tx.scalar("SELECT count(*) FROM items"))


def refresh_sort_keys(
    tx_factory: Callable[[], AbstractContextManager[Transaction]],
    database: str | None = None,
    batch: int = 500,
) -> int:
    """Recompute the stored sort keys and browse headings of every record (after a
    normalisation change); `tx_factory` is `store.write`, one transaction per batch. The
    search index is rebuilt separately (`textindex.SearchIndex.rebuild`)."""
    done = 0
    last = 0
    while True:
        with tx_factory() as tx:
            where = "id > ?" + (" AND database = ?" if database else "")
            params: list[object] = [last] + ([database] if database else [])
            rows = tx.execute(
                f"SELECT id, database, bib FROM bib_records WHERE {where} ORDER BY id LIMIT {int(batch)}",
                params,
            )
            for pk, db, bib_json in rows:
                doc = index_document(BibRecord.from_json(bib_json))
                delete_index(tx, pk)
                write_index(tx, pk, db, doc)
                tx.execute(
                    "UPDATE bib_records SET sort_title = ?, sort_author = ? WHERE id = ?",
                    (doc.sort_title, doc.sort_author, pk),
                )
        if not rows:
            return done
        done += len(rows)
        last = rows[-1][0]


@dataclass(frozen=True, slots=True)
class RetrievedRecord:
    """A record as protocol front-ends send it: stored MARC and mapped data (JSON)."""

    pk: int
    database: str
    record_id: str
    format: str
    marc: bytes
    bib_json: str
    digest: str  # changes whenever the record does: a cache key for built forms


def records_for_retrieval(tx: Transaction, record_pks: list[int]) -> dict[int, RetrievedRecord]:
    """Records by primary key, for building response records; missing ones are left out."""
    found: dict[int, RetrievedRecord] = {}
    for start in range(0, len(record_pks), 500):
        chunk = record_pks[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in tx.execute(
            "SELECT id, database, record_id, format, marc, bib, digest FROM bib_records"
            f" WHERE id IN ({marks})",
            chunk,
        ):
            found[int(row[0])] = RetrievedRecord(
                int(row[0]), row[1], row[2], row[3], bytes(row[4]), row[5], row[6]
            )
    return found
