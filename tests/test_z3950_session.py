"""The Z39.50 session, sans I/O: APDU bytes in, APDU bytes out, over a real catalogue.

Init negotiation, Search (Bib-1 attributes, CJK terms, piggy-backed records), Present (ranges,
message size, every record syntax), Scan, Sort, Delete, Close, and the diagnostics of
everything refused; the session keeps going after each refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.catalogue.search import search_ids
from gateway.circulation.policy import Policy
from gateway.config import Settings
from gateway.cql.to_query import cql_to_query
from gateway.store import Store, open_store
from gateway.store.migrate import migrate
from gateway.z3950_codec import oids
from tests import z3950_support as z
from z3950 import codec
from z3950.diagnostics import Z3950Error
from z3950.session import Limits, Session, decoder

RULE = Policy.from_settings(Settings()).availability  # the default policy's R2


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("z3950-session")
    store = open_store(f"sqlite:///{path / 'z.db'}")
    migrate(store)
    z.load_catalogue(store, path)
    yield store
    store.close()


def new_session(store: Store, limits: Limits | None = None, **init: Any) -> Session:
    session = Session(z.catalogue_service(store), limits or Limits(), "test")
    name, value = z.answer(session.handle(z.init(**init)).data)
    assert name == "initResponse" and value["result"]
    return session


def ask(session: Session, apdu: bytes) -> tuple[str, dict[str, Any]]:
    reply = session.handle(apdu)
    assert not reply.close, reply
    return z.answer(reply.data)


def records_of(value: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(syntax OID, octets or ASN.1 bytes) of each retrieval record; ("diag", condition)."""
    found = []
    kind, entries = value["records"]
    assert kind == "responseRecords"
    for entry in entries:
        choice, record = entry["record"]
        if choice == "surrogateDiagnostic":
            found.append(("diag", str(record[1]["condition"]).encode()))
        else:
            found.append((record["direct-reference"], record["encoding"][1]))
    return found


# --- Init ---------------------------------------------------------------------------------------


def test_init_negotiates_version_sizes_options_and_utf8(catalogue: Store) -> None:
    session = Session(z.catalogue_service(catalogue), Limits(preferred_message_size=65536))
    name, value = z.answer(session.handle(z.init(charset="UTF-8", size=1 << 26)).data)
    assert name == "initResponse" and value["result"] is True
    assert value["preferredMessageSize"] == 65536  # ours is smaller: it wins
    assert value["implementationName"] == b"libgate Z39.50 target"
    assert value["protocolVersion"][0][0] & 0xE0 == 0xE0  # versions 1, 2, 3
    negotiation = value["otherInfo"][0]["information"][1]
    assert negotiation["direct-reference"] == oids.CHARSET_NEGOTIATION_3
    choice, response = codec.schema().decode(
        "CharSetandLanguageNegotiation", negotiation["encoding"][1]
    )
    assert choice == "response"
    assert response["selectedCharSets"] == ("iso10646", {"encodingLevel": oids.ISO10646_UTF8})


def test_init_without_utf8_proposal_answers_no_negotiation(catalogue: Store) -> None:
    session = Session(z.catalogue_service(catalogue), Limits())
    _, value = z.answer(session.handle(z.init(charset="ISO-8859-1")).data)
    assert "otherInfo" not in value
    # Still: UTF-8 terms are read as UTF-8, and GB18030 bytes (older Chinese clients) too.
    _, found = ask(session, z.search(z.term("猫", use=4)))
    assert found["resultCount"] == 1
    _, found = ask(session, z.search(z.term("历史".encode("gb18030"), use=4)))
    assert found["resultCount"] == 2


