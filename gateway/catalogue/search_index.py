"""A record's store-side index rows, in the caller's transaction: its identifiers (ISBN
matching at load) and its browse headings (plain B-tree sorted lists, which browse and scan
read in filing order). Keyword search and ranking are Tantivy's (`textindex`): a batch
collects each record's search document here, for the loader to write after the store commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import tantivy

from gateway.catalogue.indexes import IndexDocument
from gateway.catalogue.model import BibRecord
from gateway.catalogue.textindex import make_document, next_change_seq
from gateway.store import Transaction


def delete_index(tx: Transaction, record_pk: int) -> None:
    tx.execute("DELETE FROM browse_entries WHERE record_pk = ?", (record_pk,))


def write_index(tx: Transaction, record_pk: int, database: str, doc: IndexDocument) -> None:
    write_headings(tx, record_pk, database, doc.headings)


def write_headings(
    tx: Transaction, record_pk: int, database: str, headings: Iterable[tuple[str, str, str]]
) -> None:
    """The record's browse entries: each (field, sort key, heading) filed under its heading,
    made if new (a restored version's entries go through here too)."""
    for field, key, heading in headings:
        heading_id = tx.scalar(
            "INSERT INTO browse_headings (database, field, sort_key, heading) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (database, field, sort_key) DO UPDATE SET heading = browse_headings.heading"
            " RETURNING id",
            (database, field, key, heading),
        )
        tx.execute(
            "INSERT INTO browse_entries (heading_id, record_pk) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (heading_id, record_pk),
        )


@dataclass(frozen=True, slots=True)
class PendingRecord:
    database: str
    doc: IndexDocument
    identifiers: list[tuple[int, str, str]]
    record_id: str
    bib: BibRecord
    replaces: bool  # the record was stored (and indexed) before this batch


class IndexBatch:
    """Index rows of a batch of records, written with a few `executemany` calls at the end of
    the batch instead of a dozen statements per record. A record written twice in one batch
    (the same 001 twice in a file) keeps only its last version. The batch's change sequence
    is taken once, at its first record (`change_seq`), and stamped on every record it writes."""

    def __init__(self) -> None:
        self._pending: dict[int, PendingRecord] = {}
        self.seq: int | None = None
        self.documents: list[tuple[int, tantivy.Document, bool]] = []

    def change_seq(self, tx: Transaction) -> int:
        if self.seq is None:
            self.seq = next_change_seq(tx)
        return self.seq

    def put(self, record_pk: int, record: PendingRecord) -> None:
        earlier = self._pending.get(record_pk)
        if earlier is not None and earlier.replaces:
            record = PendingRecord(
                record.database,
                record.doc,
                record.identifiers,
                record.record_id,
                record.bib,
                True,
            )
        self._pending[record_pk] = record

    def discard(self, record_pk: int) -> bool:
        """Forget a record's pending rows; True if there were any."""
        return self._pending.pop(record_pk, None) is not None

    def flush(self, tx: Transaction) -> None:
        if not self._pending:
            return
        items = list(self._pending.items())
        self._pending.clear()
        self.documents.extend(
            (pk, make_document(pk, p.database, p.record_id, p.bib, p.doc), p.replaces)
            for pk, p in items
        )
        identifiers = [row for _, p in items for row in p.identifiers]
        if identifiers:
            tx.executemany(
                "INSERT INTO bib_identifiers (record_pk, kind, value) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                identifiers,
            )
        headings = {
            (p.database, field, key): heading
            for _, p in items
            for field, key, heading in p.doc.headings
        }
        if not headings:
            return
        tx.executemany(
            "INSERT INTO browse_headings (database, field, sort_key, heading) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (database, field, sort_key) DO NOTHING",
            [(*key, heading) for key, heading in headings.items()],
        )
        ids: dict[tuple[str, str, str], int] = {}
        by_group: dict[tuple[str, str], list[str]] = {}
        for db, field, key in headings:
            by_group.setdefault((db, field), []).append(key)
        for (db, field), keys in by_group.items():
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for heading_id, key in tx.execute(
                    "SELECT id, sort_key FROM browse_headings WHERE database = ? AND field = ?"
                    f" AND sort_key IN ({marks})",
                    (db, field, *chunk),
                ):
                    ids[(db, field, key)] = heading_id
        tx.executemany(
            "INSERT INTO browse_entries (heading_id, record_pk) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [
                (ids[(p.database, field, key)], pk)
                for pk, p in items
                for field, key, _ in p.doc.headings
            ],
        )
