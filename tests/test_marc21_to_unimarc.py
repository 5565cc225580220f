"""MARC21 → CNMARC conversion on real Japanese records, and the Japanese catalogue fixture."""

from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import sys
import unicodedata
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest

from gateway.catalogue.loading.prepare import Prepared, prepare_chunk
from marc import charset
from marc.errors import RecordRejected
from marc.iso2709 import frame_records, parse_structure
from marc.marc21_to_unimarc import convert, has_kana, is_japanese, price, tidy
from marc.record import Field, MarcRecord
from tests.conftest import FIXTURES, REAL
from tests.support import LIBGATE_PROFILE

JAPANESE = FIXTURES / "marc" / "japanese"
CATALOGUE = JAPANESE / "japanese_cnmarc.iso"
CATALOGUE_GB18030 = JAPANESE / "japanese_cnmarc_gb18030.iso"
INCREMENT_1 = JAPANESE / "japanese_increment_1.iso"
INCREMENT_2 = JAPANESE / "japanese_increment_2.iso"
SCRIPT = FIXTURES.parent / "scripts" / "make_japanese_fixture.py"
CONVERTED_ON = date(2026, 11, 25)

CATALOGUE_TITLES = [
    "半田市誌",
    "金田一京助とアイヌ語",
    "式子内親王集全釈",
    "自負と偏見",
    "Pride and prejudice",
    "Engineering",
    "タイトル",
    "タイトル",
]
# Every tag `convert` may write; anything else would be a MARC21 tag leaking through.
UNIMARC_TAGS = {
    "001", "005", "010", "011", "035", "100", "101", "102", "200", "205", "207", "210", "215",
    "225", "300", "302", "320", "326", "327", "330", "430", "432", "440", "442", "500", "510",
    "517", "600", "601", "606", "607", "608", "610", "660", "676", "680", "686", "690", "700",
    "701", "702", "710", "711", "801", "856",
}  # fmt: skip


def marc21_records(path: Path) -> list[MarcRecord]:
    """A MARC21 file decoded the way the loader decodes it (MARC-8 EACC included)."""
    records = []
    with path.open("rb") as handle:
        for chunk in frame_records(handle):
            raw = parse_structure(chunk)
            record, _ = charset.decode_record(raw, charset.decide(raw, is_unimarc=False))
            records.append(record)
    return records


def nfc(text: str | None) -> str:
    return unicodedata.normalize("NFC", text or "")


def field(record: MarcRecord, tag: str) -> Field:
    found = record.first(tag)
    assert found is not None, f"no {tag} in {[f.tag for f in record.fields]}"
    return found


def prepared(path: Path) -> list[Prepared]:
    results: list[Prepared] = []
    rejects: list[str] = []
    with path.open("rb") as handle:
        for chunk in frame_records(handle):
            try:
                results.append(prepare_chunk(chunk, "auto", "auto", LIBGATE_PROFILE))
            except RecordRejected as rejected:
                rejects.append(rejected.reason)
    assert rejects == []
    return results


def fixture_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_japanese_fixture", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


# --- the conversion, on real records --------------------------------------------------------


@pytest.fixture(scope="module")
def kindaichi() -> MarcRecord:
    """LC record in MARC-8 EACC: 金田一京助とアイヌ語 (Sanʼichi Shobō, 2001)."""
    (record,) = marc21_records(REAL / "cjk" / "marccharset_cjk1.marc")
    return convert(record, CONVERTED_ON)


def test_vernacular_880_title_with_romanisation_as_parallel(kindaichi: MarcRecord) -> None:
    title = field(kindaichi, "200")
    assert title.indicators == "1 "
    # RLIN spaced the 880 by romanised words (金田一 京助 と アイヌ語); CNMARC has no spaces.
    assert nfc(title.get("a")) == "金田一京助とアイヌ語"
    assert nfc(title.get("f")) == "大友幸男"
    assert nfc(title.get("A")) == "Kindaichi Kyōsuke to Ainugo"
    assert nfc(title.get("F")) == "Ōtomo Yukio"
    assert [c for c, _ in title.subfields] == ["a", "f", "A", "F"]