def test_terms_of_a_client_that_negotiates_nothing_in_gbk_that_is_also_utf8(
    catalogue: Store,
) -> None:
    session = new_session(catalogue)
    # 猫 in GBK is C3 A8, which is also UTF-8 ("è"): it is read as GBK all the same.
    assert "猫".encode("gbk").decode("utf-8") == "è"
    _, found = ask(session, z.search(z.term("猫".encode("gbk"), use=4)))
    assert found["resultCount"] == 1
    assert b"Z-CAT-ZH" in records_of(ask(session, z.present(1, 1))[1])[0][1]


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("学习".encode("gbk"), "学习"),  # UTF-8 would be "ѧϰ"
        ("学".encode("gbk"), "学"),  # "ѧ"
        ("猫".encode("gbk"), "猫"),  # "è"
        ("历史".encode("gbk"), "历史"),  # not UTF-8 at all
        ("学习".encode(), "学习"),
        ("café".encode(), "café"),  # GBK would read "caf茅"
        ("Müller".encode(), "Müller"),  # "M眉ller"
        ("Dvořák".encode(), "Dvořák"),
        ("Tōkyō".encode(), "Tōkyō"),
        ("Москва".encode(), "Москва"),  # "袦芯褋泻胁邪"
        ("Ибн Сина".encode(), "Ибн Сина"),
        ("ПУШКИН".encode(), "ПУШКИН"),
        ("Ελλάδα".encode(), "Ελλάδα"),
        ("שלום".encode(), "שלום"),
        ("é".encode(), "茅"),  # alone, as GBK (the one ambiguity we accept)
        (b"abc", "abc"),
        (b"\xff\xfe", "ÿþ"),  # neither: Latin-1
    ],
)
def test_decoder_without_negotiation(data: bytes, text: str) -> None:
    assert decoder("gb18030")(data) == text


def test_decoder_with_utf8_negotiated_is_strict(catalogue: Store) -> None:
    assert decoder("gb18030", utf8=True)("学习".encode("gbk")) == "ѧϰ"
    with pytest.raises(Z3950Error) as refused:
        decoder("gb18030", utf8=True)("历史".encode("gbk"))
    assert refused.value.diagnostic.condition == 125
    session = new_session(catalogue, charset="UTF-8")
    _, value = ask(session, z.search(z.term("历史".encode("gbk"), use=4)))
    assert z.diagnostic(value) == (125, b"not UTF-8 at byte 0")
    assert ask(session, z.search(z.term("猫".encode("gbk"), use=4)))[1]["resultCount"] == 0
    assert ask(session, z.search(z.term("猫", use=4)))[1]["resultCount"] == 1


def test_version_2_client(catalogue: Store) -> None:
    session = new_session(catalogue, versions=(1, 2))
    assert session.version == 2
    _, value = ask(session, z.search(z.term("x", use=9999)))
    assert value["records"][1]["addinfo"] == ("v2Addinfo", "9999")


def test_init_without_a_common_version_is_refused(catalogue: Store) -> None:
    session = Session(z.catalogue_service(catalogue), Limits())
    reply = session.handle(z.init(versions=(5,)))
    assert reply.close
    assert z.answer(reply.data)[1]["result"] is False


def test_only_init_or_close_before_init(catalogue: Store) -> None:
    session = Session(z.catalogue_service(catalogue), Limits())
    reply = session.handle(z.search(z.term("猫", use=4)))
    assert reply.close and reply.outcome == "protocol-error"
    name, value = z.answer(reply.data)
    assert name == "close" and value["closeReason"] == 6
    assert b"before Init" in value["diagnosticInformation"]


# --- Integers past 32 bits ----------------------------------------------------------------

HUGE = 1 << 20000  # 6021 digits: str() refuses it (Python's 4300-digit limit)


def huge_term(attribute_type: int = 1, value: int = 4, term: Any = ("general", b"x")) -> Any:
    attributes = [{"attributeType": attribute_type, "attributeValue": ("numeric", value)}]
    return ("op", ("attrTerm", {"attributes": attributes, "term": term}))


