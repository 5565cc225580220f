"""The union search's clients against real targets on real sockets: `libgate serve` as its own
process (Z39.50 and SRU, the demo catalogue and CJK titles), a target that accepts connections
and never answers, and a port nobody listens on. Each client is driven on Twisted's reactor
running in a thread; the test thread waits for each operation's Deferred.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lxml import etree
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.threads import blockingCallFromThread

from gateway.catalogue.query import Boolean, Query, Term
from gateway.cli import main as libgate
from gateway.z3950_codec import oids
from gateway.z3950_codec.messages import InitResponse
from gateway.z3950_codec.origin import PresentAnswer, ReceivedDiagnostic, ReceivedRecord
from marc.charset import decide, decode_record, looks_unimarc
from marc.iso2709 import frame_records, parse_structure
from marc.unimarc_map import map_unimarc
from tests.conftest import FIXTURES
from tests.serve_support import free_port, running_gateway
from tests.sru_support import reactor_in_thread
from tests.support import cnmarc, iso
from tests.zebra_support import ZEBRA, running_zebra
from union.errors import TargetTimeout, TargetUnreachable
from union.records import read_iso2709
from union.sru_client import SruClient
from union.sru_response import SruDiagnostic, SruRecord
from union.z3950_client import Z3950Origin, connect

CAT_HISTORY = cnmarc("U-CAT-ZH", "猫的历史", barcodes=("U-C1", "U-C2"), year="2005")
CAT_NOVEL = cnmarc("U-CAT-JA", "吾輩は猫である", barcodes=("U-J1",), year="1905")
BNU_UTF8 = FIXTURES / "marc/real/cnmarc/bnu_cnmarc_10_utf8.iso"  # real BNU CNMARC records
BNU_GBK = FIXTURES / "marc/real/cnmarc/bnu_cnmarc_10_gbk.iso"  # the same, in GBK
LONG = 30.0  # a deadline no answering target comes near: what is asserted is the outcome
MARCXML = "{http://www.loc.gov/MARC21/slim}"


@pytest.fixture(scope="module")
def reactor() -> Any:
    return reactor_in_thread()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """(Z39.50 port, SRU port) of a running `libgate serve` with both catalogues."""
    home = tmp_path_factory.mktemp("union")
    z_port, sru_port = free_port(), free_port()
    config = home / "libgate.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{home / "u.db"}"

[sru]
listen = ["tcp:{sru_port}:interface=127.0.0.1"]

[sip2]
listen = []

[z3950]
listen = ["tcp:{z_port}:interface=127.0.0.1"]
""",
        encoding="utf-8",
    )
    (home / "main_extra.iso").write_bytes(iso(CAT_HISTORY))
    (home / "japanese_extra.iso").write_bytes(iso(CAT_NOVEL))
    for args in (
        ["init"],
        ["load", "--database", "main", str(FIXTURES / "marc" / "demo_main.iso")],
        ["load", "--database", "main", str(home / "main_extra.iso")],
        ["load", "--database", "japanese", str(FIXTURES / "marc/japanese/japanese_cnmarc.iso")],
        ["load", "--database", "japanese", str(home / "japanese_extra.iso")],
    ):
        assert libgate(["--config", str(config), *args]) == 0
    with running_gateway(config, [z_port, sru_port]):
        yield z_port, sru_port


@pytest.fixture(scope="module")
def silent_port(reactor: Any) -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    listening = blockingCallFromThread(
        reactor, reactor.listenTCP, 0, Factory.forProtocol(Protocol), interface="127.0.0.1"
    )
    yield listening.getHost().port
    blockingCallFromThread(reactor, listening.stopListening)


@pytest.fixture
def client(reactor: Any) -> Iterator[SruClient]:
    """An SRU client with its own connection pool, closed after the test."""
    sru = SruClient(reactor)
    yield sru
    on_reactor(reactor, sru.close)


def on_reactor(reactor: Any, work: Callable[[], Any]) -> Any:
    """Run `work` (an async function) on the reactor thread and wait for its result."""
    return blockingCallFromThread(reactor, lambda: ensureDeferred(work()))


def z_connect(reactor: Any, port: int, database: str, **options: Any) -> Deferred[Z3950Origin]:
    options.setdefault("timeout", LONG)
    return connect(reactor, "127.0.0.1", port, database=database, **options)


def unimarc_title(data: bytes) -> str:
    chunk = next(frame_records(io.BytesIO(data)))
    raw = parse_structure(chunk)
    record, _warnings = decode_record(raw, decide(raw, looks_unimarc(raw)))
    return map_unimarc(record).title


# --- Z39.50 --------------------------------------------------------------------------------