def test_main_entry_becomes_700_in_direct_order(kindaichi: MarcRecord) -> None:
    author = field(kindaichi, "700")
    assert author.indicators == " 0"
    assert nfc(author.get("a")) == "大正十三造"
    assert author.get("f") == "1924-"
    assert nfc(author.get("A")) == "Taishō, Tomizō"
    subject = field(kindaichi, "600")
    assert nfc(subject.get("a")) == "金田一京助"
    assert subject.get("2") == "lcsh"


def test_publication_edition_and_extent(kindaichi: MarcRecord) -> None:
    publication = field(kindaichi, "210")
    assert [(c, nfc(v)) for c, v in publication.subfields] == [
        ("a", "東京"),
        ("c", "三一書房"),
        ("d", "2001"),
    ]
    assert nfc(field(kindaichi, "205").get("a")) == "第1版"
    physical = field(kindaichi, "215")
    assert physical.subfields == [("a", "244 p."), ("d", "20 cm")]  # `p.` keeps its stop


def test_coded_data_100(kindaichi: MarcRecord) -> None:
    coded = field(kindaichi, "100").get("a") or ""
    assert len(coded) == 36
    assert coded[:9] == "20020617d"  # 008/00-05 entered 020617; single date
    assert coded[9:17] == "2001    "
    assert coded[20:22] == "y0"  # not a government publication; not modified
    assert coded[22:25] == "eng"  # catalogued by LC (DLC-R): notes are in English
    assert coded[25] == "b"  # romanised by ALA-LC rules, not ISO
    assert coded[26:30] == "50  "
    assert coded[34:36] == "da"  # title in Japanese script
    assert field(kindaichi, "101").get_all("a") == ["jpn"]
    assert field(kindaichi, "102").get("a") == "JP"
    assert field(kindaichi, "010").subfields == [("a", "4380012115")]
    assert field(kindaichi, "801").subfields == [("a", "US"), ("b", "DLC-R"), ("c", "20020617")]


def test_leader_is_unimarc(kindaichi: MarcRecord) -> None:
    assert kindaichi.leader[5:8] == "cam"  # MARC21 status c, language material, monograph
    assert kindaichi.leader[9] == " "
    assert kindaichi.leader[20:24] == "450 "


def test_handa_shishi_multipart_dates_and_vernacular_place() -> None:
    source = marc21_records(REAL / "cjk" / "yaz_marccol1.u8.marc")[0]
    record = convert(source, CONVERTED_ON)
    assert record.control("001") == "70813420 /AJ/r86"
    assert field(record, "200").subfields == [("a", "半田市誌"), ("A", "Handa shishi")]
    publication = field(record, "210")
    assert publication.get("a") == "[半田市]"
    assert publication.get("c") == "半田市"
    coded = field(record, "100").get("a") or ""
    assert coded[8:17] == "g19689999"  # published over several years, still open
    assert coded[20] == "d"  # a local government publication (008/28 l)
    places = record.get_fields("607")
    assert [p.get("a") for p in places] == ["半田市 (Japan)", "半田市 (Japan)"]
    assert places[1].get_all("x") == ["History", "Sources"]


def test_full_width_isbd_punctuation_is_removed() -> None:
    (source,) = marc21_records(REAL / "cjk" / "marccharset_cjk2.marc")
    record = convert(source, CONVERTED_ON)
    publication = field(record, "210")
    assert [nfc(v) for _, v in publication.subfields] == ["東京", "風間書房", "2001"]
    series = field(record, "225")
    assert series.indicators == "2 "
    assert nfc(series.get("a")) == "私家集全釈叢書"
    assert series.get("v") == "28"


def test_local_script_groups_use_the_script_form_and_drop_the_kana_reading() -> None:
    """marc4j record 304 repeats 245/260/440/700 with $8 11 (script), 12 (kana), 13 (rōmaji)."""
    source = marc21_records(REAL / "cjk" / "marc4j_pride-and-prejudice-fixed.mrc")[303]
    record = convert(source, CONVERTED_ON)
    title = field(record, "200")
    assert title.get("a") == "自負と偏見"
    assert title.get("g") == "中野好夫 訳"
    assert title.get("A") == "jifu to henken"
    assert len(record.get_fields("200")) == 1
    assert "ジフ ト ヘンケン" not in str(record.fields)
    assert field(record, "101").subfields == [("a", "jpn"), ("c", "eng")]
    assert field(record, "101").indicators == "1 "  # a translation
    assert field(record, "686").subfields == [("a", "933.6"), ("2", "njb/9")]  # NDC
    names = [(n.get("a"), n.get("A")) for n in record.get_fields("701")]
    assert names == [("Austen", None), ("中野好夫", "nakano, yoshio")]


