"""The retrieval core SRU and Z39.50 share: result sets paged from their kept hits or searched
again, and records retrieved with availability, one bad record isolated from its page."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from lxml import etree

from gateway.catalogue.query import Query, Term, UnknownIndex
from gateway.catalogue.repository import RetrievedRecord
from gateway.circulation.availability import ShelfState
from gateway.circulation.engine import TitleAvailability
from gateway.cql.to_query import cql_to_query
from gateway.retrieval import ResultSet, Retrieval
from gateway.store import Store
from gateway.z3950_codec import oids
from gateway.z3950_codec.diagnostics import Diagnostic
from tests.sru_support import build_engine, build_service, diagnostics, load_catalogue, xml
from z3950.records import RecordSpec
from z3950.service import CatalogueService

QUERY = cql_to_query("dc.title = 中国 sortBy local.record")


@pytest.fixture
def retrieval(store: Store, tmp_path: Path) -> Retrieval:
    load_catalogue(store, tmp_path)
    return Retrieval(store, build_engine(store))


def test_pages_come_from_the_kept_hits_else_from_a_new_search(retrieval: Retrieval) -> None:
    found = retrieval.search("s", "main", QUERY, keep=3)
    assert found.total > 6 and len(found.record_pks) == 3
    everything = retrieval.search_page(QUERY, "main", start=1, count=found.total)
    in_order = [hit.record_pk for hit in everything.hits]
    assert list(found.record_pks) == in_order[:3]
    assert retrieval.page(found, 2, 2) == in_order[1:3]  # kept
    assert retrieval.page(found, 3, 4) == in_order[2:6]  # past the kept hits: searched again
    assert retrieval.page(found, 1, 0) == []
    # A kept page is read from the set alone: a set whose query cannot run still pages.
    broken = ResultSet("b", "main", Query(Term("nonsense", "=", "x")), 3, (7, 8, 9))
    assert retrieval.page(broken, 1, 3) == [7, 8, 9]
    with pytest.raises(UnknownIndex):
        retrieval.page(broken, 2, 3)


def test_the_availability_limit_is_kept_with_the_set(retrieval: Retrieval) -> None:
    query = cql_to_query("dc.title = 猫的历史")
    assert retrieval.search("s", "main", query, keep=5, available_only=True).total == 1
    assert retrieval.engine.checkout("SRU-READER", "SRU-C1").ok
    assert retrieval.engine.checkout("SRU-READER", "SRU-C2").ok
    limited = retrieval.search("s", "main", query, keep=0, available_only=True)
    assert limited.total == 0 and limited.available_only
    assert retrieval.page(limited, 1, 5) == []  # searched again, with the limit
    assert retrieval.search("s", "main", query, keep=5).total == 1


def test_one_bad_record_is_isolated_and_availability_is_read(retrieval: Retrieval) -> None:
    query = cql_to_query("dc.title = 明代 or dc.title = 猫的历史 sortBy local.record")
    pks = list(retrieval.search("s", "main", query, keep=10).record_pks)
    assert len(pks) == 2
    bad = pks[0]

    def build(record: RetrievedRecord, availability: TitleAvailability | None) -> str:
        if record.pk == bad:
            raise ValueError("a record that cannot be built")
        states = [copy.state for copy in availability.copies] if availability else []
        return f"{record.record_id} {states}"

    deleted = 10**9
    retrieved = retrieval.retrieve([*pks, deleted], build, with_availability=True)
    assert [r.record_pk for r in retrieved] == [*pks, deleted]
    assert retrieved[0].record is not None and retrieved[0].built is None
    assert all(r.built for r in retrieved[1:-1])
    assert retrieved[-1].record is None and retrieved[-1].built is None
    available = [ShelfState.AVAILABLE, ShelfState.AVAILABLE]
    assert retrieved[1].built == f"SRU-CAT-ZH {available}"  # 猫的历史: two copies on the shelf


def test_both_protocols_answer_a_bad_record_with_its_surrogate(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_catalogue(store, tmp_path)
    engine = build_engine(store)
    sru = build_service(store, engine)
    z3950 = CatalogueService(store, engine, list(sru.databases.values()))
    pks = list(z3950.search("default", cql_to_query("dc.title = 猫的历史"), "main", 5).record_pks)
    assert len(pks) == 1
    from gateway.records import xml as record_xml
    from z3950 import records as z_records

    def broken(*_args: object) -> etree._Element:
        raise RuntimeError("cannot build")

    monkeypatch.setitem(record_xml.BUILDERS, "holdings", broken)
    monkeypatch.setattr(z_records, "opac", broken)
    params = {"query": "dc.title = 猫的历史", "recordSchema": "holdings", "version": "1.2"}
    params["operation"] = "searchRetrieve"
    root = xml(sru.handle("main", urlencode(params).encode()).body)
    assert [n for n, _ in diagnostics(root)] == [64]  # the record's surrogate, not a failure
    [(_database, surrogate)] = z3950.retrieve(pks, RecordSpec.resolve(oids.OPAC, "F"))
    assert isinstance(surrogate, Diagnostic) and surrogate.condition == 14
