"""`libgate export --with-items` (issue 17): the current copies and their live status written
into each record's holdings fields in the database's holdings profile, so that an export
loaded into a fresh database gives back every copy, as Koha's export carries its 952s."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import EXIT_FATAL, EXIT_OK, EXIT_REJECTED, main
from gateway.config import BUILTIN_PROFILES, load_settings
from gateway.store import open_store
from marc import charset
from marc.holdings import HoldingsProfile, ItemData, items_from_record
from marc.holdings_export import LostValue, WriteLayout, with_copies
from marc.iso2709 import frame_records, parse_structure
from marc.record import Field, MarcRecord
from tests.conftest import FIXTURES, REAL, fresh_schema_url

DEMO = FIXTURES / "marc" / "demo_main.iso"
BNU = REAL / "cnmarc" / "bnu_cnmarc_10_utf8.iso"
OXFORD_852 = REAL / "cjk" / "marc4j_pride-and-prejudice-fixed.mrc"  # 852 $p barcodes
PROFILES = {p.name: p for p in BUILTIN_PROFILES}
ON_SHELF = "归还"

needs_yaz = pytest.mark.skipif(
    shutil.which("yaz-marcdump") is None,
    reason="yaz-marcdump (Debian package yaz) is not installed; .ci/run installs it",
)


def records(path: Path) -> list[MarcRecord]:
    """The file's records decoded as the loader decodes them."""
    found = []
    with path.open("rb") as handle:
        for chunk in frame_records(handle):
            raw = parse_structure(chunk)
            unimarc = charset.looks_unimarc(raw)
            record, _notes = charset.decode_record(raw, charset.decide(raw, unimarc))
            found.append(record)
    return found


# --- the write layout -----------------------------------------------------------------------


def test_each_profile_writes_where_it_reads() -> None:
    libgate = WriteLayout.of(PROFILES["libgate"])
    assert (libgate.tag, libgate.subfields) == (
        "995",
        {
            "barcode": "f",
            "library": "b",
            "location": "e",
            "call_number": "k",
            "item_type": "r",
            "status": "s",
        },
    )
    assert libgate.unplaced() == []
    # 905$s and {$d}/{$e} cannot carry one copy's call number; BNU's 906 has no location,
    # item type or status.
    bnu = WriteLayout.of(PROFILES["bnu"])
    assert bnu.subfields == {"barcode": "b"}
    assert bnu.unplaced() == ["library", "location", "call_number", "item_type", "status"]
    # {$h}{$i}: the whole call number goes in $h, and reads back with $i empty.
    assert WriteLayout.of(PROFILES["marc21-852"]).subfields == {
        "barcode": "p",
        "library": "a",
        "location": "b",
        "call_number": "h",
    }


def test_status_words_go_out_as_the_profiles_codes() -> None:
    profile = HoldingsProfile(
        name="acme",
        item_tag="949",
        barcode=("{$i}",),
        status=("{$s}",),
        status_map={"0": "归还", "1": "借出", "available": "归还"},
    )
    field = WriteLayout.of(profile).item_field(ItemData("B1", status="借出"))
    assert field.subfields == [("i", "B1"), ("s", "1")]
    record = MarcRecord("00000nam a2200000 a 4500", [Field("001", value="r1")])
    items = [
        ItemData("B1", status="借出"),
        ItemData("B2", status="归还"),
        ItemData("B3", status="丢失"),
    ]
    rebuilt, lost = with_copies(record, profile, items, ON_SHELF, "r1")
    assert [f.subfields for f in rebuilt.get_fields("949")] == [
        [("i", "B1"), ("s", "1")],
        [("i", "B2"), ("s", "0")],
        [("i", "B3"), ("s", "丢失")],
    ]
    assert lost == []


@pytest.mark.parametrize(
    ("path", "profile"),
    [(DEMO, "libgate"), (BNU, "bnu"), (OXFORD_852, "marc21-852")],
)
def test_real_copies_written_back_read_the_same(path: Path, profile: str) -> None:
    """Copies a load reads from real records, written back by the export, read the same."""
    chosen = PROFILES[profile]
    seen = 0
    for record in records(path):
        items, _warnings = items_from_record(record, chosen, ON_SHELF)
        rebuilt, lost = with_copies(record, chosen, items, ON_SHELF, "id")
        assert lost == []
        assert items_from_record(rebuilt, chosen, ON_SHELF)[0] == items
        seen += len(items)
    assert seen >= 7


