"""SRU over a real TCP port with real clients: YAZ's yaz-client and zoomsh (Debian `yaz`)
search, scan, explain and read records back from both catalogue databases; plain HTTP checks
the edges (POST, size cap, unknown path, stylesheet). The server is the production site
(`sru.resource.build_site`) on Twisted's reactor in a background thread."""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.threads import blockingCallFromThread
from twisted.python.threadpool import ThreadPool

from gateway.catalogue.search import search
from gateway.circulation.policy import Policy
from gateway.config import Settings, settings_from_dict
from gateway.cql.to_query import cql_to_query
from gateway.store import Store
from sru.resource import build_site
from tests.sru_support import (
    NS,
    READER,
    build_engine,
    catalogue_store,
    diagnostics,
    reactor_in_thread,
    xml,
)

RULE = Policy.from_settings(Settings()).availability  # the default policy's R2

YAZ = shutil.which("yaz-client") and shutil.which("zoomsh")
needs_yaz = pytest.mark.skipif(
    not YAZ, reason="yaz-client and zoomsh (Debian package yaz) are not installed"
)


@pytest.fixture(scope="module")
def running_reactor():
    return reactor_in_thread()


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = catalogue_store(tmp_path_factory.mktemp("sru"))
    yield store
    store.close()


@pytest.fixture(scope="module")
def base(running_reactor, catalogue: Store) -> Iterator[str]:
    settings = settings_from_dict({"sru": {"max_request_bytes": 4096}})
    pool = ThreadPool(minthreads=1, maxthreads=4, name="sru-test")
    pool.start()
    site = build_site(settings, catalogue, build_engine(catalogue), pool)
    endpoint = TCP4ServerEndpoint(running_reactor, 0, interface="127.0.0.1")
    port = blockingCallFromThread(running_reactor, endpoint.listen, site)
    yield f"127.0.0.1:{port.getHost().port}"
    blockingCallFromThread(running_reactor, port.stopListening)
    pool.stop()


