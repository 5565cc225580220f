"""The search index: one Tantivy index per store, derived from the store and caught up from it.

SQLite or PostgreSQL is the store of record; this index is rebuilt from it at will (`libgate
reindex`) and kept current by the store's change sequence (migration 0008): every write of
catalogue records takes the next value of `catalogue_changes.last_seq` (one row, so on
PostgreSQL writers of records queue on its row lock and sequence values commit in order) and
stamps it on the records it wrote (`bib_records.change_seq`; deletions leave a tombstone).
The index keeps, in a state document committed together with the documents, the last sequence
it applied and the store's identity; a process applies what is newer whenever it notices the
store moved on (another loader process, or another machine on the same PostgreSQL).

Only one process writes an index directory at a time (Tantivy's writer lock file): a process
that finds the writer busy does not wait, it leaves catching up to the one writing and reloads
its reader when the index's meta file changes (a stat, no read).

Fields: keyword token streams (`title` … `publisher`, whitespace-split: our normaliser made
the tokens, with positions for phrases), and beside them the pinyin syllables (`py_title`,
`py_author`, `py_subject`), the kana readings of Japanese headings (`rd_title`, `rd_author`)
and the pinyin initials of titles and names (`py_initials`) (`gateway.catalogue.indexes`); exact values (`rid` 001, `isbn`, `issn`, `isrc`,
`clc`, `language`, the `h_*` heading keys of browse lists); `year` (indexed and fast, for
ranges); `db` (the database, a term every query must match); `pk`, the store's primary key
(fast, the tie-breaker and the link back to the store); and string fast fields that sort by
title, author and date in one pass (`s_*`: the sort key with the primary key appended, so ties
fall back to catalogue order as the store would order them).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tantivy

from gateway.catalogue.indexes import INITIALS_FIELD, TEXT_FIELDS, IndexDocument, index_document
from gateway.catalogue.model import BibRecord
from gateway.store import Store, Transaction

log = logging.getLogger("libgate.search")

HEADING_FIELDS = ("title", "author", "subject", "series")
EXACT_FIELDS = ("rid", "isbn", "issn", "isrc", "clc", "language")
SORT_FIELDS = ("s_title", "s_title_r", "s_author", "s_author_r", "s_date", "s_date_r")
PK_DIGITS = 19
MAX_PK = 10**PK_DIGITS - 1
WRITER_HEAP = 64_000_000  # bytes of Tantivy's indexing arena (one thread)
REBUILD_HEAP = 200_000_000
LOAD_COMMIT_SECONDS = 1.0  # a load commits the index at most this often (and at its end)
CATCH_UP_BATCH = 2000  # records read from the store per query while catching up
STATE_KIND = "state"
# What the index's tokens mean (normalisation, folding, pinyin, readings). An index written
# under another format is rebuilt from the store on first use, as a changed schema is.
# 4: MARC21 records' CJK word spaces closed (`indexes.searched_form`).
INDEX_FORMAT = 4


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("pk", stored=True, indexed=True, fast=True)
    builder.add_text_field("db", tokenizer_name="raw", index_option="basic")
    for name in TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name="whitespace", index_option="position")
    builder.add_text_field(INITIALS_FIELD, tokenizer_name="whitespace", index_option="freq")
    for name in EXACT_FIELDS:
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    for name in HEADING_FIELDS:
        builder.add_text_field("h_" + name, tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("year", indexed=True, fast=True)
    for name in SORT_FIELDS:
        builder.add_text_field(name, fast=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("kind", tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("seq", stored=True)
    builder.add_integer_field("format", stored=True)
    builder.add_text_field("store", stored=True, tokenizer_name="raw", index_option="basic")
    return builder.build()


SCHEMA = _schema()


def _pad(number: int) -> str:
    return str(number).zfill(PK_DIGITS)


def make_document(
    pk: int, database: str, record_id: str, bib: BibRecord, doc: IndexDocument
) -> tantivy.Document:
    """The index document of one stored record."""
    document = tantivy.Document()
    document.add_integer("pk", pk)
    document.add_text("db", database)
    for name, tokens in doc.keyword.items():
        if tokens:
            document.add_text(name, tokens)
    document.add_text("rid", record_id)
    for kind, values in (("isbn", bib.isbns), ("issn", bib.issns), ("isrc", bib.isrcs)):
        for value in values:
            document.add_text(kind, value)
    for field, value in doc.exact:
        document.add_text(field, value)
    for field, key, _ in doc.headings:
        document.add_text("h_" + field, key)
    if bib.year is not None:
        document.add_integer("year", bib.year)
    ascending, descending = _pad(pk), _pad(MAX_PK - pk)
    document.add_text("s_title", f"{doc.sort_title}\x00{ascending}")
    document.add_text("s_title_r", f"{doc.sort_title}\x00{descending}")
    document.add_text("s_author", f"{doc.sort_author}\x00{ascending}")
    document.add_text("s_author_r", f"{doc.sort_author}\x00{descending}")
    if bib.year is None:  # no year: last in both directions, then catalogue order
        document.add_text("s_date", "1" + ascending)
        document.add_text("s_date_r", "1" + ascending)
    else:
        year = min(max(bib.year, 0), 99999)
        document.add_text("s_date", f"0{year:05d}{ascending}")
        document.add_text("s_date_r", f"0{99999 - year:05d}{ascending}")
    return document


@dataclass(frozen=True)
class IndexState:
    store_id: str
    seq: int  # the last change sequence of the store this index has applied
    format: int = INDEX_FORMAT


@dataclass(frozen=True)
class StoreState:
    store_id: str
    seq: int


def store_state(tx: Transaction) -> StoreState:
    row = tx.one("SELECT store_id, last_seq FROM catalogue_changes WHERE id = 1")
    assert row is not None, "migration 0008 creates the change counter"
    return StoreState(str(row[0]), int(row[1]))


def next_change_seq(tx: Transaction) -> int:
    """The change sequence of this write transaction's record changes. The counter's row stays
    locked until commit, so values become visible in the order they were taken."""
    return int(
        tx.scalar(
            "UPDATE catalogue_changes SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq"
        )
    )


class WriterBusy(Exception):
    """Another process (or thread) is writing this index."""


class SearchIndex:
    """One index directory (or an in-memory index) as this process sees it."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._meta_path = str(path / "meta.json") if path is not None else ""
        self._write_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._meta_signature: tuple[int, int, int] | None = None
        self._state: IndexState | None = None
        self.index = self._open()
        self.index.config_reader(reload_policy="manual")
        self._refresh(force=True)

    def _open(self) -> tantivy.Index:
        if self.path is None:
            return tantivy.Index(SCHEMA)
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            return tantivy.Index(SCHEMA, path=str(self.path), reuse=True)
        except ValueError as error:
            if "schema does not match" not in str(error):
                raise
            # An index of another libgate version: it is derived data, so start it afresh.
            log.warning("search index %s has another schema; rebuilding it", self.path)
            shutil.rmtree(self.path)
            self.path.mkdir(parents=True)
            return tantivy.Index(SCHEMA, path=str(self.path), reuse=True)

    # --- reading ----------------------------------------------------------------------------

    def _signature(self) -> tuple[int, int, int] | None:
        if self.path is None:
            return None
        try:
            info = os.stat(self._meta_path)
        except FileNotFoundError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def _refresh(self, force: bool = False) -> None:
        """Reload the reader if a commit happened since (meta.json changed)."""
        signature = self._signature()
        if not force and signature == self._meta_signature and self._state is not None:
            return
        with self._reload_lock:
            self.index.reload()
            self._meta_signature = signature
            self._state = self._read_state(self.index.searcher())

    @staticmethod
    def _read_state(searcher: tantivy.Searcher) -> IndexState:
        found = searcher.search(tantivy.Query.term_query(SCHEMA, "kind", STATE_KIND), 1).hits
        if not found:
            return IndexState("", 0)
        document = searcher.doc(found[0][1])
        seq = document.get_first("seq")
        written = document.get_first("format")
        return IndexState(str(document.get_first("store") or ""), int(seq or 0), int(written or 0))

    def searcher(self) -> tantivy.Searcher:
        self._refresh()
        return self.index.searcher()

    @property
    def state(self) -> IndexState:
        self._refresh()
        assert self._state is not None
        return self._state

    # --- writing ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self, *, wait_seconds: float = 0.0, heap: int = WRITER_HEAP) -> Iterator[Writer]:
        """The index's one writer; raises WriterBusy when another process or thread holds it
        for longer than `wait_seconds`. Uncommitted changes are dropped on leaving."""
        deadline = time.monotonic() + wait_seconds
        acquired = (
            self._write_lock.acquire(timeout=wait_seconds)
            if wait_seconds > 0
            else self._write_lock.acquire(blocking=False)
        )
        if not acquired:
            raise WriterBusy("another thread is writing the search index")
        try:
            while True:
                try:
                    raw = self.index.writer(heap, 1)
                    break
                except ValueError as error:
                    if "LockBusy" not in str(error) and "lock" not in str(error).lower():
                        raise
                    if time.monotonic() >= deadline:
                        raise WriterBusy("another process is writing the search index") from None
                    time.sleep(0.05)
            writer = Writer(self, raw)
            try:
                yield writer
            finally:
                writer.close()
        finally:
            self._write_lock.release()

    def catch_up(self, store: Store, *, wait_seconds: float = 0.0) -> bool:
        """Apply the store's changes the index has not seen. False when the writer is busy
        elsewhere (whoever holds it catches up, or the next call does)."""
        try:
            with self.writer(wait_seconds=wait_seconds) as writer:
                writer.catch_up(store)
        except WriterBusy:
            return False
        return True

    def rebuild(self, store: Store, *, wait_seconds: float = 30.0) -> int:
        """Every record of the store indexed afresh (`libgate reindex`); returns the count."""
        with self.writer(wait_seconds=wait_seconds, heap=REBUILD_HEAP) as writer:
            return writer.catch_up(store, rebuild=True)

    def ensure_current(self, store: Store, current: StoreState) -> None:
        """Catch up if the store is ahead of what this index applied (a cheap comparison)."""
        state = self.state
        if (
            state.store_id != current.store_id
            or state.seq != current.seq
            or state.format != INDEX_FORMAT
        ):
            self.catch_up(store)