@pytest.mark.parametrize(
    ("apdu", "condition"),
    [
        (z.present(HUGE, 1), 13),
        (z.present(-HUGE, 1), 13),
        (z.present(HUGE, 0), 13),
        (z.present(1, -HUGE), 13),
        (z.search(z.term("x", use=HUGE)), 114),
        (z.search(z.term("x", use=-HUGE)), 114),
        (z.search(z.term("x", use=4, relation=HUGE)), 117),
        (z.search(z.term("x", use=4, structure=-HUGE)), 118),
        (z.search(z.term("x", use=4, truncation=HUGE)), 120),
        (z.search(z.term("x", use=4, completeness=HUGE)), 122),
        (z.search(huge_term(attribute_type=HUGE)), 113),
        (z.search(huge_term(term=("numeric", HUGE))), 125),
        (z.scan("x", HUGE), 114),
        (z.scan("x", 4, position=HUGE), 233),
        (z.scan("x", 4, position=-HUGE), 233),
        (z.scan("x", 4, count=-HUGE), 228),
        (z.sort("default", "s", (31, HUGE)), 214),
        (z.sort("default", "s", (HUGE, 0)), 207),
    ],
)
def test_integers_past_32_bits_get_their_diagnostic(
    catalogue: Store, apdu: bytes, condition: int
) -> None:
    session = new_session(catalogue)
    ask(session, z.search(z.term("中国", use=1016)))
    name, value = ask(session, apdu)
    if name == "scanResponse":
        diagnostic = value["entries"]["nonsurrogateDiagnostics"][0][1]
    elif name == "sortResponse":
        diagnostic = value["diagnostics"][0][1]
    else:
        kind, diagnostic = value["records"]
        assert kind == "nonSurrogateDiagnostic"
    assert diagnostic["condition"] == condition
    assert b"out of range" in diagnostic["addinfo"][1]
    assert ask(session, z.present(1, 1))[1]["numberOfRecordsReturned"] == 1  # it goes on


def test_integers_past_32_bits_where_any_size_will_do(catalogue: Store) -> None:
    session = new_session(catalogue, size=HUGE)  # Init: ours is smaller, so ours
    assert session.preferred_message_size == Limits().preferred_message_size
    _, found = ask(session, z.search(z.term("中国", use=1016), small=HUGE, large=HUGE))
    assert found["numberOfRecordsReturned"] == found["resultCount"] >= 4  # a small set
    _, page = ask(session, z.present(1, HUGE))  # as many as there are
    assert page["numberOfRecordsReturned"] == found["resultCount"]
    _, many = ask(session, z.scan("历史", 4, count=HUGE))
    assert many["scanStatus"] == 0
    reply = session.handle(z.close(HUGE))
    assert reply.close and z.answer(reply.data) == ("close", {"closeReason": 0})


# --- Search ---------------------------------------------------------------------------------