def yaz_client(base: str, *commands: str) -> str:
    script = "\n".join(commands) + "\nquit\n"
    done = subprocess.run(
        ["yaz-client", "-f", "/dev/stdin"],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout + done.stderr


def hits(output: str) -> list[int]:
    return [int(n) for n in re.findall(r"Number of hits: (\d+)", output)]


def expected_ids(store: Store, query: str, database: str) -> list[str]:
    return [
        h.record_id
        for h in search(store, cql_to_query(query), database, availability=RULE, limit=50).hits
    ]


@needs_yaz
@pytest.mark.parametrize("version", ["1.1", "1.2", "2.0"])
def test_yaz_client_searches_and_reads_records_from_both_databases(
    base: str, catalogue: Store, version: str
) -> None:
    output = yaz_client(
        base,
        f"open http://{base}/main",
        f"sru get {version}",
        "querytype cql",
        "schema marcxml",
        "find 历史",
        "show 1+4",
        "schema dc",
        "find dc.title = 猫",
        "show 1+1",
        f"open http://{base}/japanese",
        f"sru post {version}",
        "schema marcxchange",
        "find 猫",
        "show 1+1",
        "find dc.title = 偏見",
    )
    counts = hits(output)
    assert counts[0] == len(expected_ids(catalogue, "历史", "main")) == 4
    for record_id in expected_ids(catalogue, "历史", "main"):
        assert f'<controlfield tag="001">{record_id}</controlfield>' in output
    assert "<dc:title>猫的历史</dc:title>" in output
    assert 'format="UNIMARC"' in output and "吾輩は猫である" in output
    assert counts[-1] == len(expected_ids(catalogue, "dc.title = 偏見", "japanese")) > 0
    assert "diagnostic" not in output.lower()


@needs_yaz
def test_yaz_client_scan_explain_and_diagnostics(base: str) -> None:
    output = yaz_client(
        base,
        f"open http://{base}/main",
        "sru get 1.2",
        "scan dc.title=中国",
        "explain",
        "find dc.nonsense = x",
        "find dc.title = (",
    )
    assert re.search(r"中国\S*.*: \d+", output)
    assert "<explain " in output and "中文书目" in output
    assert "info:srw/diagnostic/1/16" in output
    assert "info:srw/diagnostic/1/10" in output


@needs_yaz
def test_zoomsh_search_scan_and_holdings(base: str, catalogue: Store) -> None:
    def zoomsh(*commands: str) -> str:
        done = subprocess.run(
            ["zoomsh", *commands, "quit"], capture_output=True, text=True, timeout=30
        )
        return done.stdout + done.stderr

    output = zoomsh(
        "set sru get",
        "set sru_version 1.2",
        "set schema holdings",
        f"connect http://{base}/main",
        "search cql:dc.title=猫的历史",
        "show 0 1",
    )
    assert ": 1 hits" in output
    assert 'copies="2"' in output and 'barcode="SRU-C1"' in output
    output = zoomsh(
        "set sru post",
        "set sru_version 2.0",
        "set schema dc",
        f"connect http://{base}/japanese",
        "search cql:猫",
        "show 0 1",
        "scan cql:dc.title=a",
    )
    assert ": 1 hits" in output and "吾輩は猫である" in output
    assert re.search(r"^自負と偏見 1$", output, re.MULTILINE)


def request(base: str, method: str, path: str, body: bytes = b"", headers=None):
    host, port = base.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    reply = connection.getresponse()
    data = reply.read()
    connection.close()
    return reply.status, reply.getheader("content-type"), data


def test_http_edges(base: str, catalogue: Store) -> None:
    form = {"application/x-www-form-urlencoded": None}
    body = urlencode({"version": "1.2", "operation": "searchRetrieve", "query": "历史"}).encode()
    status, content_type, data = request(
        base, "POST", "/main", body, {"Content-Type": next(iter(form))}
    )
    assert status == 200 and content_type.startswith("text/xml")
    assert xml(data).findtext("zs:numberOfRecords", namespaces=NS) == "4"

    status, _, data = request(base, "GET", "/nowhere?version=1.2")
    assert status == 404 and b"/main, /japanese" in data
    status, _, data = request(base, "GET", "/main/extra?version=1.2")
    assert status == 404
    status, _, data = request(base, "GET", "/japanese/?version=1.2&operation=explain")
    assert status == 200 and b"<database>japanese</database>" in data

    status, _, data = request(
        base, "POST", "/main", b"x" * 5000, {"Content-Type": next(iter(form))}
    )
    assert status == 413 and xml(data) is not None

    status, _, data = request(base, "GET", "/main?query=" + "a" * 5000)
    assert status == 413

    status, _, data = request(base, "POST", "/main", b"<soap/>", {"Content-Type": "text/xml"})
    assert diagnostics(xml(data)) == [(6, "Content-Type")]

    status, content_type, data = request(
        base, "GET", "/main?" + urlencode({"query": "历史", "stylesheet": "/sru.xsl"})
    )
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<?xml-stylesheet")
    assert content_type.startswith("text/xml")

    status, content_type, data = request(base, "GET", "/main?query=" + quote("历史"))
    assert content_type == "application/sru+xml; charset=UTF-8"


def test_checkout_in_another_process_shows_over_sru(base: str, catalogue: Store) -> None:
    """The engine a SIP2 kiosk would use, in its own process, on the same database."""
    query = urlencode({"query": "dc.title = 猫的历史", "recordSchema": "holdings"})
    _, _, before = request(base, "GET", f"/main?{query}")
    assert b'available="2"' in before
    url = catalogue.url
    script = (
        "import sys; from gateway.store import open_store; from tests.sru_support import"
        " build_engine; s = open_store(sys.argv[1]); o = build_engine(s).checkout(sys.argv[2],"
        " 'SRU-C2'); print(o.ok, o.due_at)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, url, READER],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    ok, due = done.stdout.split()
    assert ok == "True", done.stderr
    _, _, after = request(base, "GET", f"/main?{query}")
    holdings = xml(after).find(".//h:holdings", NS)
    assert holdings.get("available") == "1"
    loaned = holdings.find("h:copy[@barcode='SRU-C2']", NS)
    assert loaned.findtext("h:dueDate", namespaces=NS) == due[:10]