class Writer:
    """An open IndexWriter with the index's change bookkeeping."""

    def __init__(self, index: SearchIndex, raw: tantivy.IndexWriter) -> None:
        self.index = index
        self.raw: tantivy.IndexWriter | None = raw
        self._pending: IndexState | None = None  # added, not yet committed (a load's batches)
        self._last_commit = time.monotonic()
        self.commit_seconds = LOAD_COMMIT_SECONDS  # a load's batches commit at most this often

    def close(self) -> None:
        if self.raw is not None:
            with contextlib.suppress(ValueError):
                self.raw.rollback()
            self.raw = None  # dropping the last reference releases the lock file

    def _writer(self) -> tantivy.IndexWriter:
        assert self.raw is not None
        return self.raw

    def add(self, document: tantivy.Document, *, replace: bool, pk: int) -> None:
        writer = self._writer()
        if replace:
            writer.delete_documents_by_term("pk", pk)
        writer.add_document(document)

    def commit(self, state: IndexState) -> None:
        """Commit the added documents with the state they bring the index to."""
        writer = self._writer()
        writer.delete_documents_by_term("kind", STATE_KIND)
        marker = tantivy.Document()
        marker.add_text("kind", STATE_KIND)
        marker.add_integer("pk", 0)
        marker.add_integer("seq", state.seq)
        marker.add_integer("format", INDEX_FORMAT)
        marker.add_text("store", state.store_id)
        writer.add_document(marker)
        writer.commit()
        self._pending = None
        self._last_commit = time.monotonic()
        self.index._refresh(force=self.index.path is None)

    def catch_up(self, store: Store, *, rebuild: bool = False) -> int:
        """Apply every change of the store newer than the index's state; returns the number of
        records (re)indexed."""
        self.index._refresh(force=True)
        state = self.index.state
        with store.read() as tx:
            target = store_state(tx)
        stale = state.format != INDEX_FORMAT and bool(state.store_id)
        if rebuild or stale or state.store_id != target.store_id or state.seq > target.seq:
            if stale:
                log.warning("search index was written by another libgate version; rebuilding it")
            elif not rebuild and state.store_id:
                log.warning("search index belongs to another store state; rebuilding it")
            self._writer().delete_all_documents()
            applied = 0
            fresh = True
        else:
            applied = state.seq
            fresh = False
        if applied >= target.seq and not fresh:
            return 0
        if not fresh:
            # Deletions first: a record deleted and stored again since (an undone batch
            # restores its row under the same id) has a tombstone older than its row.
            with store.read() as tx:
                gone = tx.execute(
                    "SELECT record_pk FROM search_tombstones WHERE change_seq > ?"
                    " AND change_seq <= ?",
                    (applied, target.seq),
                )
            for (pk,) in gone:
                self._writer().delete_documents_by_term("pk", int(pk))
        done = 0
        last = (applied, 0)
        while True:
            with store.read() as tx:
                rows = tx.execute(
                    "SELECT id, database, record_id, bib, change_seq FROM bib_records"
                    " WHERE change_seq <= ? AND (change_seq > ? OR (change_seq = ? AND id > ?))"
                    f" ORDER BY change_seq, id LIMIT {CATCH_UP_BATCH}",
                    (target.seq, last[0], last[0], last[1]),
                )
            for pk, database, record_id, bib_json, _ in rows:
                bib = BibRecord.from_json(bib_json)
                document = make_document(pk, database, record_id, bib, index_document(bib))
                self.add(document, replace=not fresh, pk=pk)
            done += len(rows)
            if len(rows) < CATCH_UP_BATCH:
                break
            last = (int(rows[-1][4]), int(rows[-1][0]))
        self.commit(IndexState(target.store_id, target.seq))
        return done

    def apply_batch(
        self,
        store: Store,
        seq: int,
        store_id: str,
        documents: list[tuple[int, tantivy.Document, bool]],
    ) -> None:
        """A loader's batch, committed to the store with change sequence `seq`: its documents
        (pk, document, replaces an indexed one) go in directly when the index is exactly one
        change behind; otherwise something else changed the store too, and the index catches
        up from the store (which includes this batch). Committed at once, or with a later
        batch when the last commit is under `LOAD_COMMIT_SECONDS` old (a Tantivy commit costs
        ~45 ms whatever its size, and SQLite batches are sized to ~100 ms)."""
        behind = self._pending or self.index.state
        if behind.store_id != store_id or behind.seq != seq - 1 or behind.format != INDEX_FORMAT:
            self.catch_up(store)
            return
        for pk, document, replaces in documents:
            self.add(document, replace=replaces, pk=pk)
        self._pending = IndexState(store_id, seq)
        if time.monotonic() - self._last_commit >= self.commit_seconds:
            self.flush()

    def flush(self) -> None:
        """Commit the batches added since the last commit."""
        if self._pending is not None:
            self.commit(self._pending)