def test_z3950_init_search_present_unimarc_close(reactor: Any, gateway: tuple[int, int]) -> None:
    async def work() -> tuple[InitResponse, int, PresentAnswer]:
        origin = await z_connect(reactor, gateway[0], "main")
        init = await origin.init(LONG)
        found = await origin.search(Query(Term("title", "all", "猫的历史")), LONG)
        records = await origin.present(1, found.result_count, "unimarc", LONG)
        await origin.close(LONG)
        return init, found.result_count, records

    init, hits, records = on_reactor(reactor, work)
    assert init.result and {"search", "present"} <= init.options
    assert hits == 1
    (record,) = records.records
    assert isinstance(record, ReceivedRecord) and record.syntax == oids.UNIMARC
    # The record decodes with marc/'s reader: what the union search's next step will do.
    assert unimarc_title(record.data) == "猫的历史"


def test_z3950_record_syntaxes_and_a_surrogate_diagnostic(
    reactor: Any, gateway: tuple[int, int]
) -> None:
    async def work() -> dict[str, PresentAnswer]:
        origin = await z_connect(reactor, gateway[0], "main")
        await origin.init(LONG)
        await origin.search(Query(Term("title", "all", "猫的历史")), LONG)
        answers = {}
        for syntax in ("unimarc", "usmarc", "xml", "opac"):
            answers[syntax] = await origin.present(1, 1, syntax, LONG)
        await origin.close(LONG)
        return answers

    answers = on_reactor(reactor, work)
    # A CNMARC record is not available as MARC 21: a surrogate diagnostic in its place.
    (surrogate,) = answers.pop("usmarc").records
    assert isinstance(surrogate, ReceivedDiagnostic)
    assert (surrogate.condition, surrogate.addinfo) == (238, "UNIMARC")
    syntaxes = {"unimarc": oids.UNIMARC, "opac": oids.OPAC}
    for name, answer in answers.items():
        (record,) = answer.records
        assert isinstance(record, ReceivedRecord)
        if name == "xml":
            assert record.syntax in (oids.XML_TEXT, oids.XML_APPLICATION)
            assert "猫的历史" in etree.tostring(etree.fromstring(record.data), encoding="unicode")
        else:
            assert record.syntax == syntaxes[name]
    opac = answers["opac"].records[0]
    assert isinstance(opac, ReceivedRecord) and b"U-C1" in opac.data


def test_z3950_booleans_cjk_and_the_japanese_database(
    reactor: Any, gateway: tuple[int, int]
) -> None:
    async def work() -> tuple[str | None, int, int, int, int]:
        origin = await z_connect(reactor, gateway[0], "japanese", negotiate_utf8=True)
        init = await origin.init(LONG)
        novel = await origin.search(Query(Term("title", "adj", "吾輩は猫である")), LONG)
        cats = await origin.search(Query(Term("title", "all", "猫")), LONG)
        old = await origin.search(
            Query(Boolean("and", Term("title", "all", "猫"), Term("year", "<", "1950"))), LONG
        )
        newer = await origin.search(
            Query(Boolean("not", Term("title", "all", "猫"), Term("year", "<", "1950"))), LONG
        )
        await origin.close(LONG)
        counts = (novel.result_count, cats.result_count, old.result_count, newer.result_count)
        return (init.selected_charset, *counts)

    charset, novel, cats, old, newer = on_reactor(reactor, work)
    assert charset == "UTF-8"
    assert novel == 1 and old >= 1  # 吾輩は猫である, 1905
    assert old + newer == cats  # "not" is "and not": the two parts make the whole


def test_z3950_gbk_terms_for_a_legacy_target(reactor: Any, gateway: tuple[int, int]) -> None:
    # No negotiation, terms in GBK, as a legacy Chinese client sends them: our target reads
    # 历史 (C0 FA CA B7, not UTF-8) as GBK, so the GBK path finds what UTF-8 finds.
    async def work(encoding: str) -> int:
        origin = await z_connect(reactor, gateway[0], "main", encoding=encoding)
        await origin.init(LONG)
        found = await origin.search(Query(Term("title", "all", "猫的历史")), LONG)
        await origin.close(LONG)
        return found.result_count

    assert on_reactor(reactor, lambda: work("gbk")) == 1
    assert on_reactor(reactor, lambda: work("utf-8")) == 1


