"""Response documents without a server: SRU 2.0 responses validate against the OASIS schema,
1.x responses have the SRW shape, OPAC XML validates against YAZ's schema, and result sets
expire and stay bounded."""

from __future__ import annotations

import dataclasses

import pytest
from lxml import etree

from gateway.catalogue.query import Query, Term
from gateway.catalogue.repository import RetrievedRecord
from gateway.circulation.availability import ShelfState
from gateway.circulation.engine import CopyAvailability, TitleAvailability
from gateway.config import Settings
from gateway.records import xml as records
from gateway.records.schemas import SCHEMAS
from gateway.retrieval import ResultSet
from sru.diagnostics import Diagnostic
from sru.explain import zeerex
from sru.request import Limits
from sru.response import (
    ResponseRecord,
    ScanTerm,
    diagnostic_response,
    explain_response,
    scan_response,
    search_retrieve_response,
    serialize,
    surrogate,
)
from sru.resultsets import ResultSetStore, SruResultSet
from sru.versions import V1_1, V1_2, V2_0
from tests.conftest import FIXTURES
from tests.sru_support import NS, xml
from tests.support import cnmarc, iso

SCHEMA_DIR = FIXTURES / "sru" / "schemas"
OPACXML_XSD = SCHEMA_DIR / "opacxml.xsd"  # YAZ's, see fixtures/sru/PROVENANCE.md


@pytest.fixture(scope="module")
def sru2_schema() -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "sruResponse.xsd"), parser))


def record() -> RetrievedRecord:
    marc = iso(cnmarc("R1", "猫的历史", isbn="9787101003048", barcodes=("B1", "B2")))
    bib = (
        '{"format": "unimarc", "title": "猫的历史", "names": [{"name": "某某", "role": "著",'
        ' "kind": "person", "responsibility": "primary", "pinyin": ""}], "year": 2001,'
        ' "isbns": ["9787101003048"], "subjects": ["猫"]}'
    )
    return RetrievedRecord(1, "main", "R1", "unimarc", marc, bib, "digest-1")


AVAILABILITY = TitleAvailability(
    1,
    (
        CopyAvailability(
            "B1",
            "中文书库",
            "I247/1",
            "普通外借资料",
            "借出",
            ShelfState.ON_LOAN,
            "2026-04-01T09:00:00+00:00",
            False,
            None,
            "上海图书馆",
        ),
        CopyAvailability(
            "B2",
            "中文书库",
            "I247/1",
            "普通外借资料",
            "预约到书",
            ShelfState.ON_HOLD_SHELF,
            None,
            True,
            "二楼借书处",
            "上海图书馆",
        ),
    ),
    2,
)


def all_records(version, escaping="xml"):
    return [
        ResponseRecord(schema.identifier, records.build(schema, record(), AVAILABILITY), i + 1)
        for i, schema in enumerate(SCHEMAS.values())
    ]


def test_sru_2_0_responses_validate_against_the_oasis_schema(sru2_schema) -> None:
    documents = [
        search_retrieve_response(
            V2_0,
            total=7,
            records=all_records(V2_0),
            result_set_id="abc",
            result_set_ttl=60,
            next_position=6,
            diagnostics=(Diagnostic(6, "maximumRecords", "capped"),),
        ),
        search_retrieve_response(V2_0, total=1, records=all_records(V2_0), escaping="string"),
        search_retrieve_response(V2_0, total=1, records=[surrogate(V2_0, Diagnostic(65), 1)]),
        diagnostic_response(V2_0, "searchRetrieve", Diagnostic(10, "3", "syntax")),
        scan_response(V2_0, [ScanTerm("猫", 2), ScanTerm("a", 1, "A")], (Diagnostic(121),)),
        diagnostic_response(V2_0, "scan", Diagnostic(16, "dc.x")),
        explain_response(V2_0, zeerex(Settings().databases[0], Limits(), "h", 80, "2.0")),
    ]
    for root in documents:
        document = xml(serialize(root))
        assert sru2_schema.validate(document), sru2_schema.error_log


@pytest.mark.parametrize("version", [V1_1, V1_2])
def test_sru_1_x_responses_have_the_srw_shape(version) -> None:
    root = xml(
        serialize(
            search_retrieve_response(
                version,
                total=7,
                records=all_records(version)[:1],
                result_set_id="abc",
                result_set_ttl=60,
                next_position=2,
                diagnostics=(Diagnostic(6, "maximumRecords"),),
            )
        )
    )
    assert root.tag == f"{{{NS['zs']}}}searchRetrieveResponse"
    assert [etree.QName(c).localname for c in root] == [
        "version",
        "numberOfRecords",
        "resultSetId",
        "resultSetIdleTime",
        "records",
        "nextRecordPosition",
        "diagnostics",
    ]
    assert root.findtext("zs:version", namespaces=NS) == version.text
    assert [etree.QName(c).localname for c in root.find("zs:records/zs:record", NS)] == [
        "recordSchema",
        "recordPacking",
        "recordData",
        "recordPosition",
    ]
    diagnostic = root.find("zs:diagnostics/diag:diagnostic", NS)
    assert diagnostic.findtext("diag:uri", namespaces=NS) == "info:srw/diagnostic/1/6"
    assert [etree.QName(c).localname for c in diagnostic] == ["uri", "details", "message"]
    scan = xml(serialize(scan_response(version, [ScanTerm("猫", 2)])))
    assert scan.tag == f"{{{NS['zs']}}}scanResponse"
    assert scan.findtext("zs:terms/zs:term/zs:value", namespaces=NS) == "猫"


