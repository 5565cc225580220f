"""Union search's merge, rank and facets over records as targets send them: the same work from
several libraries is one result; editions with their own ISBNs stay apart; traditional and
simplified, full- and half-width titles meet; relevance puts the known item first."""

from __future__ import annotations

from marc.bibliographic import BibRecord, Name
from union.merge import SourceRecord, facets, merge, rank, work_key


def bib(
    title: str,
    author: str = "",
    year: int | None = None,
    isbns: tuple[str, ...] = (),
    **more: object,
) -> BibRecord:
    names = (Name(author),) if author else ()
    return BibRecord(
        format="unimarc",
        title=title,
        names=names,
        year=year,
        isbns=isbns,
        **more,  # type: ignore[arg-type]
    )


def source(target: str, record_id: str, record: BibRecord, position: int = 0) -> SourceRecord:
    return SourceRecord(target, record_id, position, record)


def test_the_same_isbn_written_two_ways_is_one_work() -> None:
    merged = merge(
        [
            source("北京大学", "1", bib("剑桥中国明代史", "牟复礼", 1992, ("7-5004-1148-0",))),
            source("清华大学", "9", bib("剑桥中国明代史", "牟复礼", 1992, ("978-7-5004-1148-2",))),
        ]
    )
    assert len(merged) == 1
    assert merged[0].targets == ["北京大学", "清华大学"]
    assert merged[0].key == "isbn:9787500411482"


def test_traditional_and_simplified_titles_without_isbn_meet() -> None:
    merged = merge(
        [
            source("上海图书馆", "a", bib("剑桥中国明代史", "牟复礼", 1992)),
            source("台湾图书馆", "b", bib("劍橋中國明代史", "牟復禮", 1992)),
            source("东京", "c", bib("ＡＢＣ入門", "山田", 2001)),
            source("大阪", "d", bib("ABC入門", "山田", 2001)),
        ]
    )
    assert [m.targets for m in merged] == [["上海图书馆", "台湾图书馆"], ["东京", "大阪"]]
    assert work_key(merged[0].bib) == work_key(bib("劍橋中國明代史", "牟復禮", 1992))


def test_editions_with_their_own_isbns_stay_apart() -> None:
    merged = merge(
        [
            source("A", "1", bib("红楼梦", "曹雪芹", 1982, ("7-02-000220-X",))),
            source("B", "2", bib("红楼梦", "曹雪芹", 1982, ("9787020115198",))),
            source("C", "3", bib("红楼梦", "曹雪芹", 1982)),  # no number: joins the first
        ]
    )
    assert [m.targets for m in merged] == [["A", "C"], ["B"]]


def test_different_years_or_authors_are_different_works() -> None:
    merged = merge(
        [
            source("A", "1", bib("中国通史", "吕思勉", 1992)),
            source("B", "2", bib("中国通史", "吕思勉", 2008)),
            source("C", "3", bib("中国通史", "范文澜", 1992)),
        ]
    )
    assert len(merged) == 3


def test_the_fullest_record_is_shown() -> None:
    thin = bib("万历十五年", "黄仁宇", 1997)
    full = bib(
        "万历十五年",
        "黄仁宇",
        1997,
        publisher="生活·读书·新知三联书店",
        subjects=("中国历史 -- 明代",),
        extent="246页",
    )
    [merged] = merge([source("A", "1", thin), source("B", "2", full)])
    assert merged.bib is full and merged.targets == ["A", "B"]


def test_relevance_puts_the_exact_title_first_and_title_over_subject() -> None:
    merged = merge(
        [
            source("A", "1", bib("明代政治史", "张显清", 2003, subjects=("明史",)), 0),
            source("A", "2", bib("中国通史", "某人", 2000, subjects=("明代",)), 1),
            source("B", "3", bib("明代", "某人", 2010), 0),
        ]
    )
    ranked = rank(merged, "明代")
    assert [r.bib.title for r in ranked] == ["明代", "明代政治史", "中国通史"]


def test_sorting_by_title_author_and_year() -> None:
    merged = merge(
        [
            source("A", "1", bib("Zebra", "Young", 1990)),
            source("A", "2", bib("Apple", "Xavier", 2020)),
            source("A", "3", bib("Mango", "Abel", 2005)),
        ]
    )
    assert [r.bib.title for r in rank(merged, "", "title")] == ["Apple", "Mango", "Zebra"]
    assert [r.bib.title for r in rank(merged, "", "author")] == ["Mango", "Apple", "Zebra"]
    assert [r.bib.title for r in rank(merged, "", "year")] == ["Apple", "Mango", "Zebra"]


def test_facets_count_libraries_years_and_languages() -> None:
    merged = merge(
        [
            source("北京大学", "1", bib("书一", "甲", 2001, languages=("chi",))),
            source("清华大学", "2", bib("书一", "甲", 2001, languages=("chi",))),
            source("北京大学", "3", bib("本二", "乙", 2001, languages=("jpn",))),
        ]
    )
    found = facets(merged)
    assert found["library"] == [("北京大学", 2), ("清华大学", 1)]
    assert found["year"] == [("2001", 2)]
    assert sorted(found["language"]) == [("chi", 1), ("jpn", 1)]
