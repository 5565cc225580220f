"""`libgate migrate-store --to postgresql://…` (issue 18, "Backup and move"): a working SQLite
library moved into an empty PostgreSQL schema has every row of every table, the same search
results and circulation state, and ids that go on from where they were; a target holding data
is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import gateway.store.move as store_move
from gateway.cli import main
from gateway.config import load_settings
from gateway.store import open_existing_store, open_store
from tests.conftest import FIXTURES
from tests.store_dump_support import cli, dump_tables, ill_config, make_library, run

# The tables the library of `make_library` leaves empty. A table not here must have rows in
# it, so the round trip proves it moves: a new table fails this test until the library gets
# a row of it (or it is named here, with the reason).
LEFT_EMPTY = {
    "login_failures",  # web portal lockouts: none in a desk-only day
    "pin_failures",  # SIP2 wrong PINs: none
    "result_sets",  # SRU/Z39.50 result sets: no protocol searches
    "web_sessions",  # no portal logins
    "batch_holds",  # no batch touched a hold
    "batch_loans",  # no batch touched a loan
}


def test_a_sqlite_library_moves_to_postgresql_whole(
    tmp_path: Path,
    postgres_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Tables are copied in batches; this library's largest table has 65 rows, so batches of
    # four make every table of more than four rows (rowid and WITHOUT ROWID ones) go in several.
    monkeypatch.setattr(store_move, "BATCH_ROWS", 4)
    config = tmp_path / "sqlite.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "library.db"}"\n', "utf-8")
    ill_config(config)
    make_library(config)
    with open_existing_store(load_settings(str(config)).storage) as store:
        before = dump_tables(store)
        with store.read() as tx:
            last_loan = int(tx.scalar("SELECT max(id) FROM loans"))
    assert {table for table, rows in before.items() if not rows} == LEFT_EMPTY
    seen = {
        "search": run(config, "search", "红楼梦"),
        # Sorted: hits of equal relevance come in the order the index holds them, which a rebuilt
        # index (as every moved store's is) need not keep.
        "search cnmarc": run(config, "search", "中国", "--sort", "title", "--limit", "20"),
        "reader": run(config, "circ", "status", "P0001"),
        "copy": run(config, "circ", "status", "54122100600022"),
        "fees": run(config, "circ", "fees", "P0004"),
        "ill": run(config, "ill", "list"),
    }

    capsys.readouterr()
    assert main(["--config", str(config), "migrate-store", "--to", postgres_url]) == 0
    out = capsys.readouterr().out
    for table, rows in before.items():
        assert f"\n{table} " in out and out.split(f"\n{table} ")[1].split()[:2] == [
            str(len(rows)),
            str(len(rows)),
        ]
    assert "[storage]" in out and "counts match" in out

    moved = tmp_path / "postgresql.toml"
    moved.write_text(f'[storage]\nurl = "{postgres_url}"\n', "utf-8")
    ill_config(moved)
    with open_existing_store(load_settings(str(moved)).storage) as store:
        after = dump_tables(store)
    assert after.keys() == before.keys()
    for table in before:
        assert after[table] == before[table], table
    assert {
        "search": run(moved, "search", "红楼梦"),
        "search cnmarc": run(moved, "search", "中国", "--sort", "title", "--limit", "20"),
        "reader": run(moved, "circ", "status", "P0001"),
        "copy": run(moved, "circ", "status", "54122100600022"),
        "fees": run(moved, "circ", "fees", "P0004"),
        "ill": run(moved, "ill", "list"),
    } == seen
    # Identities go on after the moved ids: a new loan and a new reader get fresh numbers.
    cli(moved, "circ", "checkin", "54122100600021")
    cli(moved, "circ", "checkout", "P0002", "54122100600021")  # trapped for P0002
    with open_existing_store(load_settings(str(moved)).storage) as store, store.read() as tx:
        newest = tx.one("SELECT id FROM loans ORDER BY id DESC LIMIT 1")
        assert newest is not None and newest[0] == last_loan + 1


def test_a_target_with_data_is_refused(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sqlite.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "library.db"}"\n', "utf-8")
    run(
        config,
        "patrons",
        "import",
        str(Path(__file__).parent.parent / "fixtures" / "patrons" / "demo_patrons.csv"),
    )
    assert main(["--config", str(config), "migrate-store", "--to", postgres_url]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "migrate-store", "--to", postgres_url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not empty: patrons (5 rows)" in err, err
    capsys.readouterr()
    assert main(["--config", str(config), "migrate-store", "--to", "mysql://x"]) == 1
    assert "postgresql://" in capsys.readouterr().err
    no_schema = postgres_url.rsplit("%3D", 1)[0] + "%3Dno_such_schema_here"
    assert main(["--config", str(config), "migrate-store", "--to", no_schema]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing moved: no schema has been selected" in err, err


def test_a_source_that_is_not_a_database_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sqlite.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "library.db"}"\n', "utf-8")
    (tmp_path / "library.db").write_bytes(b"not a database, a text file put there by mistake\n" * 4)
    target = "postgresql://127.0.0.1:1/never-asked"
    assert main(["--config", str(config), "migrate-store", "--to", target]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "library.db" in err and "not a database" in err, err


def test_a_value_postgresql_cannot_take_is_one_line_and_moves_nothing(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sqlite.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "library.db"}"\n', "utf-8")
    run(config, "patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv"))
    raw = sqlite3.connect(tmp_path / "library.db", isolation_level=None)
    raw.execute("UPDATE patrons SET no_show_count = 'twice' WHERE barcode = 'P0003'")  # a bug's
    raw.close()
    capsys.readouterr()
    assert main(["--config", str(config), "migrate-store", "--to", postgres_url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "table patrons:" in err and "'twice'" in err, err
    with open_store(postgres_url) as target, target.read() as tx:
        assert tx.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()") == 0
