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
from tests.serve_support import free_port
from tests.sru_support import reactor_in_thread
from tests.union_site_support import union_site
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
    closed = free_port()
    site = union_site(
        tmp_path_factory.mktemp("web-union"),
        20,
        lambda site: (
            f"""
[[union.targets]]
name = "本馆 Z39.50"
url = "z3950:127.0.0.1:{site.z3950}/main"
[[union.targets]]
name = "关闭的馆"
url = "z3950:127.0.0.1:{closed}/main"
"""
        ),
    )
    reactor = reactor_in_thread()
    # A library that accepts the connection and never says a word.
    silent = blockingCallFromThread(
        reactor, reactor.listenTCP, 0, Factory.forProtocol(Protocol), interface="127.0.0.1"
    )
    with site.serving():
        yield Targets(site.z3950, site.sru, silent.getHost().port, closed, site.web)
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
    page = client.get("/union", q="明代", wait="1")
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
    zh = client.get("/union", q="明代", lang="zh", wait="1")
    assert "联合检索" in zh.text and "未在时限内回答" in zh.text and "连接失败" in zh.text


def test_a_work_is_requested_through_ill_with_the_readers_rota(library: Library) -> None:
    assert library.ill is not None
    library.ill.confirm_reader("A")
    client = Client(library.portal)
    assert client.log_in("A").status == 200
    page = client.get("/union", q="劍橋 明代", lang="en", wait="1")
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
    busy = client.get("/union", q="明代", lang="en", wait="1")
    assert busy.status == 503 and "The system is busy" in busy.text
    assert client.get("/search", q="明代").status == 200
    library.portal.union_slots.release()  # that search ended
    assert client.get("/union", q="明代", wait="1").status == 200


def test_no_union_targets_no_tab(store: Any, tmp_path: Path) -> None:
    built = build_portal(store, tmp_path)
    client = Client(built.portal)
    assert '<a href="/union"' not in client.get("/").html
    assert client.get("/union", q="明代").status == 404


def test_libgate_serve_has_the_tab_when_union_targets_are_configured(targets: Targets) -> None:
    """The composition root wires union's searcher into the portal: a page thread waits for
    the search on the server's reactor."""
    connection = http.client.HTTPConnection("127.0.0.1", targets.web, timeout=60)
    connection.request("GET", "/union?" + urlencode({"q": "明代", "lang": "en", "wait": "1"}))
    response = connection.getresponse()
    body = response.read().decode("utf-8")
    connection.close()
    assert response.status == 200, body
    assert '<a href="/union" aria-current="page">Union search</a>' in body
    page = Page(Reply(body=body.encode("utf-8")))
    states = states_on(page)
    assert states["本馆 Z39.50"][0] == "ok" and states["关闭的馆"][0] == "failed"
    assert "剑桥中国明代史" in page.text


# --- following the search live ----------------------------------------------------------------


def test_with_script_the_page_answers_at_once_and_names_its_live_stream(library: Library) -> None:
    page = Client(library.portal).get("/union", q="明代", lang="en")
    assert page.status == 200
    states = states_on(page)
    assert list(states) == ["北京大学 Z39.50", "上海图书馆 SRU", "不回答的馆", "关闭的馆"]
    assert {state for state, _ in states.values()} == {"connecting"}
    assert "Searching: 0 of 4 libraries have finished." in page.text
    live = re.search(r'data-live="([^"]+)"', page.html)
    assert live and html.unescape(live.group(1)) == "/union/live?" + urlencode({"q": "明代"})
    assert re.search(r'<script src="/static/[0-9a-f]+/union.js" defer>', page.html)
    # Without script, the browser comes back for the whole answer.
    assert '<noscript><meta http-equiv="refresh" content="0; url=/union?q=' in page.html
    assert "&amp;wait=1" in page.html