def test_z3950_unsupported_index_is_a_diagnostic_and_the_session_goes_on(
    reactor: Any, gateway: tuple[int, int]
) -> None:
    from gateway.z3950_codec.messages import Attribute, AttributesPlusTerm, RpnQuery

    unknown_use = RpnQuery(oids.BIB1, AttributesPlusTerm((Attribute(1, 9999),), "猫".encode()))

    async def work() -> tuple[Any, Any, Any]:
        origin = await z_connect(reactor, gateway[0], "main")
        await origin.init(LONG)
        refused = await origin.search(unknown_use, LONG)
        found = await origin.search(Query(Term("title", "all", "猫的历史")), LONG)
        past_end = await origin.present(found.result_count + 5, 1, "unimarc", LONG)
        await origin.close(LONG)
        return refused, found, past_end

    refused, found, past_end = on_reactor(reactor, work)
    assert not refused.search_status and refused.result_count == 0
    (diagnostic,) = refused.diagnostics
    assert isinstance(diagnostic, ReceivedDiagnostic)
    assert (diagnostic.condition, diagnostic.addinfo) == (114, "9999")
    assert diagnostic.message == "Unsupported Use attribute"
    assert found.result_count == 1
    assert [d.condition for d in past_end.diagnostics] == [13]


def test_z3950_target_that_never_answers_times_out(reactor: Any, silent_port: int) -> None:
    async def work() -> None:
        origin = await z_connect(reactor, silent_port, "main")
        await origin.init(0.3)

    with pytest.raises(TargetTimeout) as caught:
        on_reactor(reactor, work)
    assert caught.value.operation == "init" and "no answer within 0.3 s" in str(caught.value)


def test_z3950_closed_port_fails_as_unreachable(reactor: Any) -> None:
    port = free_port()
    with pytest.raises(TargetUnreachable) as caught:
        on_reactor(reactor, lambda: z_connect(reactor, port, "main"))
    assert caught.value.operation == "connect" and "refused" in str(caught.value)


# --- SRU -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.1", "1.2", "2.0"])
def test_sru_search_retrieve_every_version(
    reactor: Any, client: SruClient, gateway: tuple[int, int], version: str
) -> None:
    base = f"http://127.0.0.1:{gateway[1]}/main"
    answer = on_reactor(
        reactor,
        lambda: client.search_retrieve(
            base, Query(Term("title", "all", "猫的历史")), timeout=LONG, version=version
        ),
    )
    assert answer.version == version and answer.hits == 1 and not answer.diagnostics
    (record,) = answer.records
    assert isinstance(record, SruRecord) and record.position == 1
    root = etree.fromstring(record.data)
    assert root.tag == f"{MARCXML}record"
    assert "猫的历史" in etree.tostring(root, encoding="unicode")


def test_sru_unimarc_schema_cjk_and_maximum_records(
    reactor: Any, client: SruClient, gateway: tuple[int, int]
) -> None:
    base = f"http://127.0.0.1:{gateway[1]}/japanese"
    query = Query(Boolean("or", Term("title", "adj", "吾輩は猫である"), Term("title", "all", "猫")))
    answer = on_reactor(
        reactor,
        lambda: client.search_retrieve(
            base, query, timeout=LONG, version="2.0", record_schema="unimarc", maximum_records=1
        ),
    )
    assert answer.hits is not None and answer.hits >= 1
    assert len(answer.records) == 1
    if answer.hits > 1:
        assert answer.next_position == 2


def test_sru_unsupported_index_is_a_diagnostic(
    reactor: Any, client: SruClient, gateway: tuple[int, int]
) -> None:
    base = f"http://127.0.0.1:{gateway[1]}/main"
    answer = on_reactor(
        reactor,
        lambda: client.search_retrieve(base, 'dc.nosuchindex = "猫"', timeout=LONG),
    )
    assert answer.hits in (None, 0) and not answer.records
    (diagnostic,) = answer.diagnostics
    assert isinstance(diagnostic, SruDiagnostic)
    assert diagnostic.number == 16 and diagnostic.uri == "info:srw/diagnostic/1/16"
    assert "nosuchindex" in diagnostic.details


def test_sru_target_that_never_answers_times_out(
    reactor: Any, client: SruClient, silent_port: int
) -> None:
    with pytest.raises(TargetTimeout) as caught:
        on_reactor(
            reactor,
            lambda: client.search_retrieve(
                f"http://127.0.0.1:{silent_port}/main",
                Query(Term("title", "all", "猫")),
                timeout=0.3,
            ),
        )
    assert "no answer within 0.3 s" in str(caught.value)


def test_sru_closed_port_fails_as_unreachable(reactor: Any, client: SruClient) -> None:
    port = free_port()
    with pytest.raises(TargetUnreachable) as caught:
        on_reactor(
            reactor,
            lambda: client.search_retrieve(
                f"http://127.0.0.1:{port}/main", Query(Term("title", "all", "猫")), timeout=LONG
            ),
        )
    assert "refused" in str(caught.value)