# Each RPN query beside the CQL query that means the same: both translate into the one query
# model, so they must find the same records in the same order.
@pytest.mark.parametrize(
    ("rpn", "database", "cql", "count"),
    [
        (z.term("历史", use=4), "main", "dc.title = 历史", 2),
        (z.term("猫", use=4), "japanese", "dc.title = 猫", 1),
        (z.term("吾輩は猫", use=4, structure=1), "japanese", 'dc.title adj "吾輩は猫"', 1),
        (z.term("历史", use=1016), "main", "历史", 4),
        (z.term("历史", use=1017), "main", "cql.serverChoice = 历史", 4),
        (
            z.term("中国历史地图集 第七册 元·明时期", use=4, completeness=3),
            "main",
            'dc.title == "中国历史地图集 第七册 元·明时期"',
            1,
        ),
        (
            z.term("剑桥中国明代史 上卷", use=4, structure=3),
            "main",
            'dc.title == "剑桥中国明代史 上卷"',
            1,
        ),
        (
            z.term("中国历史地图集", use=4, completeness=3),
            "main",
            'dc.title == "中国历史地图集"',
            0,
        ),
        (z.term("历", use=4, truncation=1), "main", "dc.title = 历*", 3),
        (z.term("Ch", use=1003, truncation=1), "main", "dc.creator = Ch*", 1),
        (z.term("Ch#", use=1003, truncation=101), "main", "dc.creator = Ch*", 1),
        (z.term("Ch?", use=1003, truncation=104), "main", "dc.creator = Ch*", 1),
        (z.term("978-7-02-000220-7", use=7), "main", "bath.isbn = 9787020002207", 1),
        (z.term("9787020002207", use=7, structure=1), "main", "bath.isbn = 9787020002207", 1),
        (z.term("SHL000000004", use=12), "main", "rec.identifier = SHL000000004", 1),
        (z.term("K992.6", use=20), "main", "clc = K992.6", 1),
        (z.term("K99", use=9002, truncation=1), "main", "clc = K99*", 1),
        (z.term("2000", use=31, relation=4), "main", "dc.date >= 2000", 3),
        (z.term("1996", use=31, relation=3, structure=4), "main", "dc.date = 1996", 1),
        (z.term("1996", use=31, relation=6), "main", "dc.date <> 1996", 8),
        (z.term("chi", use=54), "main", "dc.language = chi", 7),
        (z.term("54122100600031", use=9003), "main", "barcode = 54122100600031", 1),
        (
            z.boolean("and", z.term("中国", use=4), z.term("历史", use=4)),
            "main",
            "dc.title = 中国 and dc.title = 历史",
            1,
        ),
        (
            z.boolean("or", z.term("猫", use=4), z.term("地图", use=4)),
            "main",
            "dc.title = 猫 or dc.title = 地图",
            2,
        ),
        (
            z.boolean("and-not", z.term("中国", use=4), z.term("历史", use=4)),
            "main",
            "dc.title = 中国 not dc.title = 历史",
            2,
        ),
        (z.term("中国 历史", use=4, structure=105), "main", 'dc.title any "中国 历史"', 4),
        (z.term("中国 历史", use=4, structure=6), "main", 'dc.title all "中国 历史"', 1),
    ],
)
def test_search_attributes_mean_what_cql_means(
    catalogue: Store, rpn: tuple[str, Any], database: str, cql: str, count: int
) -> None:
    # Both ranked, so the order must agree too (unranked order has its own test below).
    session = new_session(catalogue, Limits(default_sort="relevance"))
    name, value = ask(session, z.search(rpn, database=database))
    assert name == "searchResponse"
    assert value["searchStatus"] is True, value
    total, expected = search_ids(
        catalogue, cql_to_query(cql), database, availability=RULE, limit=100
    )
    assert value["resultCount"] == total == count
    assert session.result_sets["default"].record_pks == tuple(expected)


def test_hits_are_ranked_only_when_a_term_asks_with_relation_102(catalogue: Store) -> None:
    session = new_session(catalogue)  # the default: catalogue order unless 102 is sent
    ask(session, z.search(z.term("中国 历史", use=4, structure=105), database="main"))
    unranked = session.result_sets["default"].record_pks
    _total, in_record_order = search_ids(
        catalogue,
        cql_to_query('dc.title any "中国 历史" sortBy local.record'),
        "main",
        availability=RULE,
        limit=100,
    )
    assert unranked == tuple(in_record_order)
    ask(session, z.search(z.term("中国 历史", use=4, structure=105, relation=102), database="main"))
    ranked = session.result_sets["default"].record_pks
    _total, by_relevance = search_ids(
        catalogue, cql_to_query('dc.title any "中国 历史"'), "main", availability=RULE, limit=100
    )
    assert ranked == tuple(by_relevance)
    assert sorted(ranked) == sorted(unranked)


@pytest.mark.parametrize(
    ("rpn", "condition", "addinfo"),
    [
        (z.term("x", use=9999), 114, b"9999"),
        (z.term("x", use=4, relation=100), 117, b"100"),
        (z.term("x", use=4, relation=1), 117, b"1 on a word index"),
        (z.term("x", use=7, relation=2), 117, b"2 on an identifier"),
        (z.term("x", use=4, structure=104), 118, b"104"),
        (z.term("x", use=4, structure=4), 118, b"4"),
        (z.term("x", use=4, position=1), 119, b"1 without complete field (6=3)"),
        (z.term("x", use=4, position=9), 119, b"9"),
        (z.term("x", use=4, truncation=2), 120, b"2"),
        (z.term("a#b", use=4, truncation=101), 120, None),
        (z.term("a#", use=4, truncation=104), 120, None),
        (z.term("x", use=1016, completeness=3), 122, b"3 on any"),
        (z.term("x", use=4, completeness=7), 122, b"7"),
        (z.term("   ", use=4), 125, None),
        (z.term("x" * 300, use=4), 11, None),
        (z.term("abc", use=31), 126, b"abc"),
    ],
)
def test_search_diagnostics(
    catalogue: Store, rpn: tuple[str, Any], condition: int, addinfo: bytes | None
) -> None:
    session = new_session(catalogue)
    _, value = ask(session, z.search(rpn, reference=b"ref-1"))
    assert value["searchStatus"] is False
    assert value["resultSetStatus"] == 3 and value["referenceId"] == b"ref-1"
    found, info = z.diagnostic(value)
    assert found == condition
    if addinfo is not None:
        assert info == addinfo
    # The session goes on.
    assert ask(session, z.search(z.term("猫", use=4)))[1]["resultCount"] == 1


