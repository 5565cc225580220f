"""`libgate backup` and `libgate restore` (issue 18, "Backup and move") on both engines: a
working library backed up, changed and destroyed, then restored gives back every row of every
table; a backup taken while `libgate serve` is lending and returning is one consistent moment;
a restore refuses a newer schema and a store in use, and upgrades an older backup."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load_settings
from gateway.store import open_existing_store, open_store
from gateway.store.migrate import latest_version, migrate
from gateway.store.tables import SUMMARY
from tests.conftest import FIXTURES, fresh_schema_url, postgres_base_url
from tests.serve_support import free_port, running_gateway, sip2_and_sru_config
from tests.sip2_support import ByteSummingClient
from tests.store_dump_support import Dump, dump_tables, ill_config, make_library, run

FATAL = 1


def counts_line(dump: Dump) -> str:
    """The counts line `backup` and `restore` print, as the dump says it must read."""
    return ", ".join(f"{label} {len(dump[table])}" for label, table in SUMMARY)


def store_dump(config: Path) -> Dump:
    with open_existing_store(load_settings(str(config)).storage) as store:
        return dump_tables(store)


def libgate(config: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--config", str(config), *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_backup_destroy_restore_gives_back_every_row(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ill_config(config_file)
    make_library(config_file)
    before = store_dump(config_file)
    searched = run(config_file, "search", "红楼梦")
    status = run(config_file, "circ", "status", "P0001")
    backup = tmp_path / "library.backup"

    code, out = libgate(config_file, "backup", str(backup), capsys=capsys)
    assert code == 0, out
    assert f"schema version {latest_version('sqlite')}, checked" in out
    assert counts_line(before) in out

    # The day goes on, then goes wrong: returns, a new load, an undone batch, records deleted.
    run(config_file, "circ", "checkin", "54122100600021")
    run(config_file, "load", str(FIXTURES / "marc" / "real" / "cnmarc" / "bnu_cnmarc_10_gbk.iso"))
    run(config_file, "batches", "undo", "1")
    assert store_dump(config_file) != before

    code, out = libgate(config_file, "backup", str(backup), capsys=capsys)
    assert code == FATAL and out.count("\n") == 1 and "never overwrites" in out

    code, out = libgate(config_file, "restore", str(backup), capsys=capsys)
    assert code == 0, out
    assert "search index rebuilt" in out and counts_line(before) in out
    assert store_dump(config_file) == before
    # The search index was rebuilt from the restored store, not left describing the other day.
    assert run(config_file, "search", "红楼梦") == searched
    assert run(config_file, "circ", "status", "P0001") == status


def test_restore_refuses_a_backup_from_a_newer_libgate(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(config_file, "load", str(FIXTURES / "marc" / "demo_main.iso"))
    before = store_dump(config_file)
    backup = tmp_path / "newer.backup"
    newer = latest_version("sqlite") + 1
    settings = load_settings(str(config_file))
    with open_existing_store(settings.storage) as store:
        with store.write() as tx:
            tx.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, 'future', '')",
                (newer,),
            )
        if store.dialect == "sqlite":
            # What a newer libgate's `backup` writes: a SQLite copy at its version.
            copy = sqlite3.connect(backup)
            sqlite3.connect(store.path).backup(copy)  # type: ignore[attr-defined]
            copy.close()
        else:
            # A newer libgate's pg_dump of the schema (ours refuses to back up a newer schema).
            with store.read() as tx:
                schema = tx.scalar("SELECT current_schema()")
            base = postgres_base_url()
            assert base is not None
            subprocess.run(
                ["pg_dump", "-Fc", f"--schema={schema}", f"--file={backup}", "-d", base],
                check=True,
            )
        with store.write() as tx:
            tx.execute("DELETE FROM schema_version WHERE version = ?", (newer,))
    code, out = libgate(config_file, "restore", str(backup), capsys=capsys)
    assert code == FATAL and out.count("\n") == 1, out
    assert f"schema version {newer}, newer than this libgate" in out
    assert store_dump(config_file) == before


def test_an_older_backup_is_restored_and_upgraded(
    store_url: str, config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older = 9
    with open_store(store_url) as store:
        migrate(store, up_to=older)
        with store.write() as tx:
            tx.execute(
                "INSERT INTO patrons (barcode, name, category, status, email)"
                " VALUES ('P9', '王芳', '本科生', 'active', 'wf@example.edu.cn')"
            )
    backup = tmp_path / "older.backup"
    code, out = libgate(config_file, "backup", str(backup), capsys=capsys)
    assert code == 0 and f"schema version {older}," in out, out
    with open_store(store_url) as store:
        migrate(store)  # the site upgraded libgate since, and then needs that backup
        with store.write() as tx:
            tx.execute("DELETE FROM patrons")
    code, out = libgate(config_file, "restore", str(backup), capsys=capsys)
    assert code == 0, out
    assert f"schema version {older}, upgraded to {latest_version('sqlite')}" in out
    assert "readers 1" in out
    with open_store(store_url) as store, store.read() as tx:
        assert tx.scalar("SELECT max(version) FROM schema_version") == latest_version("sqlite")
        assert tx.execute("SELECT barcode, name FROM patrons") == [("P9", "王芳")]


def test_not_a_backup_is_one_line(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(config_file, "load", str(FIXTURES / "marc" / "demo_main.iso"))
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a database at all" * 100)
    for path in (junk, tmp_path / "missing.backup"):
        code, out = libgate(config_file, "restore", str(path), capsys=capsys)
        assert code == FATAL and out.count("\n") == 1 and "Traceback" not in out, out


def test_a_store_directory_that_cannot_be_made_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "libgate.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "library.db"}"\n', "utf-8")
    run(config, "load", str(FIXTURES / "marc" / "demo_main.iso"))
    backup = tmp_path / "library.backup"
    assert libgate(config, "backup", str(backup), capsys=capsys)[0] == 0
    (tmp_path / "a-file").write_text("not a directory\n", "utf-8")
    elsewhere = tmp_path / "elsewhere.toml"
    store = tmp_path / "a-file" / "sub" / "library.db"  # its directory cannot be made
    elsewhere.write_text(f'[storage]\nurl = "sqlite:///{store}"\n', "utf-8")
    code, out = libgate(elsewhere, "restore", str(backup), capsys=capsys)
    assert code == FATAL and out.count("\n") == 1 and "Not a directory" in out, out


@pytest.fixture
def cjk_schema_url(postgres_admin) -> Iterator[str]:
    """A storage URL whose search_path is a fresh schema named in Chinese: PostgreSQL keeps
    only printable ASCII of an application_name, so the name a gateway's connections carry is
    not the one Python would spell."""
    with fresh_schema_url(postgres_admin, "馆藏_" + uuid.uuid4().hex[:8]) as url:
        yield url


@pytest.mark.parametrize("schema", ["ascii", "cjk"])
def test_restore_refuses_a_store_a_postgresql_gateway_uses(
    schema: str, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    postgres_url = request.getfixturevalue(
        "postgres_url" if schema == "ascii" else "cjk_schema_url"
    )
    config = tmp_path / "libgate.toml"
    config.write_text(f'[storage]\nurl = "{postgres_url}"\n', encoding="utf-8")
    run(config, "load", str(FIXTURES / "marc" / "demo_main.iso"))
    backup = tmp_path / "pg.backup"
    assert libgate(config, "backup", str(backup), capsys=capsys)[0] == 0
    gateway = subprocess.Popen(  # a process holding the store's pool open, as serve does
        [
            sys.executable,
            "-c",
            "import sys, time; from gateway.store import open_store; "
            "s = open_store(sys.argv[1]); print('open', flush=True); time.sleep(60)",
            postgres_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert gateway.stdout is not None and gateway.stdout.readline() == "open\n"
        code, out = libgate(config, "restore", str(backup), capsys=capsys)
        assert code == FATAL and "connection(s) of a running libgate" in out, out
        code, out = libgate(config, "restore", str(backup), "--force", capsys=capsys)
        assert code == 0, out
    finally:
        gateway.kill()
        gateway.wait()


def test_backup_while_serving_is_one_consistent_moment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sip2_port, sru_port = free_port(), free_port()
    config = sip2_and_sru_config(tmp_path, sip2_port, sru_port)
    run(config, "load", str(FIXTURES / "marc" / "demo_main.iso"))
    run(config, "patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv"))
    item = "54122100600021"
    stop = threading.Event()
    done: list[int] = []
    failures: list[BaseException] = []

    def kiosk_day() -> None:
        """Lend and return one copy over and over through the gateway's SIP2 port."""
        kiosk = ByteSummingClient(sip2_port)
        try:
            assert kiosk.exchange("9300CNkiosk|COkiosk-pw|CP一楼|") == "941"
            while not stop.is_set():
                now = datetime.now().strftime("%Y%m%d    %H%M%S")
                out = kiosk.exchange(f"11NN{now}{' ' * 18}AOMAIN|AAP0001|AB{item}|AC|AD1234|")
                assert out[:3] == "121", out
                back = kiosk.exchange(f"09N{now}{now}AP一楼|AOMAIN|AB{item}|AC|")
                assert back[:3] == "101", back
                done.append(1)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)
        finally:
            kiosk.close()

    with running_gateway(config, [sip2_port, sru_port]):
        worker = threading.Thread(target=kiosk_day)
        worker.start()
        backups = []
        try:
            while len(done) < 3 and not failures:
                stop.wait(0.05)
            for n in range(3):
                backup = tmp_path / f"during-{n}.backup"
                made = subprocess.run(
                    [sys.executable, "-m", "gateway.cli", "--config", str(config)]
                    + ["backup", str(backup)],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert made.returncode == 0, made.stderr
                backups.append(backup)
            code, out = libgate(config, "restore", str(backups[0]), capsys=capsys)
            assert code == FATAL and out.count("\n") == 1, out
            assert "open in another process" in out
            # Nor is it moved to PostgreSQL while the gateway writes to it (refused before
            # the target is even asked).
            target = "postgresql://127.0.0.1:1/not-asked"
            code, out = libgate(config, "migrate-store", "--to", target, capsys=capsys)
            assert code == FATAL and out.count("\n") == 1 and "move with --force" in out, out
        finally:
            stop.set()
            worker.join(timeout=60)
    assert not failures, failures
    rounds = len(done)
    assert rounds >= 3
    for backup in backups:
        copy = sqlite3.connect(backup)
        try:
            assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            # Each lending and each return wrote its loan and its event in one transaction:
            # a copy of one moment has as many of the one as of the other.
            loans = copy.execute(
                "SELECT count(*), count(returned_at) FROM loans l JOIN items i ON i.id = l.item_pk"
                " WHERE i.barcode = ?",
                (item,),
            ).fetchone()
            events = dict(
                copy.execute("SELECT action, count(*) FROM circulation_events GROUP BY action")
            )
            assert loans[0] >= 1
            assert events.get("checkout") == loans[0]
            assert events.get("checkin") == loans[1]
            assert loans[0] - loans[1] in (0, 1)
        finally:
            copy.close()


def test_a_postgresql_backup_restores_onto_a_server_without_the_schema(
    postgres_url: str, postgres_admin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "libgate.toml"
    config.write_text(f'[storage]\nurl = "{postgres_url}"\n', encoding="utf-8")
    run(config, "load", str(FIXTURES / "marc" / "demo_main.iso"))
    run(config, "patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv"))
    before = store_dump(config)
    backup = tmp_path / "pg.backup"
    assert libgate(config, "backup", str(backup), capsys=capsys)[0] == 0
    with open_store(postgres_url) as store, store.read() as tx:
        schema = tx.scalar("SELECT current_schema()")
    postgres_admin.execute(f'DROP SCHEMA "{schema}" CASCADE')  # a new server: nothing there
    code, out = libgate(config, "restore", str(backup), capsys=capsys)
    assert code == 0, out
    assert store_dump(config) == before