def test_sru_connections_are_kept_alive_between_searches(
    reactor: Any, client: SruClient, gateway: tuple[int, int]
) -> None:
    base = f"http://127.0.0.1:{gateway[1]}/main"

    async def work() -> int:
        for _ in range(3):
            await client.search_retrieve(base, Query(Term("title", "all", "猫")), timeout=LONG)
        return len(client.pool._connections)  # noqa: SLF001 - the pool's idle connections

    assert on_reactor(reactor, work) == 1


# --- a real Zebra --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zebra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if not ZEBRA:
        pytest.fail("zebrasrv and zebraidx are missing: apt-get install idzebra-2.0 (.ci/run does)")
    home = tmp_path_factory.mktemp("zebra")
    (home / "extra.iso").write_bytes(iso(CAT_HISTORY))
    records = [FIXTURES / "marc" / "demo_main.iso", home / "extra.iso"]
    with running_zebra(home, records, free_port()) as port:
        yield port


def test_zebra_searched_and_presented_by_the_z3950_client(reactor: Any, zebra: int) -> None:
    async def work() -> tuple[InitResponse, list[int], PresentAnswer, Any]:
        origin = await z_connect(reactor, zebra, "Default")
        init = await origin.init(LONG)
        counts = []
        for query in (
            Query(Term("title", "all", "猫的历史")),
            Query(Term("title", "all", "Cambridge history")),
            Query(Term("title", "adj", "Cambridge history")),
            Query(Term("isbn", "=", "9787020002207")),
            Query(Boolean("or", Term("title", "all", "红楼梦"), Term("title", "all", "猫的历史"))),
        ):
            counts.append((await origin.search(query, LONG)).result_count)
        await origin.search(Query(Term("title", "all", "猫的历史")), LONG)
        records = await origin.present(1, 1, "unimarc", LONG)
        unknown = await origin.search(Query(Term("barcode", "=", "U-C1")), LONG)
        await origin.close(LONG)
        return init, counts, records, unknown

    init, counts, records, unknown = on_reactor(reactor, work)
    assert init.result and "zebra" in init.implementation_name.lower()
    assert counts == [1, 1, 1, 1, 2]
    (record,) = records.records
    assert isinstance(record, ReceivedRecord) and record.syntax == oids.UNIMARC
    assert unimarc_title(record.data) == "猫的历史"
    # An index this Zebra has no rule for: its diagnostic, and the session went on to close.
    assert not unknown.search_status and unknown.diagnostics
    assert unknown.diagnostics[0].condition == 114


# --- a legacy GBK target (a real Zebra reading terms and sending records in GBK) ----------


@pytest.fixture(scope="module")
def gbk_zebra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if not ZEBRA:
        pytest.fail("zebrasrv and zebraidx are missing: apt-get install idzebra-2.0 (.ci/run does)")
    home = tmp_path_factory.mktemp("zebra-gbk")
    with running_zebra(home, [BNU_GBK], free_port(), encoding="gbk") as port:
        yield port


def test_gbk_zebra_reads_gbk_terms_and_sends_gbk_records(reactor: Any, gbk_zebra: int) -> None:
    async def work(encoding: str) -> tuple[int, PresentAnswer | None]:
        origin = await z_connect(reactor, gbk_zebra, "Default", encoding=encoding)
        await origin.init(LONG)
        found = await origin.search(Query(Term("title", "all", "发展状况与趋势")), LONG)
        records = None
        if found.result_count:
            records = await origin.present(1, 1, "unimarc", LONG)
        await origin.close(LONG)
        return found.result_count, records

    hits, records = on_reactor(reactor, lambda: work("gbk"))
    assert hits == 1 and records is not None
    (record,) = records.records
    assert isinstance(record, ReceivedRecord) and record.syntax == oids.UNIMARC
    # The bytes on the wire are GBK: not UTF-8, and the GBK fixture's record byte for byte.
    with pytest.raises(UnicodeDecodeError):
        record.data.decode("utf-8")
    assert record.data in BNU_GBK.read_bytes()
    # Read as the target's GBK, it is the same record as the UTF-8 original, field for field.
    utf8 = [c.data for c in frame_records(io.BytesIO(BNU_UTF8.read_bytes()))]
    read = read_iso2709(record.data, "unimarc", "gbk").bib
    assert read == read_iso2709(utf8[9], "unimarc").bib
    assert read.display_title == "1999 年中国发展状况与趋势"
    # The same words in UTF-8 are other characters to this target: nothing found.
    assert on_reactor(reactor, lambda: work("utf-8"))[0] == 0
