"""Writing a record's search index rows, per engine, in the caller's transaction.

SQLite keeps keyword token streams in an FTS5 table (rowid = record id); PostgreSQL keeps them
as tsvectors with positions in `search_docs`. Both receive the same streams from
`indexes.index_document`, so both answer the same queries the same way.
"""

from __future__ import annotations

from gateway.catalogue.indexes import KEYWORD_FIELDS, VALUE_SEPARATOR, IndexDocument
from gateway.store import Transaction

MAX_POSITIONS = 16000  # PostgreSQL tsvector positions stop at 16383


def database_token(database: str) -> str:
    """The FTS token naming a database: letters and digits only, whatever the name."""
    return "db" + database.encode("utf-8").hex()


def tsvector_literal(tokens: list[str], first_position: int = 1) -> str:
    """A tsvector in PostgreSQL's input syntax, positions as given (1-based)."""
    positions: dict[str, list[int]] = {}
    for offset, token in enumerate(tokens[:MAX_POSITIONS]):
        positions.setdefault(token, []).append(first_position + offset)
    parts = []
    for token, where in positions.items():
        quoted = token.replace("\\", "\\\\").replace("'", "''")
        parts.append(f"'{quoted}':{','.join(map(str, where[:256]))}")
    return " ".join(parts)


def delete_index(tx: Transaction, record_pk: int) -> None:
    if tx.dialect == "sqlite":
        tx.execute("DELETE FROM search_fts WHERE rowid = ?", (record_pk,))
    else:
        tx.execute("DELETE FROM search_docs WHERE record_pk = ?", (record_pk,))
    tx.execute("DELETE FROM search_exact WHERE record_pk = ?", (record_pk,))
    tx.execute("DELETE FROM browse_entries WHERE record_pk = ?", (record_pk,))


def write_index(tx: Transaction, record_pk: int, database: str, doc: IndexDocument) -> None:
    if tx.dialect == "sqlite":
        tx.execute(
            "INSERT INTO search_fts (rowid, db, title, author, subject, series, publisher)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record_pk,
                database_token(database),
                *(" ".join(doc.keyword[f]) for f in KEYWORD_FIELDS),
            ),
        )
    else:
        any_stream = _any_stream(doc)
        tx.execute(
            "INSERT INTO search_docs (record_pk, database, title, author, subject, series,"
            " publisher, any_field) VALUES (?, ?, ?::tsvector, ?::tsvector, ?::tsvector,"
            " ?::tsvector, ?::tsvector, ?::tsvector)",
            (
                record_pk,
                database,
                *(tsvector_literal(doc.keyword[f]) for f in KEYWORD_FIELDS),
                tsvector_literal(any_stream),
            ),
        )
    if doc.exact:
        tx.executemany(
            "INSERT INTO search_exact (database, field, value, record_pk) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [(database, field, value, record_pk) for field, value in doc.exact],
        )
    for field, key, heading in doc.headings:
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


class IndexBatch:
    """Index rows of a batch of records, written with a few `executemany` calls at the end of
    the batch instead of a dozen statements per record. A record written twice in one batch
    (the same 001 twice in a file) keeps only its last version."""

    def __init__(self) -> None:
        self._pending: dict[int, tuple[str, IndexDocument, list[tuple[int, str, str]]]] = {}

    def put(
        self,
        record_pk: int,
        database: str,
        doc: IndexDocument,
        identifiers: list[tuple[int, str, str]],
    ) -> None:
        self._pending[record_pk] = (database, doc, identifiers)

    def discard(self, record_pk: int) -> bool:
        """Forget a record's pending rows; True if there were any."""
        return self._pending.pop(record_pk, None) is not None

    def flush(self, tx: Transaction) -> None:
        if not self._pending:
            return
        items = list(self._pending.items())
        self._pending.clear()
        identifiers = [row for _, (_, _, rows) in items for row in rows]
        if identifiers:
            tx.executemany(
                "INSERT INTO bib_identifiers (record_pk, kind, value) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                identifiers,
            )
        if tx.dialect == "sqlite":
            tx.executemany(
                "INSERT INTO search_fts (rowid, db, title, author, subject, series, publisher)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (pk, database_token(db), *(" ".join(doc.keyword[f]) for f in KEYWORD_FIELDS))
                    for pk, (db, doc, _) in items
                ],
            )
        else:
            tx.executemany(
                "INSERT INTO search_docs (record_pk, database, title, author, subject, series,"
                " publisher, any_field) VALUES (?, ?, ?::tsvector, ?::tsvector, ?::tsvector,"
                " ?::tsvector, ?::tsvector, ?::tsvector)",
                [
                    (
                        pk,
                        db,
                        *(tsvector_literal(doc.keyword[f]) for f in KEYWORD_FIELDS),
                        tsvector_literal(_any_stream(doc)),
                    )
                    for pk, (db, doc, _) in items
                ],
            )
        exact = [(db, field, value, pk) for pk, (db, doc, _) in items for field, value in doc.exact]
        if exact:
            tx.executemany(
                "INSERT INTO search_exact (database, field, value, record_pk) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                exact,
            )
        headings = {
            (db, field, key): heading
            for _, (db, doc, _) in items
            for field, key, heading in doc.headings
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
                (ids[(db, field, key)], pk)
                for pk, (db, doc, _) in items
                for field, key, _ in doc.headings
            ],
        )


def _any_stream(doc: IndexDocument) -> list[str]:
    stream: list[str] = []
    for field in KEYWORD_FIELDS:
        if doc.keyword[field]:
            if stream:
                stream.append(VALUE_SEPARATOR)
            stream.extend(doc.keyword[field])
    return stream
