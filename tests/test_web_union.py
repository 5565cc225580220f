"""The portal's union search tab (联合检索) against real targets started here: a libgate
searched over Z39.50 and over SRU (two partner libraries holding the same catalogue), a
target that accepts and never answers, and a closed port. The portal runs in this process with
union's own `UnionSearcher` on Twisted's reactor (in a thread, as under `libgate serve`), and
is driven page by page as a browser would (tests/web_support.py). Checks each library's state
on the page, the merged works with their holding libraries, and the ILL request from a work:
pre-filled from its record, the holding partners as the lenders in the order the reader
picks, and that order filed as the request's rota."""

from __future__ import annotations

import html
import http.client
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.threads import blockingCallFromThread

from gateway.circulation.ill import InterlibraryLoan
from gateway.config import IllPartner, UnionSettings, UnionTarget
from tests.conftest import FIXTURES
from tests.serve_support import free_port, running_gateway
from tests.sru_support import reactor_in_thread
from tests.web_support import PARTNER, Client, Library, Page, build_portal
from union.searcher import ReactorUnionSearcher
from web.http import Reply
from web.portal import Portal
from web.routes import ROUTES

SECOND = IllPartner("ISIL:CN-SHL", "上海图书馆", "http://127.0.0.1:9/iso18626")


@dataclass(frozen=True)
class Targets:
    z3950: int
    sru: int
    silent: int
    closed: int
    web: int  # the gateway's own portal, whose union tab searches its own Z39.50 and a closed port


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Targets]:
    home = tmp_path_factory.mktemp("web-union")
    sru_port, z_port, closed, web_port = free_port(), free_port(), free_port(), free_port()
    config = home / "libgate.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{home / "library.db"}"
[service]
workers = 1
[sip2]
listen = []
[sru]
listen = ["tcp:{sru_port}:interface=127.0.0.1"]
[z3950]
listen = ["tcp:{z_port}:interface=127.0.0.1"]
[notices]
enabled = false
[web]
listen = ["tcp:{web_port}:interface=127.0.0.1"]
[union]
timeout = 20
[[union.targets]]
name = "本馆 Z39.50"
url = "z3950:127.0.0.1:{z_port}/main"
[[union.targets]]
name = "关闭的馆"
url = "z3950:127.0.0.1:{closed}/main"
""",
        encoding="utf-8",
    )
    for args in (("init",), ("load", "--database", "main", str(FIXTURES / "marc/demo_main.iso"))):
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    reactor = reactor_in_thread()
    # A library that accepts the connection and never says a word.
    silent = blockingCallFromThread(
        reactor, reactor.listenTCP, 0, Factory.forProtocol(Protocol), interface="127.0.0.1"
    )
    with running_gateway(config, [sru_port, z_port, web_port]):
        yield Targets(z_port, sru_port, silent.getHost().port, closed, web_port)
    blockingCallFromThread(reactor, silent.stopListening)


def union_settings(targets: Targets) -> UnionSettings:
    return UnionSettings(
        targets=(
            UnionTarget(
                name="北京大学 Z39.50",
                url=f"z3950:127.0.0.1:{targets.z3950}/main",
                agency_id=PARTNER.agency_id,
            ),
            UnionTarget(
                name="上海图书馆 SRU",
                url=f"http://127.0.0.1:{targets.sru}/main",
                agency_id=SECOND.agency_id,
                sru_version="2.0",
            ),
            UnionTarget(
                name="不回答的馆", url=f"z3950:127.0.0.1:{targets.silent}/main", timeout=1.0
            ),
            UnionTarget(name="关闭的馆", url=f"z3950:127.0.0.1:{targets.closed}/main"),
        ),
        timeout=20,
    )


@pytest.fixture
def library(store: Any, tmp_path: Path, targets: Targets) -> Library:
    """The tests' small library's portal, with union search over the targets above and both
    holding libraries as ILL partners."""
    built = build_portal(store, tmp_path)
    settings = built.portal.settings
    settings = replace(
        settings,
        ill=replace(settings.ill, partners=(PARTNER, SECOND)),
        union=union_settings(targets),
    )
    ill = InterlibraryLoan(built.engine, settings.ill, built.clock)
    union = ReactorUnionSearcher(settings, reactor_in_thread())
    portal = Portal(settings, store, built.engine, ill, ROUTES, union=union)
    return replace(built, portal=portal, ill=ill)


def states_on(page: Page) -> dict[str, tuple[str, str]]:
    """Each library's state and its words on the page, by library name."""
    found = re.findall(
        r'<li class="library-(\w+)"><strong>([^<]*)</strong>:(.*?)</li>', page.html, re.S
    )
    return {html.unescape(name): (state, " ".join(words.split())) for state, name, words in found}