def test_search_diagnostics_outside_terms(catalogue: Store) -> None:
    session = new_session(catalogue)
    cases = [
        (z.search(z.term("x", use=4), database="nosuch"), 235),
        (z.search(z.term("x", use=4), attribute_set="1.2.840.10003.3.2"), 121),
        (z.search(("op", ("resultSet", b"default"))), 18),
    ]
    for apdu, condition in cases:
        assert z.diagnostic(ask(session, apdu)[1])[0] == condition
    # A prox operator is 110.
    prox = (
        "rpnRpnOp",
        {
            "rpn1": z.term("a", use=4),
            "rpn2": z.term("b", use=4),
            "op": (
                "prox",
                {
                    "distance": 1,
                    "ordered": True,
                    "relationType": 2,
                    "proximityUnitCode": ("known", 2),
                },
            ),
        },
    )
    assert z.diagnostic(ask(session, z.search(prox))[1]) == (110, b"prox")
    # A query 40 levels deep is refused by the planner's limit (6), not by a crash.
    deep = z.term("a", use=4)
    for _ in range(40):
        deep = z.boolean("or", deep, z.term("b", use=4))
    assert z.diagnostic(ask(session, z.search(deep))[1])[0] == 6


def test_result_set_names_replace_and_limits(catalogue: Store) -> None:
    session = Session(z.catalogue_service(catalogue), Limits(max_result_sets=2))
    session.handle(z.init())
    assert ask(session, z.search(z.term("猫", use=4), name="a"))[1]["resultCount"] == 1
    refused = ask(session, z.search(z.term("历史", use=4), name="a", replace=False))[1]
    assert z.diagnostic(refused) == (21, b"a")
    assert ask(session, z.search(z.term("历史", use=4), name="b"))[1]["resultCount"] == 2
    # Both sets are there, each with its own hits; "a" is now the one used last.
    assert ask(session, z.present(2, 1, name="b"))[1]["numberOfRecordsReturned"] == 1
    assert records_of(ask(session, z.present(1, 1, name="a"))[1])[0][1].find(b"Z-CAT-ZH") > 0
    # A third set is no refusal (112): the least recently used set ("b") makes room.
    assert ask(session, z.search(z.term("中国", use=1016), name="c"))[1]["searchStatus"] is True
    assert list(session.result_sets) == ["a", "c"]
    assert z.diagnostic(ask(session, z.present(1, 1, name="b"))[1]) == (30, b"b")
    assert ask(session, z.present(1, 1, name="a"))[1]["numberOfRecordsReturned"] == 1
    assert ask(session, z.present(1, 1, name="c"))[1]["numberOfRecordsReturned"] == 1
    # Deleting one makes room; deleting all empties the session.
    _, deleted = ask(session, z.delete("a", "nosuch"))
    assert deleted["deleteOperationStatus"] == 9
    assert deleted["deleteListStatuses"] == [
        {"id": b"a", "status": 0},
        {"id": b"nosuch", "status": 1},
    ]
    assert ask(session, z.search(z.term("x", use=4), name="d"))[1]["searchStatus"] is True
    assert list(session.result_sets) == ["c", "d"]
    assert ask(session, z.delete())[1]["deleteOperationStatus"] == 0
    assert z.diagnostic(ask(session, z.present(1, 1, name="c"))[1]) == (30, b"c")


