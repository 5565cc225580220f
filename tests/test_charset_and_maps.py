"""Character sets per record, and the CNMARC/UNIMARC and MARC21 field maps, on real records."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway.catalogue.loading.prepare import Prepared, prepare_chunk
from marc import charset
from marc.errors import RecordRejected
from marc.holdings import HoldingsProfile, items_from_record
from marc.iso2709 import frame_records, parse_structure
from tests.conftest import REAL
from tests.support import BNU_PROFILE, LIBGATE_PROFILE, cnmarc, encoded_gb18030


def prepared(path: Path, profile=LIBGATE_PROFILE, encoding: str = "auto") -> list[Prepared | str]:
    results: list[Prepared | str] = []
    with path.open("rb") as handle:
        for chunk in frame_records(handle):
            try:
                results.append(prepare_chunk(chunk, "auto", encoding, profile))
            except RecordRejected as rejected:
                results.append(rejected.reason)
    return results


def only_prepared(path: Path, **kwargs) -> list[Prepared]:
    results = prepared(path, **kwargs)
    ready = [r for r in results if isinstance(r, Prepared)]
    assert len(ready) == len(results), [r for r in results if isinstance(r, str)]
    return ready


def test_real_cnmarc_utf8_maps_chinese_fields() -> None:
    records = only_prepared(REAL / "cnmarc" / "bnu_cnmarc_10_utf8.iso", profile=BNU_PROFILE)
    assert len(records) == 10
    first = records[0]
    bib = first.mapped.bib
    assert first.encoding == "utf-8"
    assert first.record_id == "990002180740203961"
    assert bib.format == "unimarc"
    assert bib.title == "'94中国发展报告"
    assert bib.title_pinyin == "'94Zhong Guo Fa Zhan Bao Gao"
    assert bib.responsibility == ("国家统计局编",)
    assert bib.publisher == "中国统计出版社"
    assert bib.place == "北京"
    assert bib.year == 1994
    assert bib.isbns == ("9787503717444",)  # 7-5037-1744-0 as ISBN-13
    assert bib.clc == ("F124",)
    assert bib.languages == ("chi",)
    assert "经济发展 -- 概况 -- 中国 -- 1994" in bib.subjects
    names = {(n.name, n.role, n.pinyin) for n in bib.names}
    assert ("叶震", "主编", "Xie Zhen") in names
    assert any(n.kind == "meeting" or n.name == "国家统计局" for n in bib.names)
    # BNU copies: one 906 per copy, barcode $b, call number from 905$s, library from 905$a.
    assert [i.barcode for i in first.mapped.items] == ["1683011", "1683012", "1683013"]
    assert {i.call_number for i in first.mapped.items} == {"F124/26"}
    assert {i.library for i in first.mapped.items} == {"BNU"}
    assert {i.status for i in first.mapped.items} == {"归还"}


def test_gbk_file_reads_as_the_utf8_file_does() -> None:
    utf8 = only_prepared(REAL / "cnmarc" / "bnu_cnmarc_10_utf8.iso")
    gbk = only_prepared(REAL / "cnmarc" / "bnu_cnmarc_10_gbk.iso")
    assert {r.encoding for r in gbk} == {"gb18030"}
    assert [r.mapped.bib for r in gbk] == [r.mapped.bib for r in utf8]
    # Stored bytes are UTF-8 either way: the same canonical record.
    assert [r.mapped.marc for r in gbk] == [r.mapped.marc for r in utf8]


def test_declared_utf8_but_gb_bytes_is_detected_and_noted() -> None:
    record = cnmarc("G1", "吾輩は猫である〜", charset="50  ")
    data = encoded_gb18030(record) + b""
    raw = parse_structure(next(iter(frame_records(io.BytesIO(data)))))
    decision = charset.decide(raw, True)
    assert decision.encoding == "gb18030"
    assert decision.note and "'50  '" in decision.note


def test_gb18030_only_characters_survive() -> None:
    # 〜 (U+301C) and half-width katakana are not in GBK: decoding as GBK would lose them.
    record = cnmarc("G2", "ｶﾞﾗｽの仮面〜第1巻", charset="0120")
    chunk = next(iter(frame_records(io.BytesIO(encoded_gb18030(record)))))
    result = prepare_chunk(chunk, "auto", "auto", LIBGATE_PROFILE)
    assert result.encoding == "gb18030"
    assert result.mapped.bib.title == "ｶﾞﾗｽの仮面〜第1巻"


def test_unimarc_utf8_with_blank_leader09_is_not_read_as_marc8() -> None:
    records = only_prepared(REAL / "unimarc" / "marc4s_rusmarc_utf8_galsworthy.iso")
    assert {r.encoding for r in records} == {"utf-8"}
    assert any("Конец главы" in r.mapped.bib.title for r in records)


def test_cp1251_needs_an_override_and_says_so() -> None:
    results = prepared(REAL / "unimarc" / "rusmarc_TEST1_cp1251.iso")
    assert all(isinstance(r, str) and "--encoding" in r for r in results)
    fixed = only_prepared(REAL / "unimarc" / "rusmarc_TEST1_cp1251.iso", encoding="cp1251")
    assert len(fixed) == 81
    assert any("Задачи и этюды" in r.mapped.bib.title for r in fixed)


def test_double_encoded_utf8_is_repaired_and_noted() -> None:
    records = only_prepared(REAL / "unimarc" / "qacat_short.bnr.1993.mrc")
    titles = [r.mapped.bib.title for r in records]
    assert any(t.endswith("cu părintele Stăniloae") for t in titles)
    assert not any("Å" in t for t in titles)
    assert any("double-encoded" in w.message for r in records for w in r.mapped.warnings)


def test_unimarc_non_sorting_marks_and_embedded_series() -> None:
    (record,) = only_prepared(REAL / "unimarc" / "pymarc_testunimarc.dat")
    bib = record.mapped.bib
    assert bib.title.startswith("L'altra faccia")
    assert "\x88" not in bib.title and "\x89" not in bib.title
    assert "Bestsellers" in bib.series  # from 410 $1 2001 $a Bestsellers


def test_marc21_japanese_vernacular_title_is_the_title() -> None:
    records = only_prepared(REAL / "cjk" / "yaz_marccol1.u8.marc")
    titles = [r.mapped.bib.title for r in records]
    assert any(t.startswith("半田") for t in titles)
    handa = next(r.mapped.bib for r in records if r.mapped.bib.title.startswith("半田"))
    assert handa.format == "marc21"
    assert any(not any("\u3040" <= ch <= "\u9fff" for ch in t) for t in handa.other_titles)


def test_marc8_eacc_japanese_is_decoded() -> None:
    (record,) = only_prepared(REAL / "cjk" / "marccharset_cjk1.marc")
    assert record.encoding == "marc-8"
    assert "金田一" in record.mapped.bib.title.replace(" ", "")


def test_utf8_content_behind_a_blank_leader09_is_detected() -> None:
    records = prepared(REAL / "large" / "catmandu_bu_bibs.mrc")
    assert len(records) == 100
    good = [r for r in records if isinstance(r, Prepared)]
    assert len(good) == 100
    noted = [r for r in good if r.encoding_note]
    assert noted and all("UTF-8" in (r.encoding_note or "") for r in noted)


def test_marc21_leader09_a_with_invalid_utf8_is_rejected_with_the_field() -> None:
    results = prepared(REAL / "malformed" / "pymarc_utf8_invalid.mrc")
    assert isinstance(results[0], str)
    assert "field 260" in results[0]


def test_missing_title_is_rejected() -> None:
    record = cnmarc("T1", "")
    from tests.support import iso

    chunk = next(iter(frame_records(io.BytesIO(iso(record)))))
    with pytest.raises(RecordRejected, match="200 \\$a"):
        prepare_chunk(chunk, "auto", "auto", LIBGATE_PROFILE)


def test_encoding_names() -> None:
    assert charset.normalise_encoding_name("GBK") == "gb18030"
    assert charset.normalise_encoding_name("auto") == "auto"
    assert charset.normalise_encoding_name("MARC8") == "marc-8"
    assert charset.normalise_encoding_name("cp1251") == "cp1251"
    with pytest.raises(ValueError, match="unknown character encoding"):
        charset.normalise_encoding_name("klingon")


def test_a_copy_without_a_status_word_gets_the_word_it_is_given() -> None:
    record = cnmarc("S1", "无状态", barcodes=("S0001",))
    no_status = HoldingsProfile(name="t", item_tag="995", barcode=("{$f}",))
    items, _warnings = items_from_record(record, no_status, "在架")
    assert [item.status for item in items] == ["在架"]
    own_default = HoldingsProfile(
        name="t", item_tag="995", barcode=("{$f}",), default_status="新书"
    )
    assert [item.status for item in items_from_record(record, own_default, "在架")[0]] == ["新书"]
