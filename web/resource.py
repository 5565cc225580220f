"""The portal on twisted.web: a thin adapter. It turns a Twisted request into a `PageRequest`,
hands it to `Portal.dispatch` in a thread (pages read the store and the engine), and writes the
`Reply` back with the headers every page carries: a strict Content-Security-Policy, no caching
of pages, and cookies that are HttpOnly, SameSite=Lax and Secure under TLS.

Logins go to a pool of their own (a PIN check hashes with scrypt): a flood of logins can
fill that pool but never the one that serves pages and the readers' actions. Requests
beyond the threads and `MAX_WAITING` more are answered 503 at once.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any
from urllib.parse import parse_qs

from twisted.application.service import MultiService
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server
from twisted.web.server import NOT_DONE_YET

from gateway.admission import ConnectionCaps
from gateway.circulation.engine import Engine
from gateway.circulation.ill import InterlibraryLoan
from gateway.config import Settings
from gateway.http_access import HttpAccess
from gateway.http_listener import CappedRequest, Deadlines, LimitedSite, connection_caps
from gateway.networks import Networks
from gateway.services import ThreadPoolService, add_listeners, engine_threads
from gateway.store import Store
from gateway.union_port import UnionSearcher
from web.http import PageRequest, Reply, parse_cookies
from web.messages import MESSAGES
from web.portal import Page, Portal
from web.routes import ROUTES
from web.union_live import LiveUnionSearch
from web.union_pages import LIVE_PATH, UnionAsk, live_ask

log = logging.getLogger("libgate.web")
METHODS = (b"GET", b"HEAD", b"POST")
MAX_WAITING = 64  # page requests waiting for a thread; more are answered 503
LOGIN_THREADS = 2
MAX_LOGINS_WAITING = 32  # logins waiting for their own pool; more are answered 503
MAX_FIELDS = 100  # form or query fields read from one request
# Everything from this site only; no inline script or style; never framed. (The one script,
# the union tab's live updates, reads an event stream from this site: connect-src.)
CSP = (
    b"default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self';"
    b" img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _plain_page(status: int, key: str) -> bytes:
    """A page written without a thread or a template (busy, or the page itself failed), in
    both languages from the message catalogue."""
    chinese, english = MESSAGES[key]
    return (
        f"<!doctype html><html lang=zh-Hans><meta charset=utf-8><title>{status}</title>"
        f"<p>{chinese}</p><p lang=en>{english}</p>"
    ).encode()


BUSY_PAGE = _plain_page(503, "busy")
ERROR_PAGE = _plain_page(500, "server_error")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def page_request(request: server.Request) -> PageRequest:
    """The plain-value request a page reads. A GET's fields come from its query; a POST's from
    its form body only (a token in a URL leaks into logs and Referer headers). The path stays
    percent-encoded: routes split it into segments before decoding them."""
    method = _text(request.method)
    if method == "POST":
        body = b""
        if request.content is not None:
            request.content.seek(0)  # Twisted has read it once to fill request.args
            body = request.content.read()
        fields = parse_qs(_text(body), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    else:
        query = request.uri.partition(b"?")[2]
        fields = parse_qs(_text(query), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    header = request.getHeader(b"cookie")
    cookies = parse_cookies(_text(header)) if header else {}
    client = request.getClientAddress()
    address = getattr(client, "host", "") or ""
    return PageRequest(
        method, _text(request.path), fields, cookies, address, secure=request.isSecure()
    )


class PortalResource(resource.Resource):
    isLeaf = True

    def __init__(
        self,
        portal: Portal,
        pool: ThreadPool,
        login_pool: ThreadPool,
        reactor: Any = None,
    ) -> None:
        resource.Resource.__init__(self)
        self.portal = portal
        self.pool = pool
        self.login_pool = login_pool
        if reactor is None:
            from twisted.internet import reactor as default

            reactor = default
        self.reactor = reactor
        self.waiting = 0  # page requests handed to the pool and not yet answered
        self.logins_waiting = 0  # the same for logins, which have their own pool
        self.live_searches = 0  # union searches streaming to a page now
        self.live_by_address: Counter[str] = Counter()  # the same, by the reader's address

    def render(self, request: server.Request) -> int | bytes:
        # The path only: a GET's query string may hold anything, and a POST's form (a PIN,
        # the CSRF token) and the cookies never reach the line.
        access = HttpAccess(request, "web", log, f"{_text(request.method)} {_text(request.path)}")
        if request.method not in METHODS:
            request.setResponseCode(405)
            request.setHeader(b"allow", b"GET, HEAD, POST")
            return b""
        page = page_request(request)
        if page.method == "GET" and page.arg("q"):
            access.query = page.arg("q")  # the catalogue's and the union search's words
        static = self.portal.static.reply(page.path)
        if static is not None:
            return self.write(request, static)
        login = page.method == "POST" and page.path == "/login"
        busy = (
            self.logins_waiting >= MAX_LOGINS_WAITING + self.login_pool.max
            if login
            else self.waiting >= MAX_WAITING + self.pool.max
        )
        if busy:
            request.setResponseCode(503)
            request.setHeader(b"retry-after", b"5")
            request.setHeader(b"content-type", b"text/html; charset=utf-8")
            return BUSY_PAGE
        if page.path == LIVE_PATH and page.method == "GET" and self.portal.union is not None:
            return self.live(request, page, self.portal.union)
        self._count(login, 1)
        pool = self.login_pool if login else self.pool
        deferred = deferToThreadPool(self.reactor, pool, self.portal.dispatch, page)

        def done(reply: Reply) -> None:
            self._count(login, -1)
            if not request.finished and not getattr(request, "_disconnected", False):
                body = self.write(request, reply)
                request.write(body)
                request.finish()

        def failed(failure: Failure) -> None:
            log.error(
                "web page %r failed: %s",
                page.path,
                failure.getTraceback() if failure.tb is not None else failure.getErrorMessage(),
            )
            if not request.finished and not getattr(request, "_disconnected", False):
                request.setResponseCode(500)
                request.setHeader(b"content-type", b"text/html; charset=utf-8")
                request.write(ERROR_PAGE)
                request.finish()

        def uncount(failure: Failure) -> Failure:
            self._count(login, -1)
            return failure

        deferred.addErrback(uncount).addCallback(done).addErrback(failed)
        return NOT_DONE_YET

    def live(self, request: server.Request, page: PageRequest, union: UnionSearcher) -> int:
        """A union search streamed to the page (web/union_live.py). The reader's session and
        language are read in a page thread; the search then runs on the reactor, holding no
        thread, up to `[web] max_union_searches` at once."""
        self.waiting += 1
        prepared = deferToThreadPool(self.reactor, self.pool, live_ask, self.portal, page)

        address = page.address

        def ended() -> None:
            self.live_searches -= 1
            self.live_by_address[address] -= 1
            if self.live_by_address[address] <= 0:
                del self.live_by_address[address]

        def unwait(result: Any) -> Any:
            self.waiting -= 1
            return result

        def stream(asked: tuple[Page, UnionAsk] | Reply) -> None:
            if request.finished or getattr(request, "_disconnected", False):
                return
            if isinstance(asked, Reply):
                request.write(self.write(request, asked))
                request.finish()
                return
            shown, ask = asked
            web = self.portal.web
            if (
                self.live_searches >= web.max_union_searches
                or self.live_by_address[address] >= web.max_union_searches_per_address
            ):
                busy = LiveUnionSearch(request, shown, ask, union, self.reactor, lambda: None)
                busy.refuse(shown._("busy"))
                return
            self.live_searches += 1
            self.live_by_address[address] += 1
            LiveUnionSearch(request, shown, ask, union, self.reactor, ended).start()

        def failed(failure: Failure) -> None:
            log.error("web union live failed: %s", failure.getTraceback())
            if not request.finished and not getattr(request, "_disconnected", False):
                request.setResponseCode(500)
                request.finish()

        prepared.addBoth(unwait).addCallback(stream).addErrback(failed)
        return NOT_DONE_YET

    def _count(self, login: bool, step: int) -> None:
        if login:
            self.logins_waiting += step
        else:
            self.waiting += step

    def write(self, request: server.Request, reply: Reply) -> bytes:
        """Status, headers and cookies of `reply`; its body, to return or write."""
        request.setResponseCode(reply.status)
        request.setHeader(b"content-type", reply.content_type.encode())
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"referrer-policy", b"same-origin")
        if reply.cacheable:
            request.setHeader(b"cache-control", b"public, max-age=31536000, immutable")
        else:
            request.setHeader(b"cache-control", b"no-store")
            request.setHeader(b"content-security-policy", CSP)
            request.setHeader(b"x-frame-options", b"DENY")
        if reply.location is not None:
            request.setHeader(b"location", reply.location.encode())
        secure = request.isSecure()
        for cookie in reply.cookies:
            request.addCookie(
                cookie.name.encode(),
                cookie.value.encode(),
                path=b"/",
                max_age=str(cookie.max_age).encode() if cookie.max_age is not None else None,
                httpOnly=cookie.http_only,
                secure=secure,
                sameSite="lax",
            )
        if request.method == b"HEAD":
            return b""
        return reply.body


class WebRequest(CappedRequest):
    """A request whose body is over `[web] max_request_bytes`: answered 413 and closed."""

    max_bytes = 16384

    def refusal(self) -> bytes:
        body = "请求太大。 The form is too large.".encode()
        return (
            b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n"
            % len(body)
            + body
        )


def build_site(
    settings: Settings,
    store: Store,
    engine: Engine,
    ill: InterlibraryLoan | None,
    pool: ThreadPool,
    login_pool: ThreadPool,
    reactor: Any = None,
    union: UnionSearcher | None = None,
) -> LimitedSite:
    web = settings.web
    portal = Portal(settings, store, engine, ill, ROUTES, union=union)
    # Union searches wait for partners up to [union] timeout: one page thread stays free.
    portal.union_slots = threading.BoundedSemaphore(max(1, pool.max - 1))
    root = PortalResource(portal, pool, login_pool, reactor)
    connections = ConnectionCaps(connection_caps(web), Networks(web.uncapped_networks))
    deadlines = Deadlines(web.header_timeout, web.body_timeout, web.keepalive_timeout)
    site = LimitedSite("Web", root, connections, deadlines, max(8192, web.max_request_bytes))
    cap = web.max_request_bytes

    class CappedWebRequest(WebRequest):
        max_bytes = cap

    site.requestFactory = CappedWebRequest
    return site


def web_services(
    settings: Settings,
    store: Store,
    engine: Engine,
    ill: InterlibraryLoan | None,
    union: UnionSearcher | None = None,
) -> tuple[MultiService, list[str]]:
    """The portal's listeners from `[web] listen`, under their thread pools' service;
    `union`: the partners' union search (the composition root builds it), None: no such tab."""
    from twisted.internet import reactor

    threads = engine_threads(store, settings.storage, settings.web.threads)
    pool = ThreadPool(minthreads=1, maxthreads=threads, name="web")
    login_pool = ThreadPool(minthreads=1, maxthreads=LOGIN_THREADS, name="web-login")
    site = build_site(settings, store, engine, ill, pool, login_pool, union=union)
    service = ThreadPoolService(pool, login_pool)
    described = add_listeners(
        service,
        reactor,
        settings.web.listen,
        site,
        lambda endpoint: f"readers' portal (web OPAC, My Library) on {endpoint}",
    )
    return service, described


__all__ = ["PortalResource", "WebRequest", "build_site", "page_request", "web_services"]