def test_stylesheet_instruction_and_escaping() -> None:
    body = serialize(search_retrieve_response(V1_2, total=0), "http://x/sru.xsl?a=1&b=2")
    assert body.splitlines()[1].startswith(
        b'<?xml-stylesheet type="text/xsl" href="http://x/sru.xsl?a=1&b=2"?>'
    )
    root = search_retrieve_response(V1_2, total=1, records=all_records(V1_2)[:1], escaping="string")
    data = xml(serialize(root)).find(".//zs:recordData", NS)
    assert data is not None and data.text is not None
    tag = xml(data.text.encode()).tag
    assert len(data) == 0 and isinstance(tag, str) and tag.endswith("record")


def test_opacxml_validates_against_yaz_schema() -> None:
    schema = etree.XMLSchema(etree.parse(str(OPACXML_XSD)))
    element = records.opacxml(record(), AVAILABILITY)
    assert schema.validate(element), schema.error_log
    circulation = element.findall(".//circulation")
    assert [c.find("availableNow").get("value") for c in circulation] == ["0", "0"]
    assert circulation[0].findtext("availabilityDate") == "2026-04-01"
    assert circulation[1].find("onHold").get("value") == "1"
    assert "holds waiting 2" in (element.findtext(".//publicNote") or "")


def test_holdings_and_dublin_core_records() -> None:
    holdings = records.holdings(record(), AVAILABILITY)
    assert (holdings.get("copies"), holdings.get("available"), holdings.get("holdQueue")) == (
        "2",
        "0",
        "2",
    )
    shelf = holdings.find("h:copy[@barcode='B2']/h:onHoldShelf", NS)
    assert shelf.get("desk") == "二楼借书处"
    dc = records.dublin_core(record(), None)
    assert [(etree.QName(e).localname, e.text) for e in dc][:3] == [
        ("title", "猫的历史"),
        ("creator", "某某"),
        ("subject", "猫"),
    ]
    assert "urn:ISBN:9787101003048" in [e.text for e in dc]


def test_result_sets_expire_and_stay_bounded() -> None:
    now = [0.0]
    store = ResultSetStore(max_sets=2, max_records=3, clock=lambda: now[0])
    query = Query(Term("any", "all", "cat"))

    def keep(total: int, record_pks: list[int], ttl: int = 60) -> SruResultSet:
        return store.keep(ResultSet("", "main", query, total, tuple(record_pks)), ttl)

    first = keep(10, list(range(10)))
    assert list(first.record_pks) == [0, 1, 2] and first.total == 10
    assert first.query == query and first.ttl == 60
    now[0] = 50
    assert store.get(first.id, "main") is first  # use starts the TTL again
    now[0] = 100
    assert store.get(first.id, "main") is first
    assert store.get(first.id, "japanese") is None
    now[0] = 161
    assert store.get(first.id, "main") is None  # idle longer than its TTL
    a = keep(1, [1])
    b = keep(1, [2])
    c = keep(1, [3])
    assert store.get(a.id, "main") is None and len(store) == 2  # least recently used went
    assert store.get(b.id, "main") and store.get(c.id, "main")
    assert len({keep(0, [], ttl=1).id for _ in range(50)}) == 50


def test_a_kept_result_set_keeps_the_availability_limit() -> None:
    store = ResultSetStore(max_sets=2, max_records=3)
    query = Query(Term("any", "all", "cat"))
    kept = store.keep(ResultSet("", "main", query, 2, (7, 9), available_only=True), ttl=60)
    assert kept.available_only and kept.kept(1, 2) == [7, 9]


def test_record_cache_serves_the_same_xml_until_the_record_changes() -> None:
    cache = records.RecordCache(max_entries=2)
    marcxml, holdings = SCHEMAS["marcxml"], SCHEMAS["holdings"]
    first = etree.tostring(cache.build(marcxml, record(), None))
    assert etree.tostring(cache.build(marcxml, record(), None)) == first
    assert len(cache._entries) == 1
    changed = dataclasses.replace(record(), marc=iso(cnmarc("R1", "狗的历史")), digest="digest-2")
    assert "狗的历史" in etree.tostring(cache.build(marcxml, changed, None), encoding="unicode")
    cache.build(SCHEMAS["dc"], record(), None)
    assert len(cache._entries) == 2  # bounded: the oldest went
    cache.build(holdings, record(), AVAILABILITY)
    assert all(key[1] != "holdings" for key in cache._entries)  # live data is never cached