def test_yaz_client_numbering_its_sets_never_runs_out(catalogue: Store) -> None:
    # yaz-client names each search's set anew ("1", "2", …): past max_result_sets the oldest
    # go, and every search is still answered.
    session = new_session(catalogue, Limits(max_result_sets=10))
    for number in range(1, 26):
        _, found = ask(session, z.search(z.term("历史", use=4), name=str(number)))
        assert found["searchStatus"] is True and found["resultCount"] == 2, number
        _, shown = ask(session, z.present(1, 2, name=str(number)))
        assert shown["numberOfRecordsReturned"] == 2
    assert list(session.result_sets) == [str(n) for n in range(16, 26)]
    assert z.diagnostic(ask(session, z.present(1, 1, name="15"))[1]) == (30, b"15")


def test_sort_uses_and_keeps_sets_least_recently_used_first(catalogue: Store) -> None:
    session = new_session(catalogue, Limits(max_result_sets=3))
    for name in ("a", "b", "c"):
        ask(session, z.search(z.term("中国", use=1016), name=name))
    # Sorting "a" uses it, so the sorted set drops "b", the least recently used.
    assert ask(session, z.sort("a", "s", (31, 1)))[1]["sortStatus"] == 0
    assert list(session.result_sets) == ["c", "a", "s"]
    assert ask(session, z.sort("c", "s", (31, 0)))[1]["sortStatus"] == 0  # replaces "s"
    assert list(session.result_sets) == ["a", "c", "s"]
    _, refused = ask(session, z.sort("b", "t", (31, 0)))
    assert refused["diagnostics"][0][1]["condition"] == 30


def test_piggy_backed_records(catalogue: Store) -> None:
    session = new_session(catalogue)
    # A small set (2 <= small bound 5): every record, in the small set's element set.
    _, small = ask(
        session, z.search(z.term("历史", use=4), small=5, large=10, medium=1, element_set="B")
    )
    assert small["numberOfRecordsReturned"] == 2 and small["nextResultSetPosition"] == 0
    brief = records_of(small)
    assert all(syntax == oids.UNIMARC for syntax, _ in brief)
    assert all(b"\x1e995" not in data and b"995" not in data[24:200] for _, data in brief)
    # A medium set: mediumSetPresentNumber records.
    _, medium = ask(session, z.search(z.term("中国", use=1016), small=1, large=10, medium=2))
    assert medium["numberOfRecordsReturned"] == 2 and medium["nextResultSetPosition"] == 3
    # A negative mediumSetPresentNumber is none, not "all but the last".
    _, negative = ask(session, z.search(z.term("中国", use=1016), small=1, large=10, medium=-1))
    assert negative["numberOfRecordsReturned"] == 0 and "records" not in negative
    # A large set: none.
    _, large = ask(session, z.search(z.term("中国", use=1016), small=0, large=1, medium=5))
    assert large["numberOfRecordsReturned"] == 0 and "records" not in large
    # A bad syntax spoils the records, not the search.
    _, spoilt = ask(session, z.search(z.term("猫", use=4), small=5, syntax=oids.GRS1))
    assert spoilt["searchStatus"] is True and spoilt["resultCount"] == 1
    assert z.diagnostic(spoilt) == (239, b"GRS-1")


# --- Present ----------------------------------------------------------------------------------


def test_present_ranges_and_statuses(catalogue: Store) -> None:
    session = new_session(catalogue)
    _, found = ask(session, z.search(z.term("中国", use=1016)))
    total = found["resultCount"]
    assert total >= 4
    _, page = ask(session, z.present(2, 2))
    assert page["numberOfRecordsReturned"] == 2 and page["nextResultSetPosition"] == 4
    assert page["presentStatus"] == 0
    _, tail = ask(session, z.present(total, 10))  # past the end: what there is
    assert tail["numberOfRecordsReturned"] == 1 and tail["nextResultSetPosition"] == 0
    assert z.diagnostic(ask(session, z.present(total + 1, 1))[1]) == (13, str(total + 1).encode())
    assert z.diagnostic(ask(session, z.present(0, 1))[1])[0] == 13
    assert ask(session, z.present(1, 0))[1]["numberOfRecordsReturned"] == 0


