"""SRU result sets kept in the store (schema 0009), as several workers or gateways share them:
one process makes a set, another pages it. Both engines."""

from __future__ import annotations

from pathlib import Path

from gateway.catalogue.query import Boolean, Query, SortKey, Term
from gateway.records.xml import RecordCache
from gateway.retrieval import ResultSet, kept
from gateway.store import Store
from sru.request import Limits
from sru.resultsets import SharedResultSetStore
from sru.service import SruService
from tests.sru_support import (
    NS,
    SETTINGS,
    build_engine,
    control_numbers,
    diagnostics,
    load_catalogue,
)
from tests.test_sru_service import sr, total

QUERY = Query(
    Boolean(
        "and",
        Term("title", "all", "猫的 历史", "right", ("stem",)),
        Boolean("not", Term("any", "any", "cat"), Term("date", "within", "1990 2000")),
    ),
    (SortKey("date", descending=True), SortKey("title")),
)


def test_the_query_and_hits_come_back_as_kept() -> None:
    assert kept.query_from_json(kept.query_to_json(QUERY)) == QUERY
    assert list(kept.unpack(kept.pack([1, 2**40, 7]))) == [1, 2**40, 7]


def test_a_set_kept_by_one_process_is_read_by_another(store: Store) -> None:
    now = [1_000_000.0]
    made_here = SharedResultSetStore(store, max_sets=3, max_records=3, clock=lambda: now[0])
    read_there = SharedResultSetStore(store, max_sets=3, max_records=3, clock=lambda: now[0])
    created = made_here.keep(ResultSet("", "main", QUERY, 10, tuple(range(10)), True), ttl=60)
    found = read_there.get(created.id, "main")
    assert found is not None
    assert (found.query, found.total, found.ttl, found.available_only) == (QUERY, 10, 60, True)
    assert list(found.record_pks) == [0, 1, 2] and found.kept(2, 2) == [1, 2]
    assert read_there.get(created.id, "japanese") is None  # another database's
    assert read_there.get("nope", "main") is None
    # Each use starts the idle time again: used every 50 s, it outlives its TTL many times.
    for _ in range(5):
        now[0] += 50
        assert read_there.get(created.id, "main") is not None
    now[0] += 60 + 30  # idle for longer than its TTL and any slack
    assert made_here.get(created.id, "main") is None
    # Bounded: the sets that expire first go beyond max_sets.
    ids = [made_here.keep(ResultSet("", "main", QUERY, 1, (n,)), ttl=60 + n).id for n in range(5)]
    assert len(read_there) == 3
    assert [read_there.get(i, "main") is not None for i in ids] == [False, False, True, True, True]


def test_one_service_makes_a_set_and_another_pages_it(store: Store, tmp_path: Path) -> None:
    load_catalogue(store, tmp_path)
    engine = build_engine(store)

    def worker() -> SruService:
        sets = SharedResultSetStore(store, max_sets=50, max_records=5)
        return SruService(store, engine, SETTINGS.databases, Limits(), sets, RecordCache(100))

    first, second = worker(), worker()
    made = sr(first, "dc.title = 中国发展报告", resultSetTTL=60, maximumRecords=2)
    set_id = made.findtext("zs:resultSetId", namespaces=NS)
    assert set_id and made.findtext("zs:resultSetIdleTime", namespaces=NS) == "60"
    expected = control_numbers(sr(first, "dc.title = 中国发展报告", maximumRecords=20))
    assert len(expected) > 5  # past the kept hits, pages are searched again
    pages = []
    for start in range(1, len(expected) + 1, 2):
        server = (first, second)[start % 2]
        page = sr(server, f'cql.resultSetId = "{set_id}"', startRecord=start, maximumRecords=2)
        assert total(page) == len(expected)
        pages += control_numbers(page)
    assert pages == expected
    assert diagnostics(sr(second, f'cql.resultSetId = "{set_id}"', "japanese"))[0][0] == 51
    assert diagnostics(sr(second, 'cql.resultSetId = "nope"')) == [(51, "nope")]