def test_the_union_tab_shows_each_library_and_the_merged_works(library: Library) -> None:
    client = Client(library.portal)
    home = client.get("/", lang="en")
    assert '<a href="/union"' in home.html and "Union search" in home.text
    page = client.get("/union", q="明代")
    assert page.status == 200, page.text
    states = states_on(page)
    assert [state for state, _ in states.values()] == ["ok", "ok", "timeout", "failed"]
    assert re.match(r"[1-9][0-9]* hits \([0-9]+ ms\)", states["北京大学 Z39.50"][1])
    assert states["北京大学 Z39.50"][1].split()[0] == states["上海图书馆 SRU"][1].split()[0]
    assert states["不回答的馆"][1].startswith("No answer in time")
    assert states["关闭的馆"][1].startswith("Failed:") and "refused" in states["关闭的馆"][1]
    assert "2 libraries answered; 2 did not answer or failed." in page.text
    # The same work from both answering libraries is one result, listing both.
    assert page.text.count("剑桥中国明代史") == 1
    work = page.text.split("剑桥中国明代史", 1)[1].split("Held by:", 1)[1]
    assert "北京大学 Z39.50" in work and "上海图书馆 SRU" in work
    # Not logged in: no request link, an invitation to log in.
    assert "Request through ILL" not in page.text
    assert "Log in to request these works" in page.text
    # In Chinese, the same page's words.
    zh = client.get("/union", q="明代", lang="zh")
    assert "联合检索" in zh.text and "未在时限内回答" in zh.text and "连接失败" in zh.text


def test_a_work_is_requested_through_ill_with_the_readers_rota(library: Library) -> None:
    assert library.ill is not None
    library.ill.confirm_reader("A")
    client = Client(library.portal)
    assert client.log_in("A").status == 200
    page = client.get("/union", q="劍橋 明代", lang="en")
    links = [part.split('"', 1)[0] for part in page.html.split('<a href="/my/ill/new?')[1:]]
    assert links, page.text
    link = "/my/ill/new?" + links[0].replace("&amp;", "&")
    asked = parse_qs(urlsplit(link).query)
    assert asked["title"][0].startswith("剑桥中国明代史")
    holders = asked["holders"][0].split(",")
    assert sorted(holders) == sorted([PARTNER.agency_id, SECOND.agency_id])
    form = client.get(link)
    assert form.status == 200
    assert f'value="{asked["title"][0]}"' in form.html  # pre-filled from the work
    assert "Libraries to ask, in this order" in form.text
    assert "北京大学图书馆" in form.text and "上海图书馆" in form.text
    fields: dict[str, str] = {
        name: asked[name][0]
        for name in ("title", "author", "publisher", "year", "isbn", "language")
        if name in asked
    }
    assert fields.get("author") and fields.get("year")
    # The reader asks 上海图书馆 first, then 北京大学, whichever answered first.
    reader_order = [SECOND.agency_id, PARTNER.agency_id]
    base: dict[str, str] = dict(
        csrf=form.hidden("csrf"),
        holders=form.hidden("holders"),
        recipient="甲",
        email="a@example.cn",
        delivery="Courier",
        material_type="Book",
        **fields,
    )
    review = client.request_multi("POST", "/my/ill/review", base, rota=reader_order)
    assert review.status == 200, review.text
    assert "上海图书馆 → 北京大学图书馆" in review.text
    assert review.hidden("lenders") == ",".join(reader_order)
    send = {**base, "csrf": review.hidden("csrf"), "lenders": review.hidden("lenders")}
    done = client.post("/my/ill/send", **send)
    assert done.status == 200, done.text
    [request] = library.ill.requests_of("A")
    assert request.lenders == reader_order
    assert request.title == asked["title"][0]
    # Striking out every library asks nobody: the form says so and files nothing.
    empty = client.request_multi("POST", "/my/ill/review", base, rota=["", ""])
    assert empty.status == 400 and "Choose at least one library to ask." in empty.text


def test_union_searches_never_take_every_page_thread(library: Library) -> None:
    """With its slots taken (searches waiting on partners), a union search is told the
    system is busy at once, and the rest of the portal still answers."""
    library.portal.union_slots = threading.BoundedSemaphore(1)
    assert library.portal.union_slots.acquire(blocking=False)  # a search in progress
    client = Client(library.portal)
    busy = client.get("/union", q="明代", lang="en")
    assert busy.status == 503 and "The system is busy" in busy.text
    assert client.get("/search", q="明代").status == 200
    library.portal.union_slots.release()  # that search ended
    assert client.get("/union", q="明代").status == 200


def test_no_union_targets_no_tab(store: Any, tmp_path: Path) -> None:
    built = build_portal(store, tmp_path)
    client = Client(built.portal)
    assert '<a href="/union"' not in client.get("/").html
    assert client.get("/union", q="明代").status == 404


def test_libgate_serve_has_the_tab_when_union_targets_are_configured(targets: Targets) -> None:
    """The composition root wires union's searcher into the portal: a page thread waits for
    the search on the server's reactor."""
    connection = http.client.HTTPConnection("127.0.0.1", targets.web, timeout=60)
    connection.request("GET", "/union?" + urlencode({"q": "明代", "lang": "en"}))
    response = connection.getresponse()
    body = response.read().decode("utf-8")
    connection.close()
    assert response.status == 200, body
    assert '<a href="/union" aria-current="page">Union search</a>' in body
    page = Page(Reply(body=body.encode("utf-8")))
    states = states_on(page)
    assert states["本馆 Z39.50"][0] == "ok" and states["关闭的馆"][0] == "failed"
    assert "剑桥中国明代史" in page.text