def test_present_past_what_a_set_kept_searches_again(catalogue: Store) -> None:
    session = Session(z.catalogue_service(catalogue), Limits(result_set_max_records=2))
    session.handle(z.init())
    _, found = ask(session, z.search(z.term("中国", use=1016)))
    everything = Session(z.catalogue_service(catalogue), Limits())
    everything.handle(z.init())
    ask(everything, z.search(z.term("中国", use=1016)))
    total = found["resultCount"]
    assert records_of(ask(session, z.present(1, total))[1]) == records_of(
        ask(everything, z.present(1, total))[1]
    )


def test_message_size_limits_a_present(catalogue: Store) -> None:
    session = Session(z.catalogue_service(catalogue), Limits(preferred_message_size=4096))
    session.handle(z.init(size=4096))
    _, found = ask(session, z.search(z.term("chi", use=54)))  # 7 records of about 600 bytes
    _, page = ask(session, z.present(1, found["resultCount"]))
    returned = page["numberOfRecordsReturned"]
    assert 1 <= returned < found["resultCount"]
    assert page["presentStatus"] == 2  # partial-2: the rest would not fit
    assert page["nextResultSetPosition"] == returned + 1


def test_every_record_syntax(catalogue: Store) -> None:
    session = new_session(catalogue)
    ask(session, z.search(z.term("Z-CAT-ZH", use=12)))
    [(syntax, unimarc)] = records_of(ask(session, z.present(syntax=oids.UNIMARC))[1])
    assert syntax == oids.UNIMARC and unimarc.endswith(b"\x1d") and "猫的历史".encode() in unimarc
    [(syntax, native)] = records_of(ask(session, z.present(syntax=None))[1])
    assert (syntax, native) == (oids.UNIMARC, unimarc)
    assert records_of(ask(session, z.present(syntax=oids.USMARC))[1]) == [("diag", b"238")]
    for element_set, marker in (
        (None, b'<controlfield tag="001">Z-CAT-ZH</controlfield>'),
        ("B", "<dc:title>猫的历史</dc:title>".encode()),
        ("marcxchange", b'format="UNIMARC"'),
        ("holdings", b'barcode="Z-C1"'),
        ("opacxml", b"<itemId>Z-C2</itemId>"),
    ):
        [(syntax, xml)] = records_of(
            ask(session, z.present(syntax=oids.XML_TEXT, element_set=element_set))[1]
        )
        assert syntax == oids.XML_TEXT and marker in xml, element_set
    [(syntax, sutrs)] = records_of(ask(session, z.present(syntax=oids.SUTRS))[1])
    text = codec.schema().decode("InternationalString", sutrs).decode()
    assert "Title: 猫的历史" in text and "Copy: Z-C1 中文书库 I247/1 (available)" in text
    [(syntax, opac)] = records_of(ask(session, z.present(syntax=oids.OPAC))[1])
    record = codec.schema().decode("OPACRecord", opac)
    assert record["bibliographicRecord"]["direct-reference"] == oids.UNIMARC
    assert record["bibliographicRecord"]["encoding"] == ("octet-aligned", unimarc)
    holdings = [data for _, data in record["holdingsData"]]
    assert [h["circulationData"][0]["itemId"] for h in holdings] == [b"Z-C1", b"Z-C2"]
    assert holdings[0]["localLocation"] == "中文书库".encode()
    assert holdings[0]["callNumber"] == b"I247/1"
    assert holdings[0]["circulationData"][0]["availableNow"] is True
    # Element sets a syntax does not have, and syntaxes we do not have.
    assert z.diagnostic(ask(session, z.present(element_set="X"))[1]) == (25, b"X")
    assert (
        z.diagnostic(ask(session, z.present(syntax=oids.XML_TEXT, element_set="nope"))[1])[0] == 25
    )
    assert z.diagnostic(ask(session, z.present(syntax=oids.GRS1))[1]) == (239, b"GRS-1")


