"""The storage interface on both engines: schema versions, transactions, constraints."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from gateway.store import Store, StoreError, open_store
from gateway.store.engine import IntegrityViolation, RetryableConflict, split_statements
from gateway.store.migrate import current_version, migrate, schema_files
from gateway.store.sqlite import sqlite_path
from tests.conftest import postgres_base_url


def test_schema_is_applied_once_and_versioned(store: Store) -> None:
    latest = len(schema_files(store.dialect))
    assert current_version(store) == latest
    assert migrate(store) == []  # second run changes nothing
    with store.read() as tx:
        versions = [
            row[0] for row in tx.execute("SELECT version FROM schema_version ORDER BY version")
        ]
    assert versions == list(range(1, latest + 1))


def test_both_engines_have_the_same_schema_versions() -> None:
    sqlite_files = [(v, n) for v, n, _ in schema_files("sqlite")]
    postgres_files = [(v, n) for v, n, _ in schema_files("postgresql")]
    assert sqlite_files == postgres_files


def _insert_record(tx, record_id: str = "r1") -> int:
    return tx.insert(
        "INSERT INTO bib_records (database, record_id, format, marc, bib, title, digest)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("main", record_id, "unimarc", b"\x00bytes\xff", "{}", "标题", "d"),
    )


def test_write_commits_and_bytes_round_trip(store: Store) -> None:
    with store.write() as tx:
        pk = _insert_record(tx)
    with store.read() as tx:
        row = tx.one("SELECT id, title, marc FROM bib_records WHERE record_id = ?", ("r1",))
    assert row is not None
    assert row[0] == pk
    assert row[1] == "标题"
    assert bytes(row[2]) == b"\x00bytes\xff"


def test_exception_rolls_the_whole_transaction_back(store: Store) -> None:
    with pytest.raises(RuntimeError), store.write() as tx:
        _insert_record(tx, "kept?")
        raise RuntimeError("boom")
    with store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM bib_records") == 0


def test_item_barcode_is_unique_across_the_library(store: Store) -> None:
    with store.write() as tx:
        pk = _insert_record(tx)
        tx.insert(
            "INSERT INTO items (barcode, record_pk, status, source) VALUES (?, ?, ?, ?)",
            ("54122100517423", pk, "归还", "marc"),
        )
    with pytest.raises(IntegrityViolation), store.write() as tx:
        tx.insert(
            "INSERT INTO items (barcode, record_pk, status, source) VALUES (?, ?, ?, ?)",
            ("54122100517423", pk, "归还", "csv"),
        )


def test_percent_and_question_marks_in_values_are_data(store: Store) -> None:
    with store.write() as tx:
        tx.insert(
            "INSERT INTO bib_records (database, record_id, format, marc, bib, title, digest)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            ("main", "p", "marc21", b"", "{}", "100% sure? yes", "d"),
        )
    with store.read() as tx:
        assert (
            tx.scalar("SELECT title FROM bib_records WHERE title LIKE ?", ("100%",))
            == "100% sure? yes"
        )


def test_concurrent_writers_are_serialised_without_errors(store: Store) -> None:
    """Read-then-write from many threads: IMMEDIATE (SQLite) / row locks (PostgreSQL)."""
    with store.write() as tx:
        pk = _insert_record(tx, "counter")
        tx.insert(
            "INSERT INTO items (barcode, record_pk, status, source) VALUES (?, ?, ?, ?)",
            ("c", pk, "0", "test"),
        )
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(20):
                with store.write() as tx:
                    value = int(
                        tx.scalar(
                            "SELECT status FROM items WHERE barcode = ?" + tx.for_update, ("c",)
                        )
                    )
                    tx.execute(
                        "UPDATE items SET status = ? WHERE barcode = ?", (str(value + 1), "c")
                    )
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=bump) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with store.read() as tx:
        assert tx.scalar("SELECT status FROM items WHERE barcode = ?", ("c",)) == "120"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'w.db'}") as store:
        migrate(store)
        with store.read() as tx:
            assert tx.scalar("PRAGMA journal_mode") == "wal"
            assert tx.scalar("PRAGMA foreign_keys") == 1
        with pytest.raises(IntegrityViolation), store.write() as tx:
            tx.insert(
                "INSERT INTO items (barcode, record_pk, status, source) VALUES (?, ?, ?, ?)",
                ("x", 999, "归还", "csv"),
            )


def test_sqlite_urls_follow_sqlalchemy() -> None:
    assert sqlite_path("sqlite:///var/libgate.db") == "var/libgate.db"
    assert sqlite_path("sqlite:////srv/libgate/x.db") == "/srv/libgate/x.db"
    with pytest.raises(StoreError):
        sqlite_path("sqlite:///:memory:")


def test_unreachable_postgres_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as caught:
        open_store("postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    # One line (libpq's own words are two: its hint on a line of its own), the hint kept.
    assert "\n" not in str(caught.value) and "Is the server running" in str(caught.value)


def test_password_is_not_shown_in_errors() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    assert "secret" not in str(caught.value)


def test_a_password_given_as_a_parameter_is_not_shown_either(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2&password=secret&sslmode=prefer"
    with pytest.raises(StoreError) as caught:
        open_store(url)
    assert "secret" not in str(caught.value) and "sslmode=prefer" in str(caught.value)
    # migrate-store's answer when the target cannot be reached, and the URL it prints for the
    # config, go through the same redaction.
    from gateway.store.postgres import redact

    assert redact(url) == "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2&sslmode=prefer"
    assert redact("postgresql://u:p@h/db?PASSWORD=x") == "postgresql://u@h/db"
    assert redact("postgresql://h/db?options=-csearch_path%3Da@b") == (
        "postgresql://h/db?options=-csearch_path%3Da@b"
    )


def test_a_postgresql_database_not_in_utf8_is_refused(postgres_admin) -> None:
    """SQL_ASCII (initdb's default under the C locale) hands text back as bytes: a catalogue
    in Chinese would break in ways far from the cause, so the store refuses it at once."""
    base = postgres_base_url()
    assert base is not None
    name = "libgate_ascii_" + uuid.uuid4().hex[:10]
    postgres_admin.execute(
        f"CREATE DATABASE \"{name}\" ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'"
        " TEMPLATE template0"
    )
    try:
        with pytest.raises(StoreError) as caught:
            open_store(base.rsplit("/", 1)[0] + "/" + name)
        assert "has encoding SQL_ASCII, not UTF8" in str(caught.value)
        assert "\n" not in str(caught.value)
    finally:
        postgres_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_unknown_url_scheme_is_refused() -> None:
    with pytest.raises(StoreError, match="sqlite:///"):
        open_store("mysql://localhost/x")


def test_schema_files_split_into_statements() -> None:
    statements = list(
        split_statements("-- c\nCREATE TABLE a (x INT);\n\nCREATE INDEX i ON a (x);\n")
    )
    assert statements == ["CREATE TABLE a (x INT);", "CREATE INDEX i ON a (x);"]


def _counter_table(store: Store) -> None:
    with store.write() as tx:
        tx.execute("CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        tx.execute("INSERT INTO counters (id, n) VALUES (1, 0), (2, 0)")


def test_postgres_serialisation_failure_is_a_retryable_conflict(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        _counter_table(store)
        with pytest.raises(RetryableConflict), store.write() as first:
            first.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            first.execute("SELECT n FROM counters WHERE id = 1")  # takes the snapshot
            with store.write() as second:
                second.execute("UPDATE counters SET n = n + 1 WHERE id = 1")
            first.execute("UPDATE counters SET n = n + 10 WHERE id = 1")
        with store.read() as tx:
            assert tx.scalar("SELECT n FROM counters WHERE id = 1") == 1


def test_postgres_serialisation_failure_at_commit_is_a_retryable_conflict(
    postgres_url: str,
) -> None:
    with open_store(postgres_url) as store:
        _counter_table(store)
        with pytest.raises(RetryableConflict), store.write() as first:  # raised by COMMIT
            first.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            first.execute("SELECT n FROM counters WHERE id = 2")
            first.execute("UPDATE counters SET n = 1 WHERE id = 1")
            with store.write() as second:  # the mirror image: a write skew
                second.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                second.execute("SELECT n FROM counters WHERE id = 1")
                second.execute("UPDATE counters SET n = 1 WHERE id = 2")
        with store.read() as tx:
            assert tx.execute("SELECT id, n FROM counters ORDER BY id") == [(1, 0), (2, 1)]


def test_postgres_deadlock_is_a_retryable_conflict(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        _counter_table(store)
        both_hold_one = threading.Barrier(2, timeout=10)
        errors: list[BaseException] = []

        def lock(first: int, second: int) -> None:
            try:
                with store.write() as tx:
                    tx.execute("UPDATE counters SET n = n + 1 WHERE id = ?", (first,))
                    both_hold_one.wait()
                    tx.execute("UPDATE counters SET n = n + 1 WHERE id = ?", (second,))
            except BaseException as error:  # noqa: BLE001 - collected and asserted below
                errors.append(error)

        threads = [
            threading.Thread(target=lock, args=(1, 2)),
            threading.Thread(target=lock, args=(2, 1)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [type(error) for error in errors] == [RetryableConflict]
