"""Known-item search on both engines: Chinese, Japanese, Latin, traditional/simplified, widths;
booleans, exact, truncation, years, sorting, browse; the planner never breaks on odd input."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.catalogue.loading.loader import Loader, LoadOptions
from gateway.catalogue.query import (
    Boolean,
    EmptyTerm,
    InvalidValue,
    Query,
    QueryError,
    QueryTooComplex,
    SortKey,
    Term,
    TermTooLong,
    UnknownIndex,
    UnsupportedRelation,
)
from gateway.catalogue.search import browse, search
from gateway.circulation.policy import Policy
from gateway.config import BUILTIN_PROFILES, DatabaseSettings, Settings
from gateway.store import Store
from tests.conftest import FIXTURES, REAL
from tests.support import cnmarc, iso

RULE = Policy.from_settings(Settings()).availability  # the default policy's R2

PROFILES = {p.name: p for p in BUILTIN_PROFILES}

# Records chosen to tell right answers from near misses.
EXTRA = [
    cnmarc("X-CAT", "吾輩は猫である", barcodes=("X1",)),
    cnmarc("X-GLASS", "ガラスの仮面", barcodes=("X2",)),
    cnmarc("X-CROW", "カラスの親子"),
    cnmarc("X-HALFWIDTH", "ｶﾞﾗｽ細工"),
    cnmarc("X-SCATTER", "明朝的历代帝王与史学"),  # has 明, 代, 史 but never 明代史 together
    cnmarc("X-TRAD", "劍橋中國晚清史"),
    cnmarc("X-FULLWIDTH", "ＰＹＴＨＯＮ编程入门"),
    cnmarc("X-ACCENT", "Éléments de géométrie"),
    cnmarc("X-INJECT", 'Say "NEAR(" -minus* and OR'),
]


@pytest.fixture
def catalogue(store: Store, tmp_path: Path) -> Store:
    extra = tmp_path / "extra.iso"
    extra.write_bytes(iso(*EXTRA))
    main = DatabaseSettings(name="main")
    for path, profile in (
        (FIXTURES / "marc" / "demo_main.iso", "libgate"),
        (REAL / "cnmarc" / "bnu_cnmarc_10_utf8.iso", "bnu"),
        (extra, "libgate"),
    ):
        Loader(store, LoadOptions(database=main, profile=PROFILES[profile])).load([path])
    japanese = DatabaseSettings(name="japanese")
    Loader(store, LoadOptions(database=japanese, profile=PROFILES["libgate"])).load(
        [_write(tmp_path / "jp.iso", iso(cnmarc("J-CAT", "吾輩は猫である（日文版）")))]
    )
    return store


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def ids(store: Store, node, database: str = "main", **kwargs) -> set[str]:
    result = search(store, Query(node), database, availability=RULE, limit=100, **kwargs)
    found = {hit.record_id for hit in result.hits}
    assert result.total == len(found)
    return found


def t(index: str, value: str, relation: str = "all", truncation: str = "none") -> Term:
    return Term(index, relation, value, truncation)


def test_a_word_inside_a_chinese_title_is_found(catalogue: Store) -> None:
    assert ids(catalogue, t("title", "历史")) == {"SHL000000004"}  # 中国历史地图集
    assert ids(catalogue, t("title", "明代史")) == {"SHL000000002"}  # 剑桥中国明代史


def test_scattered_characters_do_not_match_a_multi_character_word(catalogue: Store) -> None:
    # X-SCATTER contains 明, 代 and 史 but not the word 明代史.
    assert "X-SCATTER" not in ids(catalogue, t("title", "明代史"))
    assert "X-SCATTER" in ids(catalogue, t("title", "史学"))


def test_a_single_character_query_works(catalogue: Store) -> None:
    found = ids(catalogue, t("title", "猫"))
    assert found == {"X-CAT"}
    assert "X-SCATTER" in ids(catalogue, t("title", "史"))


def test_a_word_inside_a_japanese_title_is_found(catalogue: Store) -> None:
    assert ids(catalogue, t("title", "猫である")) == {"X-CAT"}
    assert ids(catalogue, t("title", "吾輩は猫である")) == {"X-CAT"}


def test_traditional_and_simplified_find_each_other(catalogue: Store) -> None:
    assert ids(catalogue, t("title", "劍橋")) == {"SHL000000002", "X-TRAD"}
    assert ids(catalogue, t("title", "剑桥")) == {"SHL000000002", "X-TRAD"}
    assert ids(catalogue, t("title", "晚清史")) == {"X-TRAD"}


def test_kana_are_not_folded_but_widths_are(catalogue: Store) -> None:
    assert ids(catalogue, t("title", "ガラス")) == {"X-GLASS", "X-HALFWIDTH"}  # half-width ｶﾞﾗｽ
    assert ids(catalogue, t("title", "カラス")) == {"X-CROW"}
    assert ids(catalogue, t("title", "ｶﾗｽ")) == {"X-CROW"}
    assert ids(catalogue, t("title", "python")) == {"X-FULLWIDTH"}
    assert ids(catalogue, t("title", "Ｐｙｔｈｏｎ")) == {"X-FULLWIDTH"}


def test_latin_words_case_and_diacritics_fold(catalogue: Store) -> None:
    assert ids(catalogue, t("title", "CAMBRIDGE")) == {"SHL000000001"}
    assert ids(catalogue, t("title", "elements geometrie")) == {"X-ACCENT"}
    assert ids(catalogue, t("title", "Éléments")) == {"X-ACCENT"}


def test_phrase_needs_adjacency_and_order(catalogue: Store) -> None:
    assert ids(catalogue, t("title", "history of china", "adj")) == {"SHL000000001"}
    assert ids(catalogue, t("title", "china of history", "adj")) == set()
    assert ids(catalogue, t("title", "china history", "all")) == {"SHL000000001"}


def test_any_and_all(catalogue: Store) -> None:
    assert ids(catalogue, t("title", "红楼梦 万历", "any")) == {"SHL000000003", "SHL000000005"}
    assert ids(catalogue, t("title", "红楼梦 万历", "all")) == set()


def test_fts_syntax_in_a_term_is_just_text(catalogue: Store) -> None:
    for value in [
        '"NEAR(',
        "-minus*",
        'say "near',
        "OR",
        "NOT",
        "a:b",
        "'",
        "\\",
        "{title}:x",
        "&!|",
    ]:
        with contextlib.suppress(EmptyTerm):
            search(catalogue, Query(t("title", value)), "main", availability=RULE)
    assert ids(catalogue, t("title", 'Say "NEAR(" -minus', "adj")) == {"X-INJECT"}
    assert ids(catalogue, t("title", "or", "all")) == {"X-INJECT"}


def test_right_truncation(catalogue: Store) -> None:
    assert ids(catalogue, t("title", "hist", truncation="right")) == {"SHL000000001"}
    assert ids(catalogue, t("clc", "K2", "=", truncation="right")) == {
        "SHL000000001",
        "SHL000000002",
        "SHL000000005",
    }


def test_booleans(catalogue: Store) -> None:
    china = t("title", "中国")
    report = t("title", "报告")
    with_china, with_report = ids(catalogue, china), ids(catalogue, report)
    assert ids(catalogue, Boolean("and", china, report)) == with_china & with_report
    assert ids(catalogue, Boolean("not", china, report)) == with_china - with_report
    assert {"SHL000000002", "X-TRAD"} <= with_china - with_report
    either = ids(catalogue, Boolean("or", t("title", "红楼梦"), t("author", "黄仁宇")))
    assert either == {"SHL000000003", "SHL000000005"}


def test_exact_indexes(catalogue: Store) -> None:
    assert ids(catalogue, t("isbn", "7-5037-1744-0", "=")) == {"990002180740203961"}
    assert ids(catalogue, t("isbn", "9787503717444", "=")) == {"990002180740203961"}
    assert ids(catalogue, t("id", "SHL000000003", "=")) == {"SHL000000003"}
    assert ids(catalogue, t("barcode", "54122100517423", "=")) == {"SHL000000001"}
    assert ids(catalogue, t("language", "eng", "=")) == {"SHL000000001"}
    assert ids(catalogue, t("clc", "f124", "=")) >= {"990002180740203961"}
    assert ids(catalogue, t("title", "红楼梦", "exact")) == {"SHL000000003"}
    assert ids(catalogue, t("title", "红楼", "exact")) == set()


def test_years(catalogue: Store) -> None:
    assert ids(catalogue, t("year", "1997", "=")) >= {"SHL000000005"}
    assert all(
        h.year and 1990 <= h.year <= 1992
        for h in search(
            catalogue, Query(t("year", "1990 1992", "within")), "main", availability=RULE, limit=50
        ).hits
    )
    assert ids(catalogue, t("year", "2008", ">=")) == {"SHL000000006", "SHL000000007"}


def test_databases_are_separate(catalogue: Store) -> None:
    assert ids(catalogue, t("title", "猫"), database="japanese") == {"J-CAT"}
    assert ids(catalogue, t("title", "猫"), database="main") == {"X-CAT"}


def test_limit_by_availability(catalogue: Store) -> None:
    everything = ids(catalogue, t("title", "剑桥中国明代史"))
    assert everything == {"SHL000000002"}
    assert ids(catalogue, t("title", "剑桥中国明代史"), available_only=True) == {"SHL000000002"}
    with catalogue.write() as tx:
        tx.execute(
            "UPDATE items SET status = '借出' WHERE record_pk = (SELECT id FROM bib_records WHERE record_id = 'SHL000000002')"
        )
    assert ids(catalogue, t("title", "剑桥中国明代史"), available_only=True) == set()
    hit = search(catalogue, Query(t("title", "剑桥中国明代史")), "main", availability=RULE).hits[0]
    assert (hit.copies, hit.available) == (2, 0)


def test_sorting(catalogue: Store) -> None:
    query = t("title", "中国发展报告")
    by_date = search(
        catalogue,
        Query(query, (SortKey("date", descending=True),)),
        "main",
        availability=RULE,
        limit=20,
    ).hits
    years = [h.year for h in by_date]
    dated = [year for year in years if year is not None]
    assert dated == years and years == sorted(dated, reverse=True)  # every hit has a year
    by_title = search(
        catalogue, Query(t("any", "中国"), (SortKey("title"),)), "main", availability=RULE, limit=50
    ).hits
    assert len(by_title) > 5
    relevance = search(catalogue, Query(t("any", "cambridge")), "main", availability=RULE).hits
    assert relevance[0].record_id == "SHL000000001"


def test_paging(catalogue: Store) -> None:
    query = Query(t("title", "中"), (SortKey("title"),))
    first = search(catalogue, query, "main", availability=RULE, limit=3)
    second = search(catalogue, query, "main", availability=RULE, limit=3, offset=3)
    assert first.total == second.total > 6
    assert not {h.record_id for h in first.hits} & {h.record_id for h in second.hits}


def test_browse_in_pinyin_order_with_counts(catalogue: Store) -> None:
    entries = browse(catalogue, "main", "title", "红", count=4, position=2)
    headings = [e.heading for e in entries]
    assert headings[1] == "红楼梦"  # first heading at or after 红 (hong) is in position 2
    assert headings[0] < "红" or headings[0].startswith("傲")  # 傲 (ao) files before 红 (hong)
    assert all(e.count >= 1 for e in entries)
    subjects = browse(catalogue, "main", "subject", "经济", count=3)
    assert subjects[0].heading.startswith("经济发展")
    # Position 0 (SRU scan): the start term is just before the list, so an exact match is out.
    at_one = [e.heading for e in browse(catalogue, "main", "title", "红楼梦", count=3, position=1)]
    at_zero = [e.heading for e in browse(catalogue, "main", "title", "红楼梦", count=3, position=0)]
    assert at_one[0] == "红楼梦" and "红楼梦" not in at_zero
    assert at_zero[:2] == at_one[1:3]


@pytest.mark.parametrize(
    ("node", "error"),
    [
        (t("nosuch", "x"), UnknownIndex),
        (t("title", "x", "<"), UnsupportedRelation),
        (t("publisher", "x", "exact"), UnsupportedRelation),
        (t("title", "字" * 300), TermTooLong),
        (t("title", "a" * 120), TermTooLong),
        (t("title", "  ...  "), EmptyTerm),
        (t("year", "nineteen", "="), InvalidValue),
        (t("year", "1990", "within"), InvalidValue),
    ],
)
def test_typed_errors(catalogue: Store, node: Term, error: type[QueryError]) -> None:
    with pytest.raises(error):
        search(catalogue, Query(node), "main", availability=RULE)


def test_too_deep(catalogue: Store) -> None:
    node: Term | Boolean = t("title", "a")
    for _ in range(40):
        node = Boolean("and", node, t("title", "b"))
    with pytest.raises(QueryTooComplex):
        search(catalogue, Query(node), "main", availability=RULE)


WORDS = st.text(
    alphabet=st.sampled_from(list("中国历史猫ガラスｶﾞ abcAÉ\"*-()'\\:&|!NEAR{}^$%?_\x00\u3000")),
    max_size=20,
)
INDEX_NAMES = st.sampled_from(
    [
        "title",
        "author",
        "subject",
        "series",
        "publisher",
        "any",
        "isbn",
        "issn",
        "isrc",
        "id",
        "barcode",
        "clc",
        "language",
        "year",
        "bogus",
    ]
)
RELATION_NAMES = st.sampled_from(
    ["all", "any", "adj", "exact", "=", "<>", "<", "<=", ">", ">=", "within", "zz"]
)
TERMS = st.builds(
    Term, INDEX_NAMES, RELATION_NAMES, WORDS, st.sampled_from(["none", "right", "left"])
)
TREES = st.recursive(
    TERMS,
    lambda children: st.builds(Boolean, st.sampled_from(["and", "or", "not"]), children, children),
    max_leaves=8,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tree=TREES,
    sort=st.lists(
        st.builds(
            SortKey, st.sampled_from(["relevance", "title", "author", "date"]), st.booleans()
        ),
        max_size=2,
    ),
)
def test_fuzzed_queries_never_crash_or_break_sql(catalogue: Store, tree, sort) -> None:
    try:
        result = search(catalogue, Query(tree, tuple(sort)), "main", availability=RULE, limit=5)
    except QueryError:
        return
    assert result.total >= len(result.hits)


def test_reindex_rebuilds_the_same_answers(catalogue: Store) -> None:
    from gateway.catalogue.textindex import IndexState, index_for, store_state

    before = ids(catalogue, t("title", "明代史"))
    index = index_for(catalogue)
    with catalogue.read() as tx:
        current = store_state(tx)
    with index.writer() as writer:  # an emptied index that believes it is current
        assert writer.raw is not None
        writer.raw.delete_all_documents()
        writer.commit(IndexState(current.store_id, current.seq))
    assert ids(catalogue, t("title", "明代史")) == set()
    assert index.rebuild(catalogue) > 10
    assert ids(catalogue, t("title", "明代史")) == before
    assert browse(catalogue, "main", "title", "红", count=1)[0].count == 1
