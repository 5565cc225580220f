"""SQLite's FTS-only search path (count and first page from one FTS5 MATCH) answers exactly as
the general join path: same counts, same records, same order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.catalogue import search as search_module
from gateway.catalogue.planner import plan
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


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("fts")
    opened = open_store(f"sqlite:///{path / 'fts.db'}")
    migrate(opened)
    load_catalogue(opened, Path(path))
    yield opened
    opened.close()


@pytest.mark.parametrize("sort", [(), (SortKey("record"),), (SortKey("record", True),)])
def test_fts_path_answers_as_the_join_path(store, monkeypatch, sort) -> None:
    fast = {}
    for text in QUERIES:
        query = Query(cql_to_query(text).root, sort)
        result = search(store, query, "main", availability=RULE, limit=50)
        fast[text] = (
            result.total,
            [h.record_id for h in result.hits],
            search_ids(store, query, "main", availability=RULE, limit=50),
        )
    # search() calls the planner by the name it imported: replace that name, wrapping the real one.
    monkeypatch.setattr(
        search_module,
        "plan",
        lambda *a, **k: dataclasses.replace(plan(*a, **k), fts_match=None, fts_order=None),
    )
    for text in QUERIES:
        query = Query(cql_to_query(text).root, sort)
        result = search(store, query, "main", availability=RULE, limit=50)
        slow = (
            result.total,
            [h.record_id for h in result.hits],
            search_ids(store, query, "main", availability=RULE, limit=50),
        )
        assert slow == fast[text], text
    assert any(total for total, _, _ in fast.values())
