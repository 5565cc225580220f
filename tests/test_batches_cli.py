"""`libgate load --dry-run`, `batches list|show|undo`, `records delete`, `items delete` end to
end through the command, on both engines."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.cli import EXIT_OK, EXIT_REFUSED, main
from gateway.store import open_store
from tests.conftest import FIXTURES
from tests.support import cnmarc, iso

DEMO = FIXTURES / "marc" / "demo_main.iso"


def run(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def counts(config_file: Path) -> tuple[int, int, int]:
    url = config_file.read_text("utf-8").split('"')[1]
    with open_store(url) as store, store.read() as tx:
        return (
            int(tx.scalar("SELECT count(*) FROM bib_records")),
            int(tx.scalar("SELECT count(*) FROM items")),
            int(tx.scalar("SELECT count(*) FROM batches")),
        )


def test_dry_run_prints_what_would_happen_and_changes_nothing(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    before = counts(config_file)
    vendor = tmp_path / "vendor.iso"
    vendor.write_bytes(
        iso(cnmarc("SHL000000001", "新题名", barcodes=("X-1",)), cnmarc("NEW-1", "新书"))
    )
    capsys.readouterr()
    report = tmp_path / "dry.json"
    code = run(config_file, "load", "--dry-run", "--report", str(report), str(vendor))
    assert code == EXIT_OK
    assert counts(config_file) == before
    out = capsys.readouterr().out
    assert "dry run: nothing was changed" in out
    assert "new (1):" in out and "NEW-1" in out
    assert "overlay (1):" in out and "200 changed:" in out
    data = json.loads(report.read_text("utf-8"))
    assert data["dry_run"] is True and data["batch"] is None
    assert [r["outcome"] for r in data["records"]] == ["overlay", "new"]


def test_list_show_undo_and_refusals(config_file: Path, tmp_path: Path, capsys) -> None:
    assert run(config_file, "load", "--by", "王老师", str(DEMO)) == EXIT_OK
    assert run(config_file, "load", "--match", "isbn,bogus", str(DEMO)) == 1
    assert "unknown match point 'bogus'" in capsys.readouterr().err
    assert run(config_file, "batches", "list", "--json") == EXIT_OK
    listed = json.loads(capsys.readouterr().out)
    assert [(b["batch"], b["state"], b["by"]) for b in listed] == [(1, "done", "王老师")]
    assert run(config_file, "batches", "show", "1", "--json") == EXIT_OK
    shown = json.loads(capsys.readouterr().out)
    assert len(shown["records"]) == 7 and {r["outcome"] for r in shown["records"]} == {"new"}
    assert len([c for c in shown["copies"] if c["action"] == "created"]) == 9
    assert run(config_file, "batches", "undo", "1") == EXIT_OK
    assert "records removed (7)" in capsys.readouterr().out
    assert counts(config_file)[:2] == (0, 0)
    assert run(config_file, "batches", "undo", "1") == EXIT_REFUSED
    assert "already undone" in capsys.readouterr().out
    assert run(config_file, "batches", "show", "1") == EXIT_OK
    assert "undone" in capsys.readouterr().out


def test_records_and_items_delete_from_a_file(config_file: Path, tmp_path: Path, capsys) -> None:
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    ids = tmp_path / "ids.txt"
    ids.write_text("SHL000000002\nSHL000000003\n", encoding="utf-8")
    capsys.readouterr()
    assert run(config_file, "records", "delete", "--from", str(ids)) == EXIT_OK
    out = capsys.readouterr().out
    assert "deleted 2 records" in out and "libgate batches undo 2" in out
    assert run(config_file, "items", "delete", "54122100517423", "NOPE") == EXIT_REFUSED
    out = capsys.readouterr().out
    assert "deleted 1 copies" in out and "not found: NOPE" in out
    assert counts(config_file) == (5, 4, 3)  # records 2 and 3 had two copies each
    assert run(config_file, "batches", "undo", "2") == EXIT_OK
    assert run(config_file, "batches", "undo", "3") == EXIT_OK
    assert counts(config_file)[:2] == (7, 9)
    assert run(config_file, "records", "delete") == 1  # nothing named: one line, exit 1
