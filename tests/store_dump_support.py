"""A whole store as data, for tests that must leave it exactly as it was (backup and restore,
migrate-store, an undone batch): every table the schema has (read from the database, so a new
table is compared without anyone listing it), its columns by name, its rows sorted, values in
one representation for both engines. And a small working library made through the CLI, with
something in the tables an operator counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.circulation.clock import SystemClock
from gateway.circulation.engine import Engine
from gateway.circulation.ill import InterlibraryLoan
from gateway.circulation.policy import Policy
from gateway.cli import main
from gateway.config import load_settings
from gateway.store import Store, open_existing_store
from gateway.store.tables import table_names
from tests.conftest import FIXTURES
from tests.ill_support import PKU, SHL, URLS, partner_request

Dump = dict[str, list[tuple[Any, ...]]]


def plain(value: Any) -> Any:
    """One representation of a value on either engine."""
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, bool):
        return int(value)
    return value


def sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, type(v).__name__, v if v is not None else 0) for v in row)


def columns(store: Store, table: str) -> list[str]:
    with store.read() as tx:
        if store.dialect == "sqlite":
            return sorted(str(r[1]) for r in tx.execute(f'PRAGMA table_info("{table}")'))
        return sorted(
            str(r[0])
            for r in tx.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = ?",
                (table,),
            )
        )


def dump_tables(store: Store) -> Dump:
    """Every table: its rows (columns in name order), sorted."""
    with store.read() as tx:
        tables = table_names(tx)
    found: Dump = {}
    for table in tables:
        names = ", ".join(f'"{c}"' for c in columns(store, table))
        with store.read() as tx:
            rows = tx.execute(f'SELECT {names} FROM "{table}"')
        found[table] = sorted((tuple(plain(v) for v in row) for row in rows), key=sort_key)
    return found


def cli(config: Path, *args: str) -> Any:
    """Run `libgate --config CONFIG ARGS --json`, expecting success; its JSON answer."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--config", str(config), *args, "--json"])
    assert code == 0, out.getvalue()
    return json.loads(out.getvalue())


def run(config: Path, *args: str) -> str:
    """Run `libgate --config CONFIG ARGS` expecting success; what it printed."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--config", str(config), *args])
    assert code == 0, out.getvalue()
    return out.getvalue()


def ill_config(config: Path) -> None:
    """[ill] for the library: this one is SHL, PKU its partner."""
    with config.open("a", encoding="utf-8") as extra:
        extra.write(
            f'\n[ill]\nagency_id = "{SHL}"\nservice_fee = 300\nloan_days = 45\n'
            f'[[ill.partners]]\nagency_id = "{PKU}"\nname = "北京大学图书馆"\nurl = "{URLS[PKU]}"\n'
        )


def make_library(config: Path) -> None:
    """A small working library through the CLI and the engine: the demo catalogue and a real
    CNMARC file (two batches), copies, readers, loans, a hold trapped and one waiting, fees
    charged and paid, notices, a partner's ILL request and a reader's."""
    run(config, "load", str(FIXTURES / "marc" / "demo_main.iso"))
    bnu = FIXTURES / "marc" / "real" / "cnmarc" / "bnu_cnmarc_10_utf8.iso"
    run(config, "load", "--profile", "bnu", str(bnu))
    run(config, "patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv"))
    cli(config, "circ", "checkout", "P0001", "54122100600021")
    cli(config, "circ", "checkout", "P0003", "54122100600022")
    cli(config, "circ", "hold", "P0002", "SHL000000003")
    cli(
        config,
        "circ",
        "fee",
        "add",
        "P0001",
        "2.50",
        "--kind",
        "damage",
        "--description",
        "书页撕破",
    )
    cli(config, "circ", "fee", "add", "P0004", "1.00")
    cli(config, "ill", "readers", "confirm", "P0005")
    # A deleted record: its tombstone for the search index, its kept version for an undo.
    deleted = cli(config, "records", "delete", "990000953830203961")
    assert deleted, deleted
    settings = load_settings(str(config))
    with open_existing_store(settings.storage) as store:
        engine = Engine(store, Policy.from_settings(settings), SystemClock())
        assert engine.pay_fee("P0004", 100).ok
        assert (
            InterlibraryLoan(engine, settings.ill)
            .on_request(partner_request("PKU-2026-1", record_id="SHL000000001"))
            .ok
        )
