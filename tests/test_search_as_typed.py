"""Search as readers type it (issue 13), on both engines: free text, one folded form for
simplified, traditional and Japanese Han, hiragana and katakana, pinyin (joined, spaced,
initials), kana readings, and ranking that puts the known item first. Each recall case has
its false-hit case beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.catalogue.explain import explain
from gateway.catalogue.loading.loader import Loader, LoadOptions
from gateway.catalogue.normalise import normalise
from gateway.catalogue.query import EmptyTerm, Query, QueryError, Term, UnknownIndex
from gateway.catalogue.search import search
from gateway.circulation.policy import Policy
from gateway.config import BUILTIN_PROFILES, DatabaseSettings, Settings
from gateway.cql.free_text import CQL, FREE_TEXT, QuerySyntaxError, read_query
from gateway.store import Store
from tests.conftest import FIXTURES
from tests.support import cnmarc, iso

RULE = Policy.from_settings(Settings()).availability
LIBGATE = next(p for p in BUILTIN_PROFILES if p.name == "libgate")

MAIN = [
    cnmarc("Z-CAFE", "Cafe society", author="Smith, John"),
    cnmarc("Z-CAFE-2", "Society pages", author="Cafe, Anne"),  # the words, scattered
    cnmarc("Z-HLM", "红楼梦"),
    cnmarc("Z-HLM-STUDY", "红楼梦研究"),
    cnmarc("Z-CHINA-PY", "吃拿卡要现象研究"),  # its pinyin begins chi na: "china"
    cnmarc("Z-ART", "艺术概论"),
    cnmarc("Z-RUE", "芸芸众生"),  # 芸 (rue) is Japanese 芸 = 藝 (art) only in Japanese
    cnmarc(
        "Z-REPORT",
        "'98中国发展报告",
        title_pinyin="'98 zhong guo fa zhan bao gao",
        author="国家统计局",
    ),
    cnmarc("Z-LUXUN", "呐喊", author="鲁迅", author_pinyin="Lu Xun"),
    cnmarc("Z-XIAN", "西安碑林", title_pinyin="Xi'an bei lin"),
    cnmarc("Z-XIANQIN", "先秦诸子"),
    cnmarc("Z-YINHANG", "银行会计"),  # 行 is hang here, not xing
]
JAPANESE = [
    cnmarc("J-CAT", "吾輩は猫である", author="夏目漱石", language="jpn"),
    cnmarc("J-KOKORO", "こころ", author="夏目漱石", language="jpn"),
    cnmarc("J-LIB", "図書館情報学概論", author="田中一郎", language="jpn"),
    cnmarc("J-LIB-HIST", "図書館の歴史", author="佐藤花子", language="jpn"),
    cnmarc("J-HIST", "日本の歴史", author="山田太郎", language="jpn"),
    cnmarc("J-GLASS", "ガラスの仮面", author="美内すずえ", language="jpn"),
    cnmarc("J-CROW", "カラスの親子", author="山田太郎", language="jpn"),
    cnmarc("J-KOKUGO", "国語辞典", author="山田太郎", language="jpn"),
    cnmarc("J-ART", "芸術の歴史", author="佐藤花子", language="jpn"),
]


@pytest.fixture
def catalogue(store: Store, tmp_path: Path) -> Store:
    extra = tmp_path / "main.iso"
    extra.write_bytes(iso(*MAIN))
    japanese = tmp_path / "japanese.iso"
    japanese.write_bytes(iso(*JAPANESE))
    main = DatabaseSettings(name="main")
    for path in (FIXTURES / "marc" / "demo_main.iso", extra):
        Loader(store, LoadOptions(database=main, profile=LIBGATE)).load([path])
    Loader(store, LoadOptions(database=DatabaseSettings(name="japanese"), profile=LIBGATE)).load(
        [japanese]
    )
    return store


def ranked(store: Store, text: str, database: str = "main") -> list[str]:
    result = search(store, read_query(text).query, database, availability=RULE, limit=50)
    assert result.total == len(result.hits)
    return [hit.record_id for hit in result.hits]


def found(store: Store, text: str, database: str = "main") -> set[str]:
    return set(ranked(store, text, database))


# --- the first paragraph ----------------------------------------------------------


def test_words_with_a_space_are_free_text(catalogue: Store) -> None:
    assert ranked(catalogue, "剑桥 明代") == ["SHL000000002"]
    assert ranked(catalogue, "Cafe society")[0] == "Z-CAFE"
    assert found(catalogue, "夏目 漱石", "japanese") == {"J-CAT", "J-KOKORO"}


def test_simplified_and_traditional_find_japanese_shinjitai(catalogue: Store) -> None:
    for typed in ("图书馆", "圖書館", "図書館"):
        assert found(catalogue, typed, "japanese") == {"J-LIB", "J-LIB-HIST"}, typed
    for typed in ("历史", "歷史", "歴史"):
        assert found(catalogue, typed, "japanese") == {"J-LIB-HIST", "J-HIST", "J-ART"}, typed
    assert found(catalogue, "國語", "japanese") == {"J-KOKUGO"}


def test_folding_japanese_forms_does_not_merge_different_chinese_characters(
    catalogue: Store,
) -> None:
    # 芸 is a common Chinese character (rue); only in Japanese is it 藝 (art). It is not folded,
    # so 艺术 does not find 芸芸众生 and 芸 does not find 艺术概论.
    assert found(catalogue, "艺术") == {"Z-ART"}
    assert found(catalogue, "芸") == {"Z-RUE"}
    assert normalise("芸") == "芸" and normalise("図") == "图" and normalise("歴") == "历"


def test_full_pinyin_and_initials_find_the_title(catalogue: Store) -> None:
    for typed in ("mingdai", "jianqiao", "jqzgmds", "jian qiao", "JianQiao Mingdai"):
        assert ranked(catalogue, typed)[0] == "SHL000000002", typed
    assert set(ranked(catalogue, "hlm")[:2]) == {"Z-HLM", "SHL000000003"}
    assert ranked(catalogue, "tushuguan", "japanese")[:2] == ["J-LIB", "J-LIB-HIST"] or set(
        ranked(catalogue, "tushuguan", "japanese")[:2]
    ) == {"J-LIB", "J-LIB-HIST"}


def test_catalogued_pinyin_is_used_and_split_into_syllables(catalogue: Store) -> None:
    assert "Z-REPORT" in found(catalogue, "zhongguo fazhan")
    assert ranked(catalogue, "lu xun") == ["Z-LUXUN"]  # 701 $A Lu Xun
    assert ranked(catalogue, "luxun") == ["Z-LUXUN"]
    # The cataloger's xi'an is two syllables; readers type it with or without the apostrophe.
    assert ranked(catalogue, "xi'an beilin") == ["Z-XIAN"]
    assert ranked(catalogue, "xian beilin") == ["Z-XIAN"]
    assert ranked(catalogue, "xianqin") == ["Z-XIANQIN"]


def test_heteronyms_are_read_in_context(catalogue: Store) -> None:
    assert ranked(catalogue, "yinhang") == ["Z-YINHANG"]
    assert "Z-YINHANG" not in found(catalogue, "yinxing")


def test_kana_readings_find_japanese_titles_and_names(catalogue: Store) -> None:
    assert ranked(catalogue, "わがはい", "japanese") == ["J-CAT"]
    assert ranked(catalogue, "ワガハイ", "japanese") == ["J-CAT"]
    assert found(catalogue, "なつめ そうせき", "japanese") == {"J-CAT", "J-KOKORO"}
    assert found(catalogue, "がらす", "japanese") == {"J-GLASS"}
    assert found(catalogue, "からす", "japanese") == {"J-CROW"}
    assert found(catalogue, "カラス", "japanese") == {"J-CROW"}  # voicing marks stay


def test_readings_are_not_given_to_chinese_records(catalogue: Store) -> None:
    # 红楼梦 read in Japanese would be コウロウム; a Chinese record has no reading to match.
    assert found(catalogue, "こうろうむ") == set()


# --- ranking: the known item first ------------------------------------------------------


def test_the_whole_title_ranks_above_a_longer_title_containing_it(catalogue: Store) -> None:
    hits = ranked(catalogue, "红楼梦")  # the demo catalogue has a 红楼梦 too
    assert set(hits[:2]) == {"Z-HLM", "SHL000000003"} and hits[2] == "Z-HLM-STUDY"


def test_a_phrase_in_the_title_ranks_above_the_words_scattered(catalogue: Store) -> None:
    assert ranked(catalogue, "cafe society")[:2] == ["Z-CAFE", "Z-CAFE-2"]


def test_latin_words_match_latin_titles_before_pinyin(catalogue: Store) -> None:
    hits = ranked(catalogue, "china")
    assert hits[0] == "SHL000000001" and "Z-CHINA-PY" in hits
    assert hits.index("SHL000000001") < hits.index("Z-CHINA-PY")


# --- the reading rule -----------------------------------------------------------------------


def test_valid_cql_stays_cql_and_other_text_is_free_text() -> None:
    assert read_query("title=红楼梦").syntax == CQL
    assert read_query("红楼梦").syntax == CQL  # a bare term: CQL and free text agree
    assert read_query("剑桥 明代").syntax == FREE_TEXT
    assert read_query("Cambridge history China").syntax == FREE_TEXT  # "history": no relation
    lone = read_query('"夏目 漱石"')
    assert lone.syntax == FREE_TEXT and lone.query.root == Term("any", "adj", "夏目 漱石")
    words = read_query('剑桥 "明代 史" hist*')
    assert [t.relation for t in _terms(words.query)] == ["all", "adj", "all"]
    assert _terms(words.query)[2].truncation == "right"


def test_cql_mistakes_are_explained_in_plain_words() -> None:
    with pytest.raises(QuerySyntaxError, match="could not be read.*near"):
        read_query("title=(红楼梦")
    with pytest.raises(UnknownIndex, match="no index 'titel'.*Indexes: title"):
        read_query("titel=红楼梦")
    with pytest.raises(EmptyTerm, match="nothing to search"):
        read_query("   ")
    with pytest.raises(QueryError):
        read_query("title=")


def test_explain_shows_the_forms_searched() -> None:
    (term,) = explain(read_query("mingdai").query)
    assert term.words[0].pinyin == ["ming dai"] and "py_title" in term.fields
    (term,) = explain(read_query("jqzgmds").query)
    assert term.words[0].initials == "jqzgmds" and "py_initials" in term.fields
    (term,) = explain(read_query("わがはい").query)
    assert term.words[0].reading == "ワガハイ" and "rd_title" in term.fields
    (term,) = explain(read_query("圖書館").query)
    assert term.words[0].searched == "图书馆" and term.fields == [
        "title",
        "author",
        "subject",
        "series",
        "publisher",
    ]
    (term,) = explain(read_query("'94中国 mingdai").query)
    assert [w.searched for w in term.words] == ["94", "中国", "mingdai"]
    assert term.words[2].pinyin == ["ming dai"]
    (term,) = explain(read_query("lu xun").query)
    assert term.together_as_pinyin == ["lu xun"]
    (term,) = explain(read_query("红楼梦 cao xueqin").query)
    assert term.together_as_pinyin == ["cao xue qin"]


def _terms(query: Query) -> list[Term]:
    from gateway.catalogue.query import terms

    return terms(query.root)


# --- the folding and reading paths, one by one ----------------------------------------------


def test_script_folding_meets_in_one_form_and_keeps_voicing() -> None:
    assert normalise("图书馆") == normalise("圖書館") == normalise("図書館") == "图书馆"
    assert normalise("国") == normalise("國") and normalise("歴史") == normalise("歷史")
    assert normalise("がらす") == normalise("ガラス") == normalise("ｶﾞﾗｽ") == "ガラス"
    assert normalise("ガラス") != normalise("カラス")
    # Characters that are common simplified Chinese keep their Chinese identity.
    assert [normalise(c) for c in "芸沪糸欠予"] == list("芸沪糸欠予")


def test_pinyin_splits_follow_the_spelling_rule_first() -> None:
    from gateway.catalogue.pinyin import heading_pinyin, heading_syllables, initials, splits

    assert splits("mingdai") == (("ming", "dai"),)
    assert splits("jianqiao")[0] == ("jian", "qiao")
    assert splits("xian") == (("xian",), ("xi", "an"))
    assert splits("xi'an") == (("xi", "an"),)
    assert splits("lüse") == splits("lvse") == (("lu", "se"),)
    assert splits("history") == () and splits("society") == ()
    assert heading_syllables("银行会计") == ["yin", "hang", "kuai", "ji"]  # in context
    assert heading_syllables("叶震", "Xie Zhen") == ["xie", "zhen"]  # the cataloger's word
    assert heading_pinyin("叶震", "Xie Zhen") == [["xie", "zhen"], ["ye", "zhen"]]  # and ours
    assert heading_pinyin("剑桥", "Jian qiao") == [["jian", "qiao"]]
    assert heading_syllables("図書館") == ["tu", "shu", "guan"]  # folded first
    assert heading_syllables("Pride and prejudice") == []
    assert initials("剑桥中国明代史") == "jqzgmds"


def test_word_forms_decide_which_words_are_pinyin_initials_or_readings() -> None:
    from gateway.catalogue.word_forms import run_forms, word_forms

    assert word_forms("ming").pinyin == ()  # one syllable alone is too common
    assert word_forms("mingdai").pinyin == (("ming", "dai"),)
    assert word_forms("jqzgmds").initials == "jqzgmds"
    assert word_forms("cat").initials == "" and word_forms("hlm").initials == "hlm"
    assert word_forms("ワガハイ").reading == ["ワガ", "ガハ", "ハイ"]
    assert word_forms("猫").reading is None and word_forms("ガ").reading is None
    run = run_forms(["lu", "xun"])
    assert run is not None and run.pinyin == (("lu", "xun"),)
    assert run_forms(["cafe", "society"]) is None


def test_readings_come_from_kana_transcriptions_or_are_generated() -> None:
    from gateway.catalogue.readings import heading_reading

    assert heading_reading("吾輩は猫である") == "ワガハイハネコデアル"
    assert heading_reading("夏目漱石") == "ナツメソウセキ"
    assert heading_reading("式子内親王集", "しきしないしんのうしゅう") == "シキシナイシンノウシュウ"
    assert heading_reading("Pride and prejudice") == ""
    assert heading_reading("金田一京助", "Kindaichi, Kyōsuke") == "キンダイチキョウスケ"


def test_our_pinyin_reading_is_pypinyins() -> None:
    """Headings are read with pypinyin's dictionaries directly (faster than lazy_pinyin): the
    syllables must stay what lazy_pinyin says, heteronyms and all."""
    from pypinyin import Style, lazy_pinyin

    from gateway.catalogue.pinyin import _run_syllables, fold_latin

    runs = [
        "银行会计学原理研究",
        "长城重庆行长都是的",
        "中华人民共和国史",
        "剑桥中国明代史上卷",
        "还是会还钱的朝阳",
        "音乐快乐重要重新",
        "一行行的银行职员",
    ]
    for run in runs:
        expected = [fold_latin(p) for p in lazy_pinyin(run, style=Style.NORMAL)]
        assert _run_syllables(run) == expected, run