def test_what_a_profile_cannot_carry_is_named() -> None:
    record = next(r for r in records(BNU) if r.control("001") == "990002180740203961")
    from_csv = ItemData(
        "1683011",
        "北京师范大学图书馆",
        "中文库本书—A-H(主馆六层)",
        "F124/26",
        "普通外借资料",
        "借出",
    )
    rebuilt, lost = with_copies(record, PROFILES["bnu"], [from_csv], ON_SHELF, "x")
    assert [f.get("b") for f in rebuilt.get_fields("906")] == ["1683011"]
    assert lost == [
        LostValue("1683011", "library", "北京师范大学图书馆", "BNU"),  # 905$a, for the record
        LostValue("1683011", "location", "中文库本书—A-H(主馆六层)", ""),
        LostValue("1683011", "item_type", "普通外借资料", ""),
        LostValue("1683011", "status", "借出", ON_SHELF),
    ]


def test_item_fields_take_the_place_of_the_old_ones() -> None:
    record = MarcRecord(
        "00000nam0 2200000   450 ",
        [
            Field("100", "  ", [("a", "x")]),
            Field("200", "1 ", [("a", "书名")]),
            Field("801", " 0", [("a", "CN")]),
            Field("AVA", "  ", [("a", "y")]),
        ],
    )
    profile = PROFILES["libgate"]
    added, _ = with_copies(record, profile, [ItemData("B1")], ON_SHELF, "h0123")
    # No 001: the record id goes in, so a reload finds this record again.
    assert [f.tag for f in added.fields] == ["001", "100", "200", "801", "995", "AVA"]
    assert added.control("001") == "h0123"
    moved = MarcRecord(
        "00000nam0 2200000   450 ",
        [
            Field("001", value="r1"),
            Field("200", "1 ", [("a", "书名")]),
            Field("995", "  ", [("f", "OLD1")]),
            Field("905", "  ", [("a", "z")]),
            Field("995", "  ", [("f", "OLD2")]),
        ],
    )
    replaced, _ = with_copies(moved, profile, [ItemData("N1"), ItemData("N2")], ON_SHELF, "r1")
    assert [(f.tag, f.get("f")) for f in replaced.fields] == [
        ("001", None),
        ("200", None),
        ("995", "N1"),
        ("995", "N2"),
        ("905", None),
    ]
    emptied, lost = with_copies(moved, profile, [], ON_SHELF, "r1")
    assert [f.tag for f in emptied.fields] == ["001", "200", "905"] and lost == []


# --- the command, end to end on both engines --------------------------------------------------


def run(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


@pytest.fixture
def fresh_config(store_url: str, tmp_path: Path, request) -> Iterator[Path]:
    """A config for a second, empty database on the same engine as `config_file`."""
    path = tmp_path / "fresh.toml"
    if store_url.startswith("sqlite"):
        path.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "fresh.db"}"\n', "utf-8")
        yield path
        return
    admin = request.getfixturevalue("postgres_admin")
    with fresh_schema_url(admin, "t_" + uuid.uuid4().hex[:12]) as url:
        path.write_text(f'[storage]\nurl = "{url}"\n', encoding="utf-8")
        yield path


def copies(config: Path) -> list[tuple[str, ...]]:
    with open_store(load_settings(str(config)).storage.url) as store, store.read() as tx:
        rows = tx.execute(
            "SELECT r.record_id, i.barcode, i.library, i.location, i.call_number, i.item_type,"
            " i.status FROM items i JOIN bib_records r ON r.id = i.record_pk"
            " ORDER BY i.barcode"
        )
        return [tuple(row) for row in rows]