def test_the_reader_chooses_libraries_sorts_and_narrows_by_facets(library: Library) -> None:
    client = Client(library.portal)
    chosen = ["北京大学 Z39.50", "上海图书馆 SRU"]
    page = client.request_multi(
        "GET", "/union", {"q": "明代", "wait": "1", "lang": "en"}, lib=chosen
    )
    assert list(states_on(page)) == chosen  # the other two were not searched
    assert "Libraries to search (2 of 4)" in page.text
    titles = re.findall(r"<h3>([^<]+)</h3>", page.html)
    works = [t for t in titles if t not in ("Holding library", "Year", "Language")]
    assert len(works) >= 2
    # Facets: both libraries hold every work; each year's link narrows to that year.
    counted = re.search(r"([0-9]+) works", page.text)
    assert counted
    count = int(counted.group(1))
    for name in chosen:
        assert f"{name} ({count})" in page.text
    years = re.findall(
        r'<a href="(/union\?[^"]*year=[0-9]+)">([0-9]{4})</a> \(([0-9]+)\)', page.html
    )
    assert years, page.html
    link, year, in_year = years[0]
    narrowed = client.get(html.unescape(link), wait="1")
    assert f"{in_year} match the filters chosen" in narrowed.text
    shown = narrowed.html.split('<ol class="works">', 1)[1]
    assert shown.count("<li>\n      <h3>") == int(in_year)
    assert all(year in line for line in re.findall(r"<h3>.*?</h3>\s*<p>(.*?)</p>", shown, re.S))
    assert '<a href="/union?' in narrowed.html and 'aria-current="true"' in narrowed.html
    # Sorted by title: in the catalogue's title order.
    by_title = client.request_multi(
        "GET", "/union", {"q": "明代", "wait": "1", "sort": "title"}, lib=chosen
    )
    listed = by_title.html.split('<ol class="works">', 1)[1]
    sorted_titles = [html.unescape(t) for t in re.findall(r"<h3>([^<]+)</h3>", listed)]
    from gateway.catalogue.normalise import sort_key

    assert sorted_titles == sorted(sorted_titles, key=sort_key)
    assert "<strong>title</strong>" in by_title.html  # the order in use is not a link


@dataclass
class LiveSite:
    port: int
    silent_lost: threading.Event  # the silent library's connection was closed by the gateway
    silent_made: threading.Event


class Silent(Protocol):
    """A library that accepts the connection and never says a word; tells when it is dropped."""

    made: threading.Event
    lost: threading.Event

    def connectionMade(self) -> None:
        self.made.set()

    def connectionLost(self, reason: object = None) -> None:
        self.lost.set()


@pytest.fixture
def live_site(library: Library, targets: Targets) -> Iterator[LiveSite]:
    """The portal on twisted.web in this process (as `libgate serve` runs it), union search
    over the partners plus a silent library whose own deadline is `SILENT_SECONDS`."""
    from twisted.python.threadpool import ThreadPool

    from web.resource import build_site

    reactor = reactor_in_thread()
    made, lost = threading.Event(), threading.Event()

    class Tracked(Silent):
        pass

    Tracked.made, Tracked.lost = made, lost
    silent = blockingCallFromThread(
        reactor, reactor.listenTCP, 0, Factory.forProtocol(Tracked), interface="127.0.0.1"
    )
    settings = library.portal.settings
    partners = [t for t in settings.union.targets if t.name in ("北京大学 Z39.50", "关闭的馆")]
    quiet = UnionTarget(
        name="不回答的馆",
        url=f"z3950:127.0.0.1:{silent.getHost().port}/main",
        timeout=SILENT_SECONDS,
    )
    settings = replace(
        settings,
        union=replace(settings.union, targets=(*partners, quiet), timeout=SILENT_SECONDS),
        web=replace(settings.web, max_union_searches=2, max_union_searches_per_address=1),
    )
    union = ReactorUnionSearcher(settings, reactor)
    pool, login_pool = ThreadPool(1, 2, "web"), ThreadPool(1, 1, "web-login")
    pool.start()
    login_pool.start()
    site = build_site(
        settings, library.store, library.engine, library.ill, pool, login_pool, reactor, union
    )
    listening = blockingCallFromThread(reactor, reactor.listenTCP, 0, site, interface="127.0.0.1")
    yield LiveSite(listening.getHost().port, lost, made)
    blockingCallFromThread(reactor, listening.stopListening)
    blockingCallFromThread(reactor, silent.stopListening)
    pool.stop()
    login_pool.stop()


SILENT_SECONDS = 3.0


