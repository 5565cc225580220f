"""Request parsing without a server: version negotiation, operations, and the diagnostics
table (parameters in → `info:srw/diagnostic/1/N` and details out)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from gateway.cql import ast
from sru.request import (
    ExplainRequest,
    Limits,
    RequestRefused,
    ScanRequest,
    SearchRetrieveRequest,
    decode_parameters,
    parse_request,
)
from sru.versions import V1_1, V1_2, V2_0, negotiate

LIMITS = Limits(max_records=100, max_terms=50, max_result_set_ttl=300)


def parse(**params: str):
    return parse_request({k: [v] for k, v in params.items()}, LIMITS)


def refusal(**params: str) -> tuple[int, str, str, str]:
    with pytest.raises(RequestRefused) as caught:
        parse(**params)
    error = caught.value
    return error.diagnostic.number, error.diagnostic.details, error.version.text, error.operation


@pytest.mark.parametrize(
    ("requested", "answered", "acceptable"),
    [
        (None, "2.0", True),  # OASIS SRU 2.0 requests carry no version
        ("1.1", "1.1", True),
        ("1.2", "1.2", True),
        ("2.0", "2.0", True),
        ("1.5", "1.2", True),  # "less than, or preferably equal to" the requested version
        ("3.0", "2.0", True),
        ("1.0", "1.1", False),  # nothing at or below it: diagnostic 5
        ("abc", "2.0", False),
        ("", "2.0", False),
    ],
)
def test_version_negotiation(requested: str | None, answered: str, acceptable: bool) -> None:
    version, ok = negotiate(requested)
    assert (version.text, ok) == (answered, acceptable)


def test_operations_by_version() -> None:
    assert isinstance(parse(), ExplainRequest)  # a bare base URL
    assert parse().version is V2_0
    assert isinstance(parse(version="1.2"), ExplainRequest)
    assert isinstance(parse(query="cat"), SearchRetrieveRequest)  # 2.0: by parameters
    assert isinstance(parse(scanClause="title=a"), ScanRequest)
    request = parse(version="1.1", operation="searchRetrieve", query="cat")
    assert isinstance(request, SearchRetrieveRequest) and request.version is V1_1
    assert parse(version="1.2", operation="scan", scanClause="a").version is V1_2


# parameters → (diagnostic number, details); answered in the version and as the operation
DIAGNOSTICS = [
    ({"version": "1.0"}, 5, "2.0"),
    ({"version": "1.2", "operation": "bogus"}, 4, "bogus"),
    ({"version": "1.2", "query": "cat"}, 7, "operation"),
    ({"version": "1.2", "operation": "searchRetrieve"}, 7, "query"),
    ({"version": "1.2", "operation": "searchRetrieve", "query": "  "}, 7, "query"),
    ({"version": "1.2", "operation": "scan"}, 7, "scanClause"),
    ({"version": "1.2", "operation": "explain", "query": "x"}, 8, "query"),
    ({"query": "cat", "bogus": "1"}, 8, "bogus"),
    ({"query": "cat", "facetLimit": "1"}, 8, "facetLimit"),
    (
        {"version": "1.2", "operation": "searchRetrieve", "query": "c", "sortKeys": "t"},
        8,
        "sortKeys",
    ),
    (
        {"version": "1.2", "operation": "searchRetrieve", "query": "c", "recordXPath": "/"},
        8,
        "recordXPath",
    ),
    (
        {"version": "1.1", "operation": "searchRetrieve", "query": "c", "recordXPath": "/"},
        72,
        "recordXPath",
    ),
    ({"query": "cat", "startRecord": "0"}, 6, "startRecord"),
    ({"query": "cat", "startRecord": "x"}, 6, "startRecord"),
    ({"query": "cat", "startRecord": "99999999999999999999"}, 6, "startRecord"),
    ({"query": "cat", "maximumRecords": "-1"}, 6, "maximumRecords"),
    ({"query": "cat", "resultSetTTL": "soon"}, 6, "resultSetTTL"),
    ({"query": "cat", "recordSchema": "mods"}, 66, "mods"),
    (
        {"version": "1.2", "operation": "searchRetrieve", "query": "c", "recordPacking": "json"},
        71,
        "json",
    ),
    ({"query": "cat", "recordXMLEscaping": "base64"}, 71, "base64"),
    ({"query": "cat", "recordPacking": "unpacked"}, 71, "unpacked"),
    ({"query": "cat", "queryType": "pqf"}, 11, "pqf"),
    ({"query": "cat", "renderedBy": "server"}, 6, "renderedBy"),
    ({"query": "cat", "httpAccept": "application/json"}, 6, "httpAccept"),
    ({"query": "cat", "stylesheet": 'a"><x'}, 111, 'a"><x'),
    ({"query": "cat", "sortKeys": "title,,2"}, 6, "sortKeys"),
    ({"query": "cat", "sortKeys": "title,,1,1"}, 91, "caseSensitive"),
    ({"query": "cat", "sortKeys": "title,,1,0,abort"}, 92, "abort"),
    ({"scanClause": "a", "maximumTerms": "0"}, 6, "maximumTerms"),
    ({"scanClause": "a", "maximumTerms": "5", "responsePosition": "7"}, 120, "7"),
]


@pytest.mark.parametrize(("params", "number", "details"), DIAGNOSTICS)
def test_diagnostics_table(params: dict[str, str], number: int, details: str) -> None:
    got_number, got_details, _version, _operation = refusal(**params)
    assert (got_number, got_details) == (number, details)


def test_refusals_say_how_to_answer() -> None:
    assert refusal(version="1.2", operation="scan")[2:] == ("1.2", "scan")
    assert refusal(version="1.1", operation="bogus")[2:] == ("1.1", "searchRetrieve")
    assert refusal(version="1.0")[2] == "1.1"
    with pytest.raises(RequestRefused) as caught:
        parse_request({"query": ["a", "b"]}, LIMITS)
    assert (caught.value.diagnostic.number, caught.value.diagnostic.details) == (6, "query")


def test_caps_are_applied_and_said() -> None:
    request = parse(query="cat", maximumRecords="1000")
    assert request.maximum_records == 100
    assert [(w.number, w.details) for w in request.warnings] == [(6, "maximumRecords")]
    scan = parse(scanClause="a", maximumTerms="999")
    assert scan.maximum_terms == 50 and scan.warnings[0].number == 121
    assert parse(query="cat", resultSetTTL="99999").result_set_ttl == 300
    no_sets = parse_request({"query": ["c"], "resultSetTTL": ["60"]}, Limits(max_result_set_ttl=0))
    assert no_sets.result_set_ttl == 0 and no_sets.warnings[0].number == 50


def test_defaults_and_lenient_spellings() -> None:
    request = parse(query="cat")
    assert (request.start_record, request.maximum_records) == (1, 10)
    assert request.record_schema is None and request.record_escaping == "xml"  # "auto"
    assert parse(query="c", recordSchema="info:srw/schema/1/dc-v1.1").record_schema.name == "dc"
    assert parse(query="c", recordSchema="UNIMARC").record_schema.name == "marcxchange"
    assert parse(query="c", recordPacking="string").record_escaping == "string"  # 1.x habit
    assert parse(query="c", operation="SEARCHRETRIEVE").query == "c"
    assert parse(query="c", **{"x-info": "ignored"}).query == "c"
    keys = parse(query="c", sortKeys="dc.date,,0 title,,1,0,lowValue").sort_keys
    assert keys == (
        ast.SortKey("dc.date", (ast.Modifier("sort.descending"),)),
        ast.SortKey("title", (ast.Modifier("sort.ascending"), ast.Modifier("sort.missingLow"))),
    )


def test_decode_parameters() -> None:
    raw = urlencode({"query": "dc.title = 猫", "version": "1.2"}).encode("ascii")
    assert decode_parameters(raw) == {"query": ["dc.title = 猫"], "version": ["1.2"]}
    assert decode_parameters(b"a=1&a=2&b=") == {"a": ["1", "2"], "b": [""]}
    # Raw UTF-8 (a client that does not percent-encode) is read; raw GBK is not UTF-8.
    assert decode_parameters("query=红楼梦".encode()) == {"query": ["红楼梦"]}
    for bad in (b"query=%ff%fe", "query=红楼梦".encode("gbk"), b"&".join([b"a=1"] * 100)):
        with pytest.raises(RequestRefused) as caught:
            decode_parameters(bad)
        assert caught.value.diagnostic.number == 6