@needs_yaz
def test_a_round_trip_keeps_every_copy(
    config_file: Path, fresh_config: Path, tmp_path: Path, capsys
) -> None:
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    assert run(config_file, "load", "--profile", "bnu", str(BNU)) == EXIT_OK
    # Copies from CSV (one on a BNU record, described better than its 906), readers, a loan,
    # and a lost copy: live states the MARC as loaded does not have.
    assert run(config_file, "items", "import", str(FIXTURES / "items" / "demo_items.csv")) == 0
    lost_csv = tmp_path / "lost.csv"
    lost_csv.write_text(
        "barcode,database,record_id,location,call_number,item_type,status\n"
        "54122100600031,main,SHL000000004,综合阅览室-1楼,K992.6/T12/7,阅览资料,丢失\n",
        encoding="utf-8",
    )
    assert run(config_file, "items", "import", str(lost_csv)) == EXIT_OK
    readers = FIXTURES / "patrons" / "demo_patrons.csv"
    assert run(config_file, "patrons", "import", str(readers)) == EXIT_OK
    assert run(config_file, "circ", "checkout", "P0001", "54122100600021") == EXIT_OK
    before = copies(config_file)
    assert (
        "SHL000000003",
        "54122100600021",
        "上海图书馆",
        "中文书库",
        "I242.47/C12",
        "普通外借资料",
        "借出",
    ) in before
    assert len(before) == 18

    exported = tmp_path / "with_items.iso"
    capsys.readouterr()
    assert run(config_file, "export", "--with-items", "-o", str(exported)) == EXIT_OK
    assert "exported 17 records from main as iso2709 with 18 copies in 995 (profile libgate)" in (
        capsys.readouterr().err
    )
    dumped = subprocess.run(["yaz-marcdump", str(exported)], capture_output=True, check=True)
    assert dumped.stderr == b""
    text = dumped.stdout.decode("utf-8")
    assert (
        "995    $b 上海图书馆 $e 中文书库 $f 54122100600021 $k I242.47/C12 $r 普通外借资料 $s 借出"
        in text
    )
    assert "$f 54122100600031 $k K992.6/T12/7 $r 阅览资料 $s 丢失" in text
    # yaz writes our file back byte for byte, and reads the XML export as the same records.
    again = subprocess.run(
        ["yaz-marcdump", "-o", "marc", str(exported)], capture_output=True, check=True
    )
    assert again.stdout == exported.read_bytes()
    as_xml = tmp_path / "with_items.xml"
    assert run(config_file, "export", "--with-items", "--format", "marcxml", "-o", str(as_xml)) == 0
    from_xml = subprocess.run(
        ["yaz-marcdump", "-i", "marcxml", "-o", "line", str(as_xml)],
        capture_output=True,
        check=True,
    )
    from_iso = subprocess.run(
        ["yaz-marcdump", "-o", "line", str(exported)], capture_output=True, check=True
    )
    assert from_xml.stdout == from_iso.stdout and from_xml.stderr == b""

    # Loaded into a fresh database with the same profile: every copy as it was.
    assert run(fresh_config, "load", str(exported)) == EXIT_OK
    assert copies(fresh_config) == before
    # And the export of the copy is the export of the original.
    second = tmp_path / "second.iso"
    assert run(fresh_config, "export", "--with-items", "-o", str(second)) == EXIT_OK
    assert second.read_bytes() == exported.read_bytes()


def test_export_in_a_profile_without_room_says_what_is_lost(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    assert run(config_file, "load", "--profile", "bnu", str(BNU)) == EXIT_OK
    assert run(config_file, "items", "import", str(FIXTURES / "items" / "demo_items.csv")) == 3
    out = tmp_path / "bnu.iso"
    capsys.readouterr()
    code = run(config_file, "export", "--with-items", "--profile", "bnu", "-o", str(out))
    err = capsys.readouterr().err
    assert code == EXIT_REJECTED
    assert "profile bnu has no place for location: 1 copy would not get it back when loaded" in err
    assert "1683011 '中文库本书—A-H(主馆六层)'" in err
    assert "--profile libgate" in err
    # The copies are there all the same, one 906 $b each.
    barcodes = [f.get("b") or "" for r in records(out) for f in r.get_fields("906")]
    assert sorted(barcodes) == sorted(c[1] for c in copies(config_file))


def test_a_profile_without_holdings_cannot_carry_copies(config_file: Path, capsys) -> None:
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    assert run(config_file, "export", "--with-items", "--profile", "none") == EXIT_FATAL
    assert "holdings profile none has no holdings field" in capsys.readouterr().err


def test_export_without_items_is_the_records_as_loaded(config_file: Path, tmp_path: Path) -> None:
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    csv_path = tmp_path / "items.csv"
    csv_path.write_text(
        "barcode,database,record_id,location,call_number,item_type,status\n"
        "NEW1,main,SHL000000001,中文书库,K20,普通外借资料,归还\n",
        encoding="utf-8",
    )
    assert run(config_file, "items", "import", str(csv_path)) == EXIT_OK
    plain, with_items = tmp_path / "plain.iso", tmp_path / "items.iso"
    assert run(config_file, "export", "-o", str(plain)) == EXIT_OK
    assert run(config_file, "export", "--with-items", "-o", str(with_items)) == EXIT_OK
    assert plain.read_bytes() == DEMO.read_bytes()
    assert b"NEW1" not in plain.read_bytes() and b"NEW1" in with_items.read_bytes()
