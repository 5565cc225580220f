"""The search index's two ways of ordering hits agree: one sort key is a Tantivy fast field
(the key with the primary key appended), several keys are sorted from the store's sort
columns. (This file tested SQLite's FTS5-only path against its join path before the search
index moved to Tantivy.) On both engines."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.catalogue.query import Query, SortKey
from gateway.catalogue.search import search, search_ids
from gateway.circulation.policy import Policy
from gateway.config import Settings
from gateway.cql.to_query import cql_to_query
from gateway.store import open_store
from gateway.store.migrate import migrate
from tests.sru_support import load_catalogue

RULE = Policy.from_settings(Settings()).availability  # the default policy's R2

QUERIES = [
    "历史",
    "dc.title = 中国发展报告",
    "dc.title = 中国 and dc.title = 发展",
    "dc.title = 历史 or dc.title = 猫",
    "dc.title = 中国 not dc.title = 明代",
    'dc.title adj "发展报告"',
    'dc.title any "猫 图书馆"',
    "bath.name = 国家统计局",
    "dc.title = pride*",
    "dc.title = 中国 and bath.isbn = 9787101003048",  # not keyword-only: the join path
]


@pytest.fixture
def catalogue(store_url: str, tmp_path: Path):
    opened = open_store(store_url, search_index_dir=str(tmp_path / "index"))
    migrate(opened)
    load_catalogue(opened, tmp_path)
    yield opened
    opened.close()


SINGLE_KEYS = [
    (SortKey("title"),),
    (SortKey("title", True),),
    (SortKey("author"),),
    (SortKey("author", True),),
    (SortKey("date"),),
    (SortKey("date", True),),
]


@pytest.mark.parametrize("sort", SINGLE_KEYS)
def test_fast_field_order_is_the_store_order(catalogue, sort) -> None:
    """`(key,)` runs on a fast field; `(key, record)` (the same order: ties are catalogue
    order) is sorted from the store's columns."""
    for text in QUERIES:
        fast = Query(cql_to_query(text).root, sort)
        keyed = Query(fast.root, (*sort, SortKey("record")))
        one = search(catalogue, fast, "main", availability=RULE, limit=50)
        two = search(catalogue, keyed, "main", availability=RULE, limit=50)
        assert one.total == two.total, text
        assert [h.record_id for h in one.hits] == [h.record_id for h in two.hits], text
        assert search_ids(catalogue, fast, "main", availability=RULE, limit=50) == search_ids(
            catalogue, keyed, "main", availability=RULE, limit=50
        )
    assert any(search(catalogue, cql_to_query(q), "main", availability=RULE).total for q in QUERIES)


@pytest.mark.parametrize("sort", [(), (SortKey("record"),), (SortKey("record", True),)])
def test_pages_are_slices_of_one_order(catalogue, sort) -> None:
    for text in QUERIES:
        query = Query(cql_to_query(text).root, sort)
        total, keys = search_ids(catalogue, query, "main", availability=RULE, limit=50)
        pages = [
            h.record_pk
            for offset in range(0, min(total, 50), 3)
            for h in search(
                catalogue, query, "main", availability=RULE, limit=3, offset=offset
            ).hits
        ]
        assert pages[: len(keys)] == keys[: len(pages)], text
        if sort and sort[0].key == "record":
            assert keys == sorted(keys, reverse=sort[0].descending), text