# --- where each store's index lives ------------------------------------------------------------

_registry_lock = threading.Lock()
_by_path: dict[str, SearchIndex] = {}


def default_index_dir(store: Store) -> Path | None:
    """Next to the SQLite file (`libgate.db` → `libgate.db.search/`); for PostgreSQL under
    `var/search/` (one directory per database URL); None (in memory) for `:memory:`."""
    path = getattr(store, "path", None)
    if store.dialect == "sqlite" and isinstance(path, str):
        if path == ":memory:" or path.startswith("file::memory:"):
            return None
        return Path(path + ".search")
    digest = hashlib.sha256(store.url.encode("utf-8")).hexdigest()[:16]
    return Path("var") / "search" / digest


def index_dir(store: Store) -> Path | None:
    configured = getattr(store, "search_index_dir", None)
    if configured:
        return Path(configured)
    return default_index_dir(store)


def index_for(store: Store) -> SearchIndex:
    """The search index of a store, opened once per process and directory."""
    found: SearchIndex | None = getattr(store, "_search_index", None)
    if found is not None:
        return found
    with _registry_lock:
        path = index_dir(store)
        if path is None:
            found = SearchIndex(None)
        else:
            key = str(path.resolve())
            found = _by_path.get(key)
            if found is None:
                found = SearchIndex(path)
                _by_path[key] = found
        store._search_index = found  # type: ignore[attr-defined]
    return found


def forget(path: Path) -> None:
    """Drop this process's handle on an index directory (before it is deleted)."""
    with _registry_lock:
        _by_path.pop(str(path.resolve()), None)