def test_isbn_normalisation_and_yen_price() -> None:
    source = MarcRecord(
        "00000nam a2200000 a 4500",
        [
            Field("008", value="020617s2001    ja            000 0 jpn  "),
            Field("020", "  ", [("a", "4-380-01211-5 (pbk.)"), ("c", "2,000円")]),
            Field("020", "  ", [("a", "4-380-01211-0")]),  # wrong check digit
            Field("245", "10", [("a", "Test.")]),
        ],
    )
    first, second = convert(source, CONVERTED_ON).get_fields("010")
    assert first.subfields == [("a", "4380012115"), ("b", "pbk"), ("d", "JPY2000")]
    assert second.subfields == [("z", "4380012110")]
    assert price("2000円") == "JPY2000"
    assert price("¥1,500") == "JPY1500"
    assert price("¥45.00", yen_sign="CNY") == "CNY45.00"  # ¥ is also the yuan sign
    assert price("$12.95") == "USD12.95"
    assert price("非売品") == "非売品"


def test_synthetic_ndl_record_price_only_020() -> None:
    first, _ = marc21_records(REAL / "cjk" / "jpmarc_test_synthetic_ndl.mrc")
    record = convert(first, CONVERTED_ON)
    assert field(record, "010").subfields == [("d", "JPY2000"), ("z", "978-4-123456-01-0")]
    assert field(record, "200").subfields == [
        ("a", "タイトル"),
        ("e", "関連情報"),
        ("f", "山田太郎 著"),
    ]
    assert field(record, "801").subfields == [("a", "JP"), ("b", "JTNDL"), ("c", "20170209")]
    assert (field(record, "100").get("a") or "")[22:25] == "jpn"


def test_unmapped_fields_are_dropped() -> None:
    sources = [
        *marc21_records(REAL / "cjk" / "yaz_marccol1.u8.marc"),
        *marc21_records(REAL / "cjk" / "marccharset_cjk1.marc"),
        *marc21_records(REAL / "cjk" / "marccharset_cjk2.marc"),
        *marc21_records(REAL / "large" / "mrrc-testbed_loc_bib_sample.mrc")[200:230],
    ]
    for source in sources:
        record = convert(source, CONVERTED_ON)
        tags = {f.tag for f in record.fields}
        assert tags <= UNIMARC_TAGS, tags - UNIMARC_TAGS
        assert record.first("200") is not None or source.first("245") is None
        assert all(f.subfields or f.value for f in record.fields)


def test_japanese_selection() -> None:
    pride = marc21_records(REAL / "cjk" / "marc4j_pride-and-prejudice-fixed.mrc")
    selected = [number for number, r in enumerate(pride, start=1) if is_japanese(r)]
    # 304 is Japanese; 305/306 are one OCLC record (English text, Japanese notes: 041 engjpn).
    # The Chinese editions, whose names use the katakana middle dot ・, are not selected.
    assert selected == [304, 305, 306]
    assert has_kana("アイヌ語") and not has_kana("简・奥斯汀")


def test_tidy() -> None:
    assert tidy("東京　：") == "東京"
    assert tidy("風間 書房，") == "風間 書房"
    assert tidy("風間 書房，", word_spaced=True) == "風間書房"
    assert tidy("昭和 43-<59>", word_spaced=True) == "昭和43-<59>"
    assert tidy("Handa shishi.") == "Handa shishi"
    assert tidy("ill. ;") == "ill."


# --- the fixture files ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalogue() -> list[Prepared]:
    return prepared(CATALOGUE)


def test_fixture_loads_as_unimarc_with_japanese_titles(catalogue: list[Prepared]) -> None:
    assert [p.mapped.bib.title for p in catalogue] == CATALOGUE_TITLES
    assert {p.mapped.format for p in catalogue} == {"unimarc"}
    assert {p.encoding for p in catalogue} == {"utf-8"}
    assert all(p.mapped.warnings == () for p in catalogue)
    japanese_script = [p for p in catalogue if charset_of(p.mapped.bib.title) == "japanese"]
    assert len(japanese_script) == 6
    by_id = {p.record_id: p.mapped.bib for p in catalogue}
    assert by_id["MIUO02-B3220"].title_pinyin == "Kindaichi Kyōsuke to Ainugo"
    assert [n.name for n in by_id["NJPX02-B1931"].names][0] == "奥野陽子 (1951-)"
    assert by_id["marc4j-pp-304"].publisher == "新潮社"
    assert by_id["11493292"].other_titles[-1] == "エンヂニアリング"


