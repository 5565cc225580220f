"""The `libgate` command end to end: load, items import, export, exit codes, serve."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import EXIT_FATAL, EXIT_OK, EXIT_REJECTED, main
from gateway.config import load_settings
from gateway.store import open_store
from marc.iso2709 import frame_records, parse_structure
from tests.conftest import FIXTURES, REAL
from tests.serve_support import serve_until_exit

DEMO = FIXTURES / "marc" / "demo_main.iso"


def run(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def test_load_writes_report_and_rejects(config_file: Path, tmp_path: Path, capsys) -> None:
    report_path, rejects_path = tmp_path / "report.json", tmp_path / "rejects.iso"
    code = run(
        config_file,
        "load",
        "--report",
        str(report_path),
        "--rejects",
        str(rejects_path),
        str(REAL / "malformed" / "pymarc_bad_records.mrc"),
        str(DEMO),
    )
    assert code == EXIT_REJECTED
    report = json.loads(report_path.read_text("utf-8"))
    assert [Path(f["path"]).name for f in report["files"]] == [
        "pymarc_bad_records.mrc",
        "demo_main.iso",
    ]
    total = report["total"]
    assert (
        total["framed"]
        == total["loaded"] + total["overlaid"] + total["unchanged"] + total["rejected"]
    )
    assert total["rejected"] == len(report["files"][0]["rejects"]) > 0
    assert rejects_path.read_bytes().count(b"\x1d") == total["rejected"]
    printed = capsys.readouterr()
    assert "total:" in printed.out  # what was loaded on stdout, the problems on stderr
    assert "record 4 at byte 381 (read as" not in printed.err  # rejected before its format
    assert "record 4 at byte 381: the directory is damaged" in printed.err


def test_clean_load_exits_zero_and_reload_is_unchanged(config_file: Path, tmp_path: Path) -> None:
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    report_path = tmp_path / "r.json"
    assert run(config_file, "load", "--report", str(report_path), str(DEMO)) == EXIT_OK
    assert json.loads(report_path.read_text())["total"]["unchanged"] == 7


def test_unknown_database_profile_and_encoding_are_fatal(config_file: Path, capsys) -> None:
    assert run(config_file, "load", "--database", "nope", str(DEMO)) == EXIT_FATAL
    assert "unknown database 'nope'" in capsys.readouterr().err
    assert run(config_file, "load", "--profile", "nope", str(DEMO)) == EXIT_FATAL
    assert "unknown holdings profile" in capsys.readouterr().err
    assert run(config_file, "load", "--encoding", "klingon", str(DEMO)) == EXIT_FATAL
    assert "klingon" in capsys.readouterr().err
    assert run(config_file, "load", "/no/such/file.iso") == EXIT_FATAL


def test_bad_config_stops_with_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[storage]\nurl = "sqlite:///x.db"\ncolour = "blue"\n')
    assert main(["--config", str(bad), "init"]) == EXIT_FATAL
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown key 'colour'" in err


def test_items_import_reports_bad_rows_by_line_and_loads_the_rest(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    csv_path = tmp_path / "items.csv"
    csv_path.write_text(
        "barcode,database,record_id,location,call_number,item_type,status,extra\n"
        "NEW001,main,SHL000000003,中文书库,I242.47/C12,普通外借资料,归还,x\n"
        ",main,SHL000000003,中文书库,I242.47/C12,普通外借资料,归还,x\n"
        "NEW002,nowhere,SHL000000003,中文书库,I242.47/C12,普通外借资料,归还,x\n"
        "NEW003,main,NO-SUCH,中文书库,I242.47/C12,普通外借资料,归还,x\n"
        "54122100517423,main,SHL000000001,综合阅览室-2楼,K20/C178/v.7/,参考外借资料,,x\n",
        encoding="utf-8",
    )
    report_path = tmp_path / "items.json"
    assert (
        run(config_file, "items", "import", "--report", str(report_path), str(csv_path))
        == EXIT_REJECTED
    )
    out = capsys.readouterr().out
    assert f"{csv_path}:3: barcode is empty" in out
    assert f"{csv_path}:4: unknown database 'nowhere'" in out
    assert f"{csv_path}:5: record NO-SUCH is not in database main" in out
    report = json.loads(report_path.read_text())
    assert (report["added"], report["updated"], report["rejected"]) == (1, 1, 3)
    settings = load_settings(str(config_file))
    with open_store(settings.storage.url) as store, store.read() as tx:
        moved = tx.one("SELECT location, status FROM items WHERE barcode = ?", ("54122100517423",))
        assert moved == ("综合阅览室-2楼", "归还")  # empty status keeps the current one
    # Re-import: the same rows change nothing.
    assert (
        run(config_file, "items", "import", "--report", str(report_path), str(csv_path))
        == EXIT_REJECTED
    )
    again = json.loads(report_path.read_text())
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 2)


def test_copies_without_a_status_get_the_configured_on_shelf_word(
    config_file: Path, tmp_path: Path
) -> None:
    with config_file.open("a", encoding="utf-8") as config:
        config.write('[circulation]\non_shelf_status = "在架"\n')
    settings = load_settings(str(config_file))
    bnu = REAL / "cnmarc" / "bnu_cnmarc_10_utf8.iso"  # its 906 copies carry no status
    assert run(config_file, "load", "--profile", "bnu", str(bnu)) == EXIT_OK
    with open_store(settings.storage.url) as store, store.read() as tx:
        loaded = [row[0] for row in tx.execute("SELECT status FROM items")]
    assert loaded == ["在架"] * 7
    csv_path = tmp_path / "items.csv"
    csv_path.write_text(
        "barcode,database,record_id,location,call_number,item_type,status\n"
        "BLANK001,main,SHL000000003,中文书库,I242.47/C12,普通外借资料,\n",
        encoding="utf-8",
    )
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    assert run(config_file, "items", "import", str(csv_path)) == EXIT_OK
    with open_store(settings.storage.url) as store, store.read() as tx:
        imported = tx.scalar("SELECT status FROM items WHERE barcode = 'BLANK001'")
    assert imported == "在架"


def test_items_import_refuses_a_file_without_the_contract_header(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("barcode,record\n1,2\n")
    assert run(config_file, "items", "import", str(csv_path)) == EXIT_FATAL
    assert "lacks database" in capsys.readouterr().err


def test_demo_items_fixture_imports(config_file: Path) -> None:
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    assert (
        run(
            config_file, "load", "--profile", "bnu", str(REAL / "cnmarc" / "bnu_cnmarc_10_utf8.iso")
        )
        == EXIT_OK
    )
    assert (
        run(config_file, "items", "import", str(FIXTURES / "items" / "demo_items.csv")) == EXIT_OK
    )


def test_export_reloads_as_unchanged(config_file: Path, tmp_path: Path) -> None:
    assert (
        run(config_file, "load", "--profile", "bnu", str(REAL / "cnmarc" / "bnu_cnmarc_10_gbk.iso"))
        == EXIT_OK
    )
    exported = tmp_path / "out.iso"
    assert run(config_file, "export", "--output", str(exported)) == EXIT_OK
    data = exported.read_bytes()
    assert data.count(b"\x1d") == 10
    report_path = tmp_path / "r.json"
    assert (
        run(config_file, "load", "--profile", "bnu", "--report", str(report_path), str(exported))
        == EXIT_OK
    )
    report = json.loads(report_path.read_text())
    assert report["total"]["unchanged"] == 10
    assert report["total"]["encodings"] == {"utf-8": 10}


needs_yaz = pytest.mark.skipif(
    shutil.which("yaz-marcdump") is None,
    reason="yaz-marcdump (Debian package yaz) is not installed; .ci/run installs it",
)


@needs_yaz
def test_export_of_chosen_records(config_file: Path, tmp_path: Path) -> None:
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    exported = tmp_path / "two.iso"
    chosen = ("SHL000000001", "SHL000000003")
    assert (
        run(
            config_file,
            "export",
            "--record-id",
            chosen[0],
            "--record-id",
            chosen[1],
            "-o",
            str(exported),
        )
        == EXIT_OK
    )
    with exported.open("rb") as handle:
        ids = [
            next(data for tag, data in parse_structure(chunk).entries if tag == "001").decode()
            for chunk in frame_records(handle)
        ]
    assert ids == list(chosen)


def test_export_reads_back_identically_in_yaz_marcdump(config_file: Path, tmp_path: Path) -> None:
    assert (
        run(config_file, "load", "--profile", "bnu", str(REAL / "cnmarc" / "bnu_cnmarc_10_gbk.iso"))
        == EXIT_OK
    )
    iso_path, xml_path = tmp_path / "out.iso", tmp_path / "out.xml"
    assert run(config_file, "export", "-o", str(iso_path)) == EXIT_OK
    assert run(config_file, "export", "--format", "marcxchange", "-o", str(xml_path)) == EXIT_OK
    from_iso = subprocess.run(
        ["yaz-marcdump", "-o", "line", str(iso_path)], capture_output=True, check=True
    )
    from_xml = subprocess.run(
        ["yaz-marcdump", "-i", "marcxchange", "-o", "line", str(xml_path)],
        capture_output=True,
        check=True,
    )
    text = from_iso.stdout.decode("utf-8")
    assert "200 1  $a '94中国发展报告" in text
    assert "100    $a 20020204d1994    em y0chiy50      ea" in text  # declared UTF-8 now
    assert from_iso.stdout == from_xml.stdout
    assert b"error" not in from_iso.stderr.lower()
    # yaz's own ISO 2709 output of our file is byte-identical to our file.
    again = subprocess.run(
        ["yaz-marcdump", "-o", "marc", str(iso_path)], capture_output=True, check=True
    )
    assert again.stdout == iso_path.read_bytes()


def test_marcxml_export_is_well_formed_and_reloads(config_file: Path, tmp_path: Path) -> None:
    from lxml import etree

    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    xml_path = tmp_path / "out.xml"
    assert run(config_file, "export", "--format", "marcxml", "-o", str(xml_path)) == EXIT_OK
    tree = etree.parse(str(xml_path))
    records = tree.findall("{http://www.loc.gov/MARC21/slim}record")
    assert len(records) == 7
    report_path = tmp_path / "r.json"
    assert run(config_file, "load", "--report", str(report_path), str(xml_path)) == EXIT_OK
    assert json.loads(report_path.read_text())["total"]["unchanged"] == 7


def test_serve_starts_the_skeleton_and_names_its_listeners(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    # No SRU listener here: this test is about the skeleton (test_sru_clients.py serves SRU).
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path / "s.db"}"\n[sru]\nlisten = []\n[sip2]\nlisten = []\n'
        "[z3950]\nlisten = []\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        for _ in range(20):  # until the listeners line; a dead server ends the stream
            line = process.stdout.readline()
            lines.append(line)
            if not line or "listeners:" in line or "listening:" in line:
                break
    finally:
        process.terminate()
        process.wait(timeout=10)
    text = "".join(lines)
    assert "libgate serving" in text
    assert "database main: 0 records" in text
    assert "listeners:" in text or "listening:" in text
    assert process.returncode in (0, -15)


def test_serve_stops_with_one_line_when_its_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "busy.toml"
        config.write_text(
            f'[storage]\nurl = "sqlite:///{tmp_path / "b.db"}"\n[sru]\nlisten = []\n'
            f'[sip2]\nlisten = ["tcp:{port}:interface=127.0.0.1"]\n[z3950]\nlisten = []\n'
        )
        done = serve_until_exit(config)
    assert done.returncode == 1
    assert f"cannot listen: Couldn't listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_hash_password_reads_stdin_and_the_hash_logs_a_terminal_in(tmp_path: Path) -> None:
    from sip2.accounts import password_matches

    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "hash-password"],
        input="终端密码 1\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    hashed = done.stdout.strip()
    assert hashed.startswith("scrypt$") and "终端密码" not in hashed
    assert password_matches("终端密码 1", hashed)
    assert not password_matches("终端密码 2", hashed)
    empty = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "hash-password"],
        input="\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert empty.returncode == 1 and "empty password" in empty.stderr


def test_output_cut_off_by_its_reader_ends_quietly(config_file: Path) -> None:
    """`libgate export | head -c1` and the like: the reader closes the pipe, and libgate
    stops with 141 (128 + SIGPIPE) and no traceback."""
    for args in (["init"], ["load", str(FIXTURES / "marc" / "demo_main.iso")]):
        assert main(["--config", str(config_file), *args]) == EXIT_OK
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(config_file), "export"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before a byte is read
    errors = process.stderr.read().decode("utf-8")
    assert process.wait(timeout=60) == 141
    assert "Traceback" not in errors and "Exception ignored" not in errors
