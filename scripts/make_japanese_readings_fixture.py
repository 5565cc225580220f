"""Write fixtures/marc/japanese/japanese_readings.iso: well-known Japanese titles, written by us.

The real Japanese records (japanese_cnmarc.iso) are few and unusual (a city history, a serial,
a Heian poetry study): none is a title whose reading every reader knows. Readings (わがはい,
がらす), script folding (图书馆 for 図書館) and the ガラス/カラス false-hit pair need titles like
吾輩は猫である, so these records are **written by us**: title, statement of responsibility and
name only, as a cataloguer would enter them, with one copy each in libgate's 995 layout. No
publisher, date, ISBN or edition is given: those would be invented bibliographic data. The
records carry no reading or romanisation fields (CNMARC has no standard place for kana), so a
reading must be generated. See PROVENANCE.md.

Run from the project root: `python scripts/make_japanese_readings_fixture.py`. Output is
deterministic (no dates from the clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from marc.record import Field, MarcRecord
from marc.writer import canonical, to_iso2709

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "marc" / "japanese" / "japanese_readings.iso"

# 100$a: entered 2026-12-07 (the day the records were written), dates of publication unknown
# (`u`, blank), general audience, cataloguing language chi (the library catalogues in Chinese),
# UTF-8 (26-29 `50  `), script of title Japanese (34-35 `da`).
CODED_DATA = "20261207u        em y0chiy50      da"
LEADER = "00000nam0 2200000   450 "
WRITTEN_BY_US = "本记录由 libgate 为测试编写，仅含题名与责任者 (written by libgate for tests)"

LIBRARY = "上海图书馆"
STACKS = "日文书库"
LENDING = "普通外借资料"
ON_SHELF = "归还"
# Barcodes after the Japanese catalogue's and its increments' (…0001 to …0014).
FIRST_BARCODE = 54130000000101


@dataclass(frozen=True)
class Written:
    control: str
    title: str
    responsibility: str  # 200 $f as transcribed
    name: str  # the access point
    corporate: bool = False  # 710 (corporate body) rather than 700 (person)


RECORDS = (
    Written("LGJR00000001", "吾輩は猫である", "夏目漱石 著", "夏目漱石"),
    Written("LGJR00000002", "こころ", "夏目漱石 著", "夏目漱石"),
    Written("LGJR00000003", "硝子戸の中", "夏目漱石 著", "夏目漱石"),
    Written("LGJR00000004", "坊っちゃん", "夏目漱石 著", "夏目漱石"),
    Written(
        "LGJR00000005", "図書館情報学概論", "図書館情報学研究会 編", "図書館情報学研究会", True
    ),
    Written("LGJR00000006", "図書館の歴史", "図書館史研究会 編", "図書館史研究会", True),
    Written("LGJR00000007", "ガラスの仮面", "美内すずえ 作", "美内すずえ"),
    Written("LGJR00000008", "カラスの親子", "動物絵本研究会 編", "動物絵本研究会", True),
    Written("LGJR00000009", "羅生門", "芥川龍之介 著", "芥川龍之介"),
    Written("LGJR00000010", "雪国", "川端康成 著", "川端康成"),
    Written("LGJR00000011", "人間失格", "太宰治 著", "太宰治"),
)


def record(written: Written, barcode: str) -> MarcRecord:
    name_field = (
        Field("710", "02", [("a", written.name), ("4", "编")])
        if written.corporate
        else Field("700", " 0", [("a", written.name), ("4", "著")])
    )
    fields = [
        Field("001", value=written.control),
        Field("100", "  ", [("a", CODED_DATA)]),
        Field("101", "0 ", [("a", "jpn")]),
        Field("200", "1 ", [("a", written.title), ("f", written.responsibility)]),
        Field("300", "  ", [("a", WRITTEN_BY_US)]),
        name_field,
        Field(
            "995",
            "  ",
            [
                ("b", LIBRARY),
                ("e", STACKS),
                ("k", f"J/R{written.control[-2:]}"),
                ("r", LENDING),
                ("s", ON_SHELF),
                ("f", barcode),
            ],
        ),
    ]
    return MarcRecord(LEADER, fields)


def build() -> bytes:
    records = [record(w, str(FIRST_BARCODE + n)) for n, w in enumerate(RECORDS)]
    return b"".join(to_iso2709(canonical(r, "unimarc"), "unimarc") for r in records)


def main() -> None:
    OUT.write_bytes(build())
    for n, written in enumerate(RECORDS):
        print(f"{written.control}\t{written.title}\t{written.name}\t{FIRST_BARCODE + n}")


if __name__ == "__main__":
    main()