def charset_of(text: str) -> str:
    return "japanese" if any(has_kana(ch) or "\u4e00" <= ch <= "\u9fff" for ch in text) else ""


def test_fixture_copies_have_unique_library_barcodes(catalogue: list[Prepared]) -> None:
    copies = [item for p in catalogue for item in p.mapped.items]
    assert all(p.mapped.items for p in catalogue)
    barcodes = [item.barcode for item in copies]
    assert len(set(barcodes)) == len(barcodes) == 12
    assert all(len(b) == 14 and b.startswith("5413") and b.isdigit() for b in barcodes)
    assert {item.library for item in copies} == {"上海图书馆"}
    assert {item.status for item in copies} == {"归还"}
    assert {item.item_type for item in copies} == {"普通外借资料", "参考外借资料"}
    assert {item.location for item in copies} == {"日文书库", "日文参考阅览室"}


def test_gb18030_file_decodes_to_the_same_records(catalogue: list[Prepared]) -> None:
    gb = prepared(CATALOGUE_GB18030)
    assert {p.encoding for p in gb} == {"gb18030"}
    assert [p.mapped.bib for p in gb] == [p.mapped.bib for p in catalogue]
    assert [p.mapped.items for p in gb] == [p.mapped.items for p in catalogue]
    with CATALOGUE_GB18030.open("rb") as handle:
        for chunk in frame_records(handle):
            assert charset.unimarc_charset_code(parse_structure(chunk)) == "0120"
    assert "金田一京助".encode("gb18030") in CATALOGUE_GB18030.read_bytes()


def test_increments_change_two_records_and_add_one(catalogue: list[Prepared]) -> None:
    base = {p.record_id: p for p in catalogue}
    first = {p.record_id: p for p in prepared(INCREMENT_1)}
    assert set(first) == {"marc4j-pp-304", "70813420 /AJ/r86", "11493293"}
    assert "11493293" not in base
    assert first["marc4j-pp-304"].mapped.bib.responsibility[0] == "オースティン [著]"
    assert first["marc4j-pp-304"].mapped.items == base["marc4j-pp-304"].mapped.items
    handa_copies = [i.barcode for i in first["70813420 /AJ/r86"].mapped.items]
    assert handa_copies[:-1] == [i.barcode for i in base["70813420 /AJ/r86"].mapped.items]
    assert len(handa_copies) == 2
    assert all(first[k].digest != base[k].digest for k in ("marc4j-pp-304", "70813420 /AJ/r86"))

    second = {p.record_id: p for p in prepared(INCREMENT_2)}
    assert second["11493293"].digest == first["11493293"].digest  # reloads as unchanged
    statuses = [i.status for i in second["70813420 /AJ/r86"].mapped.items]
    assert statuses == ["归还", "借出"]
    assert len(second["MIUO02-B3220"].mapped.items) == 1


def test_fixture_files_match_the_generator() -> None:
    """The files are what the script makes from the sources with today's converter."""
    files = fixture_script().build().files()
    for name, data in files.items():
        assert (JAPANESE / name).read_bytes() == data, (
            f"{name} is stale: run `python scripts/make_japanese_fixture.py`"
        )


@pytest.mark.skipif(shutil.which("yaz-marcdump") is None, reason="yaz-marcdump is not installed")
def test_yaz_marcdump_reads_the_fixture() -> None:
    for path, count in ((CATALOGUE, 8), (INCREMENT_1, 3), (INCREMENT_2, 3)):
        result = subprocess.run(
            ["yaz-marcdump", str(path)], capture_output=True, check=True, timeout=60
        )
        assert result.stderr == b""
        text = result.stdout.decode("utf-8")
        leaders = [line for line in io.StringIO(text) if line[:5].isdigit()]
        assert len(leaders) == count
    assert "200 1  $a 金田一京助とアイヌ語" in subprocess.run(
        ["yaz-marcdump", str(CATALOGUE)], capture_output=True, check=True, timeout=60
    ).stdout.decode("utf-8")
