"""CJK word spaces in MARC21 records (issue 17): LC, OCLC and RLIN catalogue Chinese and
Japanese spaced by romanised word (`鲁 迅 与 浙东 文化`); the index closes those spaces, so 鲁迅,
金田一京助 and 半田市誌 find the real records of fixtures/marc/rlin_spaced/, and a query typed
with the spaces finds them too. What is displayed and stored stays as catalogued; CNMARC
records, Latin text, hangul and readers' multi-word queries are read as before. On both
engines."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.catalogue.indexes import index_document, searched_form, token_stream
from gateway.catalogue.loading.loader import Loader, LoadOptions
from gateway.catalogue.model import BibRecord, Name
from gateway.catalogue.repository import find_record, records_for_retrieval
from gateway.catalogue.search import browse, search
from gateway.circulation.policy import Policy
from gateway.config import BUILTIN_PROFILES, DatabaseSettings, Settings
from gateway.cql.free_text import read_query
from gateway.store import Store
from marc.iso2709 import frame_records
from marc.text import close_cjk_word_gaps
from tests.conftest import FIXTURES
from tests.support import cnmarc, iso

RULE = Policy.from_settings(Settings()).availability
LIBGATE = next(p for p in BUILTIN_PROFILES if p.name == "libgate")
SPACED = FIXTURES / "marc" / "rlin_spaced" / "rlin_spaced_cjk.mrc"
REAL = FIXTURES / "marc" / "real" / "cjk"
# (source file in fixtures/marc/real/cjk, record number there), in the fixture's order: the
# table of fixtures/marc/rlin_spaced/PROVENANCE.md
SOURCES = [
    ("marccharset_cjk3.marc", 1),
    ("marccharset_cjk1.marc", 1),
    ("yaz_marccol1.u8.marc", 1),
    ("yaz_marccol1.u8.marc", 10),
    ("marc4j_pride-and-prejudice-fixed.mrc", 316),
    ("marc4j_pride-and-prejudice-fixed.mrc", 320),
    ("marccharset_cjk4.marc", 1),
    ("marc4j_pride-and-prejudice-fixed.mrc", 1),
]
LU_XUN = "DCLP02-B5315"  # 880: 鲁  迅  与  浙东  文化 (LC via RLIN, MARC-8)
KINDAICHI = "MIUO02-B3220"  # 880: 金田一 京助 と アイヌ語 (LC via RLIN, MARC-8)
HANDA = "70813420 /AJ/r86"  # 880: 半田 市誌 (LC, UTF-8)
SONG_SHI = "86119726"  # 880: 簡明　宋　史 (U+3000 between words)
SENSE_SPACED = "5305237"  # 880: 理智　与　情感 (HKUST, RLIN)
SENSE_PLAIN = "003669697"  # 880: 理智与情感, not spaced (CVU)
KOREAN = "DCLP93-B19229"  # 490: 한글　대장경
AUSTEN = "UkOxUb10768856"  # Latin only
MING = "Z-MING"  # an ordinary CNMARC record: its words apart in the title


def _framed(path: Path) -> list[bytes]:
    with path.open("rb") as stream:
        return [chunk.data for chunk in frame_records(stream)]


def test_the_fixture_records_are_byte_for_byte_the_real_ones() -> None:
    copied = _framed(SPACED)
    assert len(copied) == len(SOURCES)
    for data, (name, number) in zip(copied, SOURCES, strict=True):
        assert data == _framed(REAL / name)[number - 1], (name, number)


# --- the rule --------------------------------------------------------------------------------


def test_word_gaps_between_cjk_characters_close() -> None:
    assert close_cjk_word_gaps("鲁  迅  与  浙东  文化 /") == "鲁迅与浙东文化 /"
    assert close_cjk_word_gaps("金田一 京助 と アイヌ語") == "金田一京助とアイヌ語"
    assert close_cjk_word_gaps("簡明\u3000宋\u3000史") == "簡明宋史"
    assert close_cjk_word_gaps("周　宝珠, 陈　振　主编") == "周宝珠, 陈振主编"
    assert close_cjk_word_gaps("第 1版") == "第1版"
    assert close_cjk_word_gaps("昭和 43-<59> [1968-<1984>") == "昭和43-<59> [1968-<1984>"


def test_latin_hangul_and_punctuation_keep_their_spaces() -> None:
    for text in (
        "Lu Xun yu Zhe dong wen hua",
        "Complete novels of Jane Austen",
        "한글 대장경",
        "한글\u3000대장경",
        "鲁迅, 1881-1936",
        "Sense and sensibility / 理智",
        "1999 2000",
    ):
        assert close_cjk_word_gaps(text) == text
    assert close_cjk_word_gaps("Sense 理智 与 情感 and") == "Sense 理智与情感 and"


def test_only_marc21_records_are_searched_closed() -> None:
    spaced = BibRecord(
        format="marc21",
        title="鲁 迅 与 浙东 文化",
        other_titles=("Lu Xun yu Zhe dong wen hua",),
        responsibility=("陈 方竞 著",),
        publisher="吉林 大学 出版社",
        series=("东北 学人 现代 文学 硏究 丛书",),
        names=(Name("陈 方竞"), Name("Chen, Fangjing")),
    )
    searched = searched_form(spaced)
    assert searched.title == "鲁迅与浙东文化"
    assert searched.other_titles == ("Lu Xun yu Zhe dong wen hua",)  # Latin untouched
    assert searched.responsibility == ("陈方竞著",)
    assert searched.publisher == "吉林大学出版社"
    assert searched.series == ("东北学人现代文学硏究丛书",)
    assert [n.name for n in searched.names] == ["陈方竞", "Chen, Fangjing"]
    # The index reads the closed form; what is displayed (the record) is not changed.
    assert "鲁迅" in index_document(spaced).keyword["title"].split()
    assert spaced.title == "鲁 迅 与 浙东 文化"
    # A CNMARC record is indexed as catalogued, spaces and all: no bigram across its gap.
    cnmarc_bib = BibRecord(format="unimarc", title="明代 政治史")
    assert searched_form(cnmarc_bib) is cnmarc_bib
    assert "代政" not in index_document(cnmarc_bib).keyword["title"].split()
    # A MARC21 record without such spaces has the same index document as before.
    plain = BibRecord(format="marc21", title="理智与情感", other_titles=("Li zhi yu qing gan",))
    assert searched_form(plain) == plain
    assert index_document(plain).keyword["title"] == " ".join(
        token_stream(["理智与情感", "Li zhi yu qing gan"])
    )


# --- loaded, searched, shown: both engines ----------------------------------------------------


@pytest.fixture
def catalogue(store: Store, tmp_path: Path) -> Store:
    main = LoadOptions(database=DatabaseSettings(name="main"), profile=LIBGATE)
    report = Loader(store, main).load([SPACED])
    assert [(f.loaded, f.rejected) for f in report.files] == [(len(SOURCES), 0)]
    ordinary = tmp_path / "ordinary.iso"
    ordinary.write_bytes(iso(cnmarc(MING, "明代的政治制度"), cnmarc("Z-OTHER", "政治学概论")))
    Loader(store, main).load([ordinary])
    return store


def ranked(store: Store, text: str) -> list[str]:
    result = search(store, read_query(text).query, "main", availability=RULE, limit=50)
    return [hit.record_id for hit in result.hits]


def test_the_issues_queries_find_the_spaced_records(catalogue: Store) -> None:
    for typed, expected in [
        ("鲁迅", LU_XUN),
        ("鲁迅与浙东文化", LU_XUN),
        ("浙东文化", LU_XUN),
        ("金田一京助", KINDAICHI),
        ("金田一京助とアイヌ語", KINDAICHI),
        ("半田市誌", HANDA),
        ("半田市志", HANDA),  # simplified typed for the Japanese form, as elsewhere
        ("簡明宋史", SONG_SHI),
        ("简明宋史", SONG_SHI),
        ("陈方竞", LU_XUN),  # the 880 name
        ("author=陈方竞", LU_XUN),
    ]:
        assert ranked(catalogue, typed) == [expected], typed


def test_a_query_typed_with_the_spaces_finds_them_as_the_closed_one_does(
    catalogue: Store,
) -> None:
    for typed, expected in [
        ("鲁 迅", LU_XUN),
        ("鲁 迅 与 浙东 文化", LU_XUN),
        ('"鲁 迅 与 浙东 文化"', LU_XUN),
        ("金田一 京助", KINDAICHI),
        ('"金田一 京助"', KINDAICHI),
        ("半田 市誌", HANDA),
        ("簡明\u3000宋\u3000史", SONG_SHI),
    ]:
        assert ranked(catalogue, typed) == [expected], typed
    # The whole title, as the LC record shows it or as it is written.
    for typed in (
        "title==鲁迅与浙东文化",
        'title=="鲁 迅 与 浙东 文化"',
        'title=="鲁迅与浙东文化"',
    ):
        assert ranked(catalogue, typed) == [LU_XUN], typed


def test_the_spaced_and_the_plain_record_of_one_work_meet(catalogue: Store) -> None:
    for typed in ("理智与情感", "理智 与 情感", '"理智 与 情感"'):
        assert set(ranked(catalogue, typed)) == {SENSE_SPACED, SENSE_PLAIN}, typed


def test_display_and_stored_marc_keep_what_was_catalogued(catalogue: Store) -> None:
    result = search(catalogue, read_query("鲁迅").query, "main", availability=RULE)
    assert [hit.title for hit in result.hits] == ["鲁 迅 与 浙东 文化"]
    with catalogue.read() as tx:
        stored = find_record(tx, "main", LU_XUN)
        assert stored is not None
        retrieved = records_for_retrieval(tx, [stored.pk])[stored.pk]
    assert "鲁  迅  与  浙东  文化".encode() in retrieved.marc  # the 880 as catalogued
    assert BibRecord.from_json(retrieved.bib_json).title == "鲁 迅 与 浙东 文化"
    # Browse lists the heading as catalogued, filed where 鲁迅 files.
    assert [e.heading for e in browse(catalogue, "main", "title", "鲁迅", count=1)] == [
        "鲁 迅 与 浙东 文化"
    ]
    assert [e.heading for e in browse(catalogue, "main", "author", "陈方竞", count=1)] == [
        "陈 方竞"
    ]


def test_latin_and_hangul_are_searched_as_before(catalogue: Store) -> None:
    assert ranked(catalogue, "Zhe dong wen hua") == [LU_XUN]
    assert ranked(catalogue, "Kindaichi Kyosuke") == [KINDAICHI]
    assert ranked(catalogue, "Handa shishi") == [HANDA]
    assert ranked(catalogue, "Complete novels Austen") == [AUSTEN]
    assert ranked(catalogue, "한글 대장경") == [KOREAN]
    assert ranked(catalogue, "한글대장경") == []  # Korean's word spaces are real


def test_readers_words_apart_are_still_all_words_not_one_phrase(catalogue: Store) -> None:
    # 明代 政治: both words, anywhere in the record (明代的政治制度), as before.
    assert ranked(catalogue, "明代 政治") == [MING]
    assert ranked(catalogue, '"明代政治"') == []
    assert set(ranked(catalogue, "政治")) == {MING, "Z-OTHER"}
    # 鲁 迅 alone is the two characters, found in the spaced record and ranked as 鲁迅.
    assert ranked(catalogue, "鲁 迅")[:1] == ranked(catalogue, "鲁迅")[:1] == [LU_XUN]