def open_stream(
    port: int, source: str = "127.0.0.1", **query: str
) -> tuple[http.client.HTTPConnection, Any]:
    """A live stream from the reader at `source` (any 127.x address reaches the portal)."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=30, source_address=(source, 0)
    )
    connection.request("GET", "/union/live?" + urlencode(query))
    return connection, connection.getresponse()


def next_event(response: Any) -> tuple[str, str]:
    """One Server-Sent Event: its name and its data (the data lines joined)."""
    name, data = "message", list[str]()
    while True:
        line = response.readline().decode("utf-8")
        assert line, "the stream ended without a done event"
        line = line.rstrip("\n")
        if not line:
            return name, "\n".join(data)
        field, _, value = line.partition(": ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)


def states_in(fragment: str) -> dict[str, tuple[str, str]]:
    return states_on(Page(Reply(body=fragment.encode("utf-8"))))


def test_the_live_stream_shows_each_library_as_it_answers(live_site: LiveSite) -> None:
    connection, response = open_stream(live_site.port, q="明代", lang="en")
    assert response.status == 200
    assert response.getheader("content-type") == "text/event-stream; charset=utf-8"
    events: list[tuple[str, str]] = []
    while not events or events[-1][0] != "done":
        events.append(next_event(response))
    connection.close()
    updates = [
        (states_in(libraries), works)
        for (kind, libraries), (_, works) in zip(events, events[1:], strict=False)
        if kind == "libraries"
    ]
    first, last = updates[0][0], updates[-1][0]
    assert {state for state, _ in first.values()} <= {"connecting", "searching"}
    # The works were on the page while the silent library was still being waited for.
    early = [
        works
        for states, works in updates
        if states["北京大学 Z39.50"][0] == "ok"
        and states["不回答的馆"][0] in ("connecting", "searching")
    ]
    assert early and "剑桥中国明代史" in early[0]
    assert "Searching: 2 of 3 libraries have finished." in html.unescape(
        re.sub(r"<[^>]+>", " ", events[[e[1] for e in events].index(early[0]) - 1][1])
    )
    assert last["北京大学 Z39.50"][0] == "ok"
    assert last["关闭的馆"][0] == "failed"
    assert last["不回答的馆"][0] == "timeout"
    assert "剑桥中国明代史" in updates[-1][1] and "Holding library" in updates[-1][1]


def test_leaving_the_page_stops_the_search_and_drops_its_connections(
    live_site: LiveSite, library: Library
) -> None:
    global SILENT_SECONDS
    connection, response = open_stream(live_site.port, q="明代")
    assert next_event(response)[0] == "libraries"
    assert live_site.silent_made.wait(10)
    connection.close()  # the reader left before the silent library's deadline
    assert live_site.silent_lost.wait(SILENT_SECONDS)
    # The stream's slot is free again: the next search is followed, not refused.
    again, response = open_stream(live_site.port, q="明代", lang="en")
    kinds: list[str] = []
    while not kinds or kinds[-1] != "done":
        kinds.append(next_event(response)[0])
    again.close()
    assert kinds[:2] == ["libraries", "works"]


def test_more_live_searches_than_allowed_are_told_the_system_is_busy(
    live_site: LiveSite,
) -> None:
    """One live search per address and two in all (the fixture's caps): a second from the same
    reader, and a third from anyone, are told the system is busy and open no connection."""

    def refused(source: str) -> None:
        connection, response = open_stream(live_site.port, source, q="明代", lang="en")
        kind, words = next_event(response)
        assert kind == "works" and "The system is busy" in words
        assert next_event(response)[0] == "done"
        connection.close()

    first, response = open_stream(live_site.port, "127.0.0.1", q="明代")
    assert next_event(response)[0] == "libraries"
    refused("127.0.0.1")  # that reader's one search is running
    second, other = open_stream(live_site.port, "127.0.0.2", q="明代")
    assert next_event(other)[0] == "libraries"  # another reader's is followed
    refused("127.0.0.3")  # two in all
    second.close()
    first.close()


def test_a_live_search_that_cannot_be_read_says_why(live_site: LiveSite) -> None:
    connection, response = open_stream(live_site.port, q="title=", lang="en")
    kind, words = next_event(response)
    assert kind == "works" and 'class="alert"' in words
    assert next_event(response)[0] == "done"
    connection.close()
