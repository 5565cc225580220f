"""The SRU service over a real catalogue on both engines: CJK searches find what
`catalogue.search` finds, records in every schema, sorting, result sets, scan, live
availability, and every refusal is a diagnostic (never an exception)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.catalogue.search import search
from gateway.circulation.policy import Policy
from gateway.config import Settings
from gateway.cql.to_query import cql_to_query
from gateway.records.schemas import SCHEMAS
from gateway.store import Store
from sru.request import Limits
from sru.service import SruService
from tests.sru_support import (
    NS,
    READER,
    build_engine,
    build_service,
    control_numbers,
    diagnostics,
    load_catalogue,
    xml,
)

RULE = Policy.from_settings(Settings()).availability  # the default policy's R2


@pytest.fixture
def sru(store: Store, tmp_path: Path) -> SruService:
    load_catalogue(store, tmp_path)
    return build_service(store, build_engine(store))


def ask(service: SruService, database: str = "main", **params: object) -> etree._Element:
    reply = service.handle(database, urlencode(params).encode("ascii"), "127.0.0.1", 8080)
    assert reply.status == 200
    assert reply.content_type.endswith("charset=UTF-8")
    return xml(reply.body)


def sr(service: SruService, query: str, database: str = "main", **params: object):
    params.setdefault("version", "1.2")
    params.setdefault("operation", "searchRetrieve")
    return ask(service, database, query=query, **params)


def total(root: etree._Element) -> int:
    return int(text_of(root, "{*}numberOfRecords"))


def text_of(element: etree._Element, path: str) -> str:
    """The text at `path`, which the response must have."""
    text = element.findtext(path, namespaces=NS)
    assert text is not None, path
    return text


CJK_QUERIES = [
    ("main", "历史"),
    ("main", "猫"),
    ("main", "dc.title = 明代"),
    ("main", 'dc.title all "中国 发展"'),
    ("japanese", "猫"),
    ("japanese", "dc.title = 偏見"),
    ("japanese", "bath.name = Austen"),
]


def test_cjk_queries_find_what_catalogue_search_finds(sru: SruService) -> None:
    for database, query in CJK_QUERIES:
        expected = search(sru.store, cql_to_query(query), database, availability=RULE, limit=100)
        root = sr(sru, query, database, maximumRecords=100)
        assert diagnostics(root) == [], query
        assert total(root) == expected.total > 0, query
        assert control_numbers(root) == [hit.record_id for hit in expected.hits], query


def test_records_in_every_schema_and_both_packings(sru: SruService) -> None:
    root = sr(sru, "dc.title = 猫的历史", recordSchema="marcxml")
    assert root.tag == f"{{{NS['zs']}}}searchRetrieveResponse"
    assert root.findtext("zs:version", namespaces=NS) == "1.2"
    record = root.find("zs:records/zs:record", NS)
    assert record.findtext("zs:recordSchema", namespaces=NS) == "info:srw/schema/1/marcxml-v1.1"
    assert record.findtext("zs:recordPosition", namespaces=NS) == "1"
    assert record.find("zs:recordData/marc:record", NS) is not None

    root = sr(sru, "dc.title = 猫的历史", recordSchema="marcxchange")
    exchange = root.find(".//mx:record", NS)
    assert (exchange.get("format"), exchange.get("type")) == ("UNIMARC", "Bibliographic")

    root = sr(sru, "dc.title = 猫的历史", recordSchema="info:srw/schema/1/dc-v1.1")
    assert root.findtext(".//dc:title", namespaces=NS) == "猫的历史"

    # recordPacking=string: the record is escaped text that parses to the same record
    root = sr(sru, 'dc.title = "angle"', recordSchema="marcxml", recordPacking="string")
    data = root.find(".//zs:recordData", NS)
    assert len(data) == 0 and data.text.startswith("<record")
    assert '<angle> & "quotes"' in "".join(xml(data.text.encode()).itertext())

    # MARC 21 records stay MARC 21 (leader/09 a) in MARCXML
    root = sr(sru, "dc.title = pride", recordSchema="marcxml")
    leader = root.findtext(".//marc:leader", namespaces=NS)
    assert leader[9] == "a"


def test_unasked_each_record_comes_in_the_marc_schema_that_labels_it_truly(
    sru: SruService,
) -> None:
    cnmarc = sr(sru, "dc.title = 猫的历史").find("zs:records/zs:record", NS)
    assert cnmarc.findtext("zs:recordSchema", namespaces=NS) == SCHEMAS["marcxchange"].identifier
    assert cnmarc.find(".//mx:record", NS).get("format") == "UNIMARC"
    marc21 = sr(sru, "dc.title = pride").find("zs:records/zs:record", NS)
    assert marc21.findtext("zs:recordSchema", namespaces=NS) == SCHEMAS["marcxml"].identifier
    assert marc21.find(".//marc:record", NS) is not None


def test_all_records_for_harvesting(sru: SruService) -> None:
    with sru.store.read() as tx:
        row = tx.one("SELECT count(*) FROM bib_records WHERE database = 'main'")
    assert row is not None
    count = row[0]
    everything = sr(sru, "cql.allRecords = 1", maximumRecords=0)
    assert diagnostics(everything) == [] and total(everything) == count > 0
    without = sr(sru, "cql.allRecords = 1 not dc.title = 猫", maximumRecords=0)
    cats = total(sr(sru, "dc.title = 猫", maximumRecords=0))
    assert total(without) == count - cats and cats > 0
    paged = sr(sru, "cql.allRecords = 1 sortBy dc.title", maximumRecords=3, startRecord=2)
    assert len(control_numbers(paged)) == 3
    assert (
        total(sr(sru, "cql.allIndexes = 猫", maximumRecords=0))
        == total(sr(sru, "cql.anyIndexes = 猫", maximumRecords=0))
        == total(sr(sru, "猫", maximumRecords=0))
    )


def test_sru_2_0_namespaces_and_escaping(sru: SruService) -> None:
    root = ask(sru, "main", query="历史", recordXMLEscaping="string", maximumRecords=1)
    assert root.tag == f"{{{NS['zs2']}}}searchRetrieveResponse"
    assert root.find("zs2:version", NS) is None  # dropped in 2.0
    record = root.find("zs2:records/zs2:record", NS)
    assert record.findtext("zs2:recordXMLEscaping", namespaces=NS) == "string"
    assert root.findtext("zs2:nextRecordPosition", namespaces=NS) == "2"


def test_sorting_sortby_and_sortkeys(sru: SruService) -> None:
    query = "dc.title = 中国发展报告"
    by_cql = sr(sru, query + " sortBy dc.date/sort.descending", maximumRecords=20)
    descending = control_numbers(by_cql)
    by_keys = sr(sru, query, version="1.1", sortKeys="dc.date,,0", maximumRecords=20)
    assert control_numbers(by_keys) == descending
    ascending = sr(sru, query, version="1.1", sortKeys="date,,1", maximumRecords=20)
    expected = search(
        sru.store, cql_to_query(query + " sortBy dc.date"), "main", availability=RULE, limit=20
    )
    assert control_numbers(ascending) == [h.record_id for h in expected.hits]
    # sortKeys is not an SRU 1.2 parameter
    assert diagnostics(sr(sru, query, sortKeys="date,,1")) == [(8, "sortKeys")]
    assert diagnostics(sr(sru, query + " sortBy dc.publisher"))[0][0] == 88


def test_result_sets_page_without_searching_again(sru: SruService) -> None:
    first = sr(sru, "dc.title = 中国发展报告", resultSetTTL=60, maximumRecords=2)
    set_id = first.findtext("zs:resultSetId", namespaces=NS)
    assert set_id and first.findtext("zs:resultSetIdleTime", namespaces=NS) == "60"
    everything = sr(sru, "dc.title = 中国发展报告", maximumRecords=20)
    expected = control_numbers(everything)
    assert len(expected) > 5  # more than the test store keeps per set (5)
    pages = []
    for start in range(1, len(expected) + 1, 2):
        page = sr(sru, f'cql.resultSetId = "{set_id}"', startRecord=start, maximumRecords=2)
        assert total(page) == len(expected)
        pages += control_numbers(page)
    assert pages == expected
    assert diagnostics(sr(sru, 'cql.resultSetId = "nope"')) == [(51, "nope")]
    resorted = sr(sru, f'cql.resultSetId = "{set_id}" sortBy dc.title')
    assert [number for number, _ in diagnostics(resorted)] == [80]
    assert [n for n, _ in diagnostics(sr(sru, f'cql.resultSetId any "{set_id}"'))] == [19]
    combined = sr(sru, f'cql.resultSetId = "{set_id}" and dc.title = x')
    assert diagnostics(combined)[0][0] == 55
    # another database cannot read it
    assert diagnostics(sr(sru, f'cql.resultSetId = "{set_id}"', "japanese"))[0][0] == 51


def test_scan_lists_headings_with_counts(sru: SruService) -> None:
    root = ask(sru, "main", version="1.2", operation="scan", scanClause="dc.title = 中国")
    assert root.tag == f"{{{NS['zs']}}}scanResponse"
    terms = [
        (
            t.findtext("zs:value", namespaces=NS),
            int(text_of(t, "zs:numberOfRecords")),
        )
        for t in root.iterfind("zs:terms/zs:term", NS)
    ]
    assert terms and all(count >= 1 for _, count in terms)
    assert terms[0][0].startswith("中国")
    two = ask(sru, "japanese", scanClause="dc.creator = a", maximumTerms=3, responsePosition=1)
    assert two.tag == f"{{{NS['scan2']}}}scanResponse"
    assert len(two.findall("scan2:terms/scan2:term", NS)) == 3
    assert diagnostics(ask(sru, "main", scanClause="bath.isbn = 7"))[0][0] == 16
    assert diagnostics(ask(sru, "main", scanClause="dc.title < x"))[0][0] == 19
    assert diagnostics(ask(sru, "main", scanClause="a and b"))[0][0] == 10
    capped = ask(sru, "main", scanClause="title=a", maximumTerms=5000)
    assert (121, "maximumTerms") in diagnostics(capped)
    assert len(capped.findall("scan2:terms/scan2:term", NS)) > 1


def test_availability_change_shows_in_the_next_holdings_record(sru: SruService) -> None:
    def copies(schema: str) -> etree._Element:
        return sr(sru, "dc.title = 猫的历史", recordSchema=schema)

    before = copies("holdings").find(".//h:holdings", NS)
    assert (before.get("copies"), before.get("available")) == ("2", "2")
    outcome = sru.engine.checkout(READER, "SRU-C1")
    assert outcome.ok, outcome.message("en")
    assert outcome.due_at is not None  # a checkout that went through has a due date
    after = copies("holdings").find(".//h:holdings", NS)
    assert after.get("available") == "1"
    loaned = after.find("h:copy[@barcode='SRU-C1']", NS)
    assert loaned.get("available") == "false"
    assert loaned.findtext("h:dueDate", namespaces=NS) == outcome.due_at[:10]
    assert loaned.findtext("h:status", namespaces=NS) == "借出"
    opac = copies("opacxml").find(".//opacRecord", NS)
    circulations = {
        c.findtext("itemId"): (c.find("availableNow").get("value"), c.findtext("availabilityDate"))
        for c in opac.iter("circulation")
    }
    assert circulations == {"SRU-C1": ("0", outcome.due_at[:10]), "SRU-C2": ("1", None)}


def test_explain_lists_indexes_schemas_and_limits(sru: SruService) -> None:
    for version, ns in (("1.2", NS["zs"]), ("2.0", NS["zs2"])):
        root = ask(sru, "japanese", version=version, operation="explain")
        assert root.tag == f"{{{ns}}}explainResponse"
        explain = root.find(".//zr:explain", NS)
        assert explain.findtext("zr:serverInfo/zr:database", namespaces=NS) == "japanese"
        assert explain.find("zr:serverInfo", NS).get("version") == version
        titles = explain.findall("zr:databaseInfo/zr:title", NS)
        assert [(t.get("lang"), t.text) for t in titles] == [
            ("zh", "日文书目"),
            ("en", "Japanese catalogue"),
        ]
        title = explain.find("zr:indexInfo/zr:index[@id='title']", NS)
        assert (title.get("scan"), title.get("sort")) == ("true", "true")
        assert {t.text for t in title.findall("zr:title", NS)} == {"题名", "Title"}
        names = {(n.get("set"), n.text) for n in title.iterfind("zr:map/zr:name", NS)}
        assert ("dc", "title") in names and ("bath", "keyTitle") in names
        schemas = {s.get("name") for s in explain.iterfind("zr:schemaInfo/zr:schema", NS)}
        assert {"marcxml", "marcxchange", "dc", "opacxml", "holdings"} <= schemas
        config = explain.find("zr:configInfo", NS)
        assert config.findtext("zr:setting[@type='maximumRecords']", namespaces=NS) == "100"
        assert config.findtext("zr:default[@type='numberOfRecords']", namespaces=NS) == "10"
    bare = ask(sru, "main")  # a bare base URL is explain
    assert bare.tag == f"{{{NS['zs2']}}}explainResponse"


QUERY_REFUSALS = [
    ("dc.title = (", 10),
    ("nope.title = x", 15),
    ("dc.nonsense = x", 16),
    ("dc.title encloses x", 19),
    ("dc.title =/fuzzy x", 20),
    ("dc.title = a*b", 28),
    ("dc.title = ^abc", 31),
    ("dc.title = a prox b", 39),
    ("dc.title = a and/rel.x b", 46),
    ("dc.date = nineteen", 36),
    ('dc.title = ""', 27),
    ('dc.title = "\\q"', 26),
]


def test_query_refusals_are_the_right_diagnostics(sru: SruService) -> None:
    for query, number in QUERY_REFUSALS:
        root = sr(sru, query)
        assert total(root) == 0, query
        assert [n for n, _ in diagnostics(root)] == [number], query


def test_paging_past_the_end_and_caps(sru: SruService) -> None:
    assert diagnostics(sr(sru, "历史", startRecord=5))[0] == (61, "5")
    assert diagnostics(sr(sru, "历史", startRecord=5, maximumRecords=0)) == []
    counted = sr(sru, "历史", maximumRecords=0)
    assert total(counted) == 4 and counted.find("zs:records", NS) is None
    capped = build_service(sru.store, sru.engine, Limits(max_records=2))
    root = sr(capped, "历史", maximumRecords=50)
    assert [n for n, _ in diagnostics(root)] == [6]  # told, not silently truncated
    assert len(root.findall("zs:records/zs:record", NS)) == 2
    assert root.findtext("zs:nextRecordPosition", namespaces=NS) == "3"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "version",
                "operation",
                "query",
                "startRecord",
                "maximumRecords",
                "recordSchema",
                "recordPacking",
                "scanClause",
                "sortKeys",
                "stylesheet",
                "x-y",
                "bogus",
            ]
        ),
        st.text(max_size=30),
        max_size=6,
    )
)
def test_hostile_parameters_always_get_an_sru_document(sru: SruService, params) -> None:
    reply = sru.handle("main", urlencode(params).encode("ascii"))
    root = xml(reply.body)
    assert isinstance(root.tag, str)  # a parsed document's root is an element, named by str
    assert root.tag.rsplit("}", 1)[1] in (
        "searchRetrieveResponse",
        "scanResponse",
        "explainResponse",
    )
    assert (1, "") not in diagnostics(root)  # never our own failure


def test_record_order_when_configured(sru: SruService) -> None:
    from gateway.catalogue.query import Query, SortKey

    unranked = build_service(sru.store, sru.engine, Limits(default_sort="record"))
    query = cql_to_query("dc.title = 中国发展报告")
    expected = search(
        sru.store, Query(query.root, (SortKey("record"),)), "main", availability=RULE, limit=50
    )
    root = sr(unranked, "dc.title = 中国发展报告", maximumRecords=50)
    assert control_numbers(root) == [h.record_id for h in expected.hits]
    pks = [h.record_pk for h in expected.hits]
    assert pks == sorted(pks)
    # an explicit sortBy still wins
    by_date = sr(unranked, "dc.title = 中国发展报告 sortBy dc.date", maximumRecords=50)
    assert control_numbers(by_date) != control_numbers(root)


def test_availability_limit_from_the_local_context_set(sru: SruService) -> None:
    query = "dc.title = 猫的历史 and local.available = true"
    assert total(sr(sru, query)) == 1
    assert (
        total(
            sr(
                sru,
                '> l = "info:srw/cql-context-set/libgate/local-1.0" l.available = 1 '
                "and dc.title = 猫的历史",
            )
        )
        == 1
    )
    for barcode in ("SRU-C1", "SRU-C2"):
        assert sru.engine.checkout(READER, barcode).ok
    assert total(sr(sru, query)) == 0
    assert total(sr(sru, "dc.title = 猫的历史")) == 1
    assert diagnostics(sr(sru, "local.available = true"))[0][0] == 48
    assert diagnostics(sr(sru, "dc.title = 猫 or local.available = true"))[0][0] == 48
    assert diagnostics(sr(sru, "dc.title = 猫 and local.available = maybe"))[0][0] == 36
    assert diagnostics(sr(sru, "dc.title = 猫 and local.available < 1"))[0][0] == 19
    explain = ask(sru, "main", version="1.2", operation="explain")
    index = explain.find(".//zr:index[@id='available']", NS)
    assert index.findtext("zr:map/zr:name", namespaces=NS) == "available"


def test_characters_xml_cannot_carry_are_dropped_from_echoed_details(sru: SruService) -> None:
    root = sr(sru, "dc.x\ufffe\uffff\x01y = 1")  # echoed in the diagnostic's details
    assert diagnostics(root)[0] == (16, "dc.xy")


def test_server_choice_reads_words_as_the_search_box_does(sru: SruService) -> None:
    # SRU stays strict CQL, but cql.serverChoice gets the same word handling: folded script,
    # pinyin, initials.
    for query in ("mingdai", "cql.serverChoice = jqzgmds", '"jian qiao"', "劍橋"):
        root = sr(sru, query, maximumRecords=100)
        assert diagnostics(root) == [], query
        assert control_numbers(root)[0] == "SHL000000002", query
    root = sr(sru, "剑桥 明代")  # free text is not CQL: SRU answers with its diagnostic
    assert diagnostics(root)[0][0] == 10  # query syntax error


def test_explain_describes_how_words_are_read(sru: SruService) -> None:
    root = ask(sru, "main", version="1.2", operation="explain")
    described = {
        d.get("lang"): d.text or "" for d in root.iterfind(".//zr:databaseInfo/zr:description", NS)
    }
    assert "pinyin" in described["en"] and "図書館" in described["en"]
    assert "拼音" in described["zh"]
