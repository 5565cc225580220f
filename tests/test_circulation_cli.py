"""The staff channel and reader import end to end: `libgate circ`, `holds process`,
`patrons import`, `notices list`. Refusals print the engine's reasons and exit 3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from tests.conftest import FIXTURES

OK, FATAL, USAGE, REFUSED = 0, 1, 2, 3


@pytest.fixture
def desk(config_file: Path) -> Path:
    assert (
        main(["--config", str(config_file), "load", str(FIXTURES / "marc" / "demo_main.iso")]) == OK
    )
    assert (
        main(
            [
                "--config",
                str(config_file),
                "patrons",
                "import",
                str(FIXTURES / "patrons" / "demo_patrons.csv"),
            ]
        )
        == OK
    )
    return config_file


def run_json(config: Path, capsys, *args: str) -> tuple[int, Any]:  # JSON: an object or a list
    capsys.readouterr()
    code = main(["--config", str(config), *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_day_at_the_desk(desk: Path, capsys) -> None:
    code, out = run_json(desk, capsys, "circ", "checkout", "P0001", "54122100600021")
    assert code == OK and out["due_at"]
    code, out = run_json(desk, capsys, "circ", "hold", "P0002", "SHL000000003")
    assert code == REFUSED and out["reasons"][0]["rule"] == "R2"  # the second copy is on the shelf
    assert run_json(desk, capsys, "circ", "checkout", "P0003", "54122100600022")[0] == OK
    code, out = run_json(desk, capsys, "circ", "hold", "P0002", "SHL000000003")
    assert code == OK and out["hold"]["queue_position"] == 1
    code, out = run_json(desk, capsys, "circ", "renew", "P0001", "54122100600021")
    assert code == REFUSED and out["reasons"][0]["rule"] == "R5"
    code, out = run_json(desk, capsys, "circ", "checkin", "54122100600021")
    assert (
        code == OK
        and out["trapped_for"]["barcode"] == "P0002"
        and out["hold"]["pickup_desk"] == "二楼借书处"
    )
    code, out = run_json(desk, capsys, "circ", "checkout", "P0001", "54122100600021")
    assert code == REFUSED and out["reasons"][0]["rule"] == "R14"
    code, out = run_json(desk, capsys, "circ", "status", "P0002")
    assert code == OK and out["holds"][0]["state"] == "ready"
    code, out = run_json(desk, capsys, "circ", "status", "54122100600021")
    assert out["availability"]["copies"][0]["on_hold_shelf"] is True
    capsys.readouterr()
    assert main(["--config", str(desk), "holds", "process", "--as-of", "2099-01-01T00:00:00"]) == OK
    assert "not collected 1 (R9)" in capsys.readouterr().out
    assert main(["--config", str(desk), "holds", "process", "--as-of", "2099-01-01T00:00:00"]) == OK
    assert "expired 0 (R8), not collected 0 (R9)" in capsys.readouterr().out  # twice: no change
    code, out = run_json(desk, capsys, "notices", "list")
    assert {n["kind"] for n in out} >= {"hold_placed", "hold_ready", "hold_no_show"}


def test_fees_at_the_desk(desk: Path, capsys) -> None:
    code, out = run_json(
        desk,
        capsys,
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
    assert code == OK and out["fee_id"] and out["balance"] == 250
    assert out["notes"][0]["code"] == "fee_added"
    code, out = run_json(desk, capsys, "circ", "fee", "add", "P0001", "1")
    assert code == OK and out["balance"] == 350
    code, out = run_json(desk, capsys, "circ", "fees", "P0001")
    assert code == OK and out["owed"] == 350 and out["currency"] == "CNY"
    assert [(f["kind"], f["amount"], f["outstanding"]) for f in out["fees"]] == [
        ("damage", 250, 250),
        ("other", 100, 100),
    ]
    assert out["fees"][0]["description"] == "书页撕破"
    capsys.readouterr()
    assert main(["--config", str(desk), "circ", "fees", "P0001"]) == OK
    listing = capsys.readouterr().out
    assert "2 fees; owed 3.50 CNY" in listing and "书页撕破" in listing
    code, out = run_json(desk, capsys, "circ", "fee", "add", "P0001", "0")
    assert code == REFUSED and out["reasons"][0]["code"] == "fee_amount_invalid"
    code, out = run_json(desk, capsys, "circ", "fee", "add", "NOBODY", "1")
    assert code == REFUSED and out["reasons"][0]["code"] == "patron_unknown"
    assert main(["--config", str(desk), "circ", "fee", "add", "P0001", "2.505"]) == USAGE
    assert "more decimals" in capsys.readouterr().err
    assert main(["--config", str(desk), "circ", "fees", "NOBODY"]) == REFUSED
    with pytest.raises(SystemExit):
        main(["--config", str(desk), "circ", "fee", "add", "P0001", "1", "--kind", "parking"])


def test_english_messages(desk: Path, capsys) -> None:
    capsys.readouterr()
    assert (
        main(["--config", str(desk), "circ", "checkout", "P0001", "NO-SUCH", "--language", "en"])
        == REFUSED
    )
    assert "is not one of our copies" in capsys.readouterr().out


def test_patrons_import_reports_bad_rows_and_updates_by_barcode(
    desk: Path, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        "barcode,name,pin,category,email,phone\n"
        "P0001,张伟（改名）,,本科生,zhangwei@example.edu.cn,13800000001\n"
        "P0009,新读者,9999,本科生,,\n"
        ",无证号,1,本科生,,\n"
        "P0010,某人,1,外星人,,\n"
        "P0011,某人,1,本科生,not-an-email,\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert main(["--config", str(desk), "patrons", "import", str(path)]) == REFUSED
    out = capsys.readouterr().out
    assert f"{path}:4: barcode is empty" in out
    assert f"{path}:5: unknown category '外星人'" in out
    assert f"{path}:6: email 'not-an-email'" in out
    assert "1 added, 1 updated, 0 unchanged, 3 rejected" in out
    from gateway.circulation.pins import check_pin
    from gateway.config import load_settings
    from gateway.store import open_store

    with open_store(load_settings(str(desk)).storage.url) as store, store.read() as tx:
        row = tx.one("SELECT name, pin_hash FROM patrons WHERE barcode = 'P0001'")
    assert row is not None
    name, pin_hash = row
    assert name == "张伟（改名）" and check_pin("1234", pin_hash)  # empty pin kept the old one
    assert not check_pin("0000", pin_hash)


def test_patrons_file_without_the_header_is_fatal(desk: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,name\n1,x\n", encoding="utf-8")
    assert main(["--config", str(desk), "patrons", "import", str(path)]) == FATAL
    assert "lacks barcode" in capsys.readouterr().err


def test_status_is_text_for_people_and_json_only_with_the_flag(desk: Path, capsys) -> None:
    assert main(["--config", str(desk), "circ", "checkout", "P0001", "54122100600021"]) == OK
    capsys.readouterr()
    assert main(["--config", str(desk), "circ", "status", "P0001"]) == OK
    reader = capsys.readouterr().out
    with pytest.raises(json.JSONDecodeError):
        json.loads(reader)
    assert reader.startswith("reader P0001: ")
    assert "loans: 1" in reader and "54122100600021" in reader and "holds: 0" in reader
    assert main(["--config", str(desk), "circ", "status", "54122100600021"]) == OK
    copy = capsys.readouterr().out
    with pytest.raises(json.JSONDecodeError):
        json.loads(copy)
    assert copy.startswith("copy 54122100600021: record ")
    assert "54122100600021" in copy and "on loan, due " in copy
    code, out = run_json(desk, capsys, "circ", "status", "P0001")
    assert code == OK and out["loans"][0]["item"] == "54122100600021"