def test_marc21_records_in_their_own_syntax_and_as_unimarc(catalogue: Store) -> None:
    session = new_session(catalogue)
    assert ask(session, z.search(z.term("浙东", use=4)))[1]["resultCount"] == 1
    [(syntax, usmarc)] = records_of(ask(session, z.present(syntax=None))[1])
    assert syntax == oids.USMARC and usmarc[9:10] == b"a" and b"\x1e245" not in usmarc[:24]
    [(syntax, converted)] = records_of(ask(session, z.present(syntax=oids.UNIMARC))[1])
    assert syntax == oids.UNIMARC and "浙东".encode() in converted
    [(syntax, opac)] = records_of(ask(session, z.present(syntax=oids.OPAC))[1])
    record = codec.schema().decode("OPACRecord", opac)
    assert record["bibliographicRecord"]["direct-reference"] == oids.USMARC


# --- Scan, Sort, Close -------------------------------------------------------------------------


def test_scan(catalogue: Store) -> None:
    session = new_session(catalogue)
    _, value = ask(session, z.scan("谭", 1003, count=3))
    assert value["scanStatus"] == 0 and value["positionOfTerm"] == 1
    terms = [
        (e[1]["term"][1].decode(), e[1]["globalOccurrences"]) for e in value["entries"]["entries"]
    ]
    assert terms[0] == ("谭其骧", 1) and len(terms) == 3
    _, around = ask(session, z.scan("谭", 1003, count=4, position=2))
    assert around["positionOfTerm"] == 2
    assert around["entries"]["entries"][1][1]["term"][1] == "谭其骧".encode()
    _, japanese = ask(session, z.scan("タ", 4, database="japanese", count=2))
    assert japanese["entries"]["entries"][0][1]["term"][1] == "タイトル".encode()
    for apdu, condition in (
        (z.scan("x", 1016), 114),
        (z.scan("x", 4, count=5, position=9), 233),
    ):
        _, refused = ask(session, apdu)
        assert refused["scanStatus"] == 6
        assert refused["entries"]["nonsurrogateDiagnostics"][0][1]["condition"] == condition


def test_sort(catalogue: Store) -> None:
    session = new_session(catalogue)
    ask(session, z.search(z.term("中国", use=1016), name="a"))
    _, done = ask(session, z.sort("a", "by-date", (31, 1)))
    assert done["sortStatus"] == 0 and done["resultCount"] >= 4
    records = records_of(
        ask(session, z.present(1, done["resultCount"], name="by-date", syntax=oids.SUTRS))[1]
    )
    years = [
        int(line.split()[1])
        for _, data in records
        for line in codec.schema().decode("InternationalString", data).decode().splitlines()
        if line.startswith("Date: ")
    ]
    assert years == sorted(years, reverse=True)
    for apdu, condition in (
        (z.sort("nosuch", "b", (4, 0)), 30),
        (z.sort("a", "b", (1016, 0)), 207),
        (z.sort("a", "b", (4, 3)), 214),
        (z.sort("a", "b", (4, 0), (4, 1)), 207),
    ):
        _, refused = ask(session, apdu)
        assert refused["sortStatus"] == 2 and refused["diagnostics"][0][1]["condition"] == condition


def test_close_is_answered_with_close(catalogue: Store) -> None:
    session = new_session(catalogue)
    reply = session.handle(z.close())
    assert reply.close and z.answer(reply.data) == ("close", {"closeReason": 0})


def test_search_and_opac_on_both_engines(store: Store, tmp_path: Path) -> None:
    z.load_catalogue(store, tmp_path)
    session = new_session(store)
    assert ask(session, z.search(z.term("猫", use=4), database="japanese"))[1]["resultCount"] == 1
    [(syntax, opac)] = records_of(ask(session, z.present(syntax=oids.OPAC))[1])
    record = codec.schema().decode("OPACRecord", opac)
    assert record["holdingsData"][0][1]["circulationData"][0]["itemId"] == b"Z-J1"
    _, scanned = ask(session, z.scan("历史", 4, count=2))
    assert scanned["scanStatus"] == 0
