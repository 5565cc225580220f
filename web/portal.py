"""The readers' portal as one synchronous object: a `PageRequest` in, a `Reply` out.

`Portal.dispatch` finds the page for a path, works out the reader's language and session, and
calls the page (web/catalogue_pages.py, web/account_pages.py, web/ill_pages.py). Pages ask the
engine, the search service and the ILL engine; they never decide a rule themselves. Templates
(Jinja2, autoescaped) render every word from the one message catalogue (web/messages.py).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

import jinja2

from gateway.circulation.clock import parse_stamp
from gateway.circulation.engine import Engine
from gateway.circulation.ill import InterlibraryLoan
from gateway.circulation.web_sessions import WebSession, close_session, find_session
from gateway.config import DatabaseSettings, IllPartner, Settings
from gateway.store import Store
from gateway.union_port import UnionSearcher
from web.http import (
    LANGUAGE_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Cookie,
    PageRequest,
    Reply,
    same_token,
    with_query,
)
from web.messages import DEFAULT_LANGUAGE, Translator, language_of

log = logging.getLogger("libgate.web")
YEAR = 365 * 24 * 3600


@dataclass
class Page:
    """What a page works with: the request, the reader's language, the session (if logged
    in), and the replies' cookies the dispatcher adds (language, a session that ended)."""

    portal: Portal
    request: PageRequest
    _: Translator
    session: WebSession | None
    session_token: str | None
    cookies: list[Cookie]
    session_ended: bool = False  # the request brought a session cookie that no longer works

    @property
    def language(self) -> str:
        return self._.language

    def render(self, template: str, status: int = 200, **context: Any) -> Reply:
        return Reply(
            status=status,
            body=self.portal.render(template, self, **context).encode("utf-8"),
            cookies=self.cookies,
        )

    def redirect(self, location: str, *, after_post: bool = True) -> Reply:
        reply = Reply.redirect(location, after_post=after_post)
        reply.cookies = self.cookies
        return reply

    def csrf_ok(self) -> bool:
        """A state-changing form carries the session's CSRF token."""
        return self.session is not None and same_token(
            self.request.arg("csrf"), self.session.csrf_token
        )

    def login_token(self) -> str:
        """The login form's double-submit token: the cookie's value, or a new one set now."""
        token = self.request.cookies.get(LOGIN_COOKIE, "")
        if not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", token):
            token = secrets.token_urlsafe(24)
            self.cookies.append(Cookie(LOGIN_COOKIE, token))
        return token


PageFunction = Callable[..., Reply]


class Portal:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine: Engine,
        ill: InterlibraryLoan | None,
        routes: list[tuple[str, str, PageFunction]],
        union: UnionSearcher | None = None,
    ) -> None:
        self.settings = settings
        self.web = settings.web
        self.store = store
        self.engine = engine
        self.ill = ill  # None: this site does not do interlibrary loan
        self.union = union  # None: no partner catalogues to search ([[union.targets]])
        # A union search holds its page thread until its deadline: set by the site, so that
        # searches can never take every page thread (None: no cap, as in tests).
        self.union_slots: threading.Semaphore | None = None
        self.idle = timedelta(minutes=settings.web.session_idle_minutes)
        self.routes = [
            (method, re.compile(pattern + r"\Z"), page) for method, pattern, page in routes
        ]
        self.environment = jinja2.Environment(
            loader=jinja2.PackageLoader("web", "templates"),
            autoescape=True,  # every value is escaped unless a template says otherwise
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.static = StaticFiles()
        self.zone = ZoneInfo(settings.web.timezone) if settings.web.timezone else None
        self.environment.filters["date"] = self.local_date
        self.environment.filters["datetime"] = self.local_datetime
        self.environment.filters["money"] = money
        # One path segment: a record id may hold "/", "?" or CJK characters.
        self.environment.filters["segment"] = lambda value: quote(str(value), safe="")

    # --- dates and amounts as readers read them ------------------------------------------------

    def local(self, value: str | None) -> datetime | None:
        if not value:
            return None
        try:
            return parse_stamp(value).astimezone(self.zone)
        except ValueError:
            return None

    def local_date(self, value: str | None) -> str:
        moment = self.local(value)
        return moment.strftime("%Y-%m-%d") if moment else (value or "")

    def local_datetime(self, value: str | None) -> str:
        moment = self.local(value)
        return moment.strftime("%Y-%m-%d %H:%M") if moment else (value or "")

    # --- the catalogue's databases -------------------------------------------------------------

    def ill_partners(self) -> tuple[IllPartner, ...]:
        """The partners in force: the ILL service's, which a config reload changes."""
        return (self.ill.settings if self.ill is not None else self.settings.ill).partners

    @property
    def databases(self) -> tuple[DatabaseSettings, ...]:
        return self.settings.databases

    def serves(self, name: str) -> bool:
        """A catalogue readers may open: a configured database. The engine keeps other
        titles in the store (the copies borrowed through ILL) that are nobody else's business."""
        return any(database.name == name for database in self.databases)

    def database(self, name: str) -> DatabaseSettings:
        for database in self.databases:
            if database.name == name:
                return database
        return self.databases[0]

    # --- dispatch ------------------------------------------------------------------------------

    def page_for(self, request: PageRequest) -> Page:
        """The request as a page sees it: the reader's language and session (read from the
        store: call it from a worker thread)."""
        cookies: list[Cookie] = []
        asked = language_of(request.arg("lang") or None)
        language = asked or language_of(request.cookies.get(LANGUAGE_COOKIE)) or DEFAULT_LANGUAGE
        if asked:  # ?lang=en is remembered
            cookies.append(Cookie(LANGUAGE_COOKIE, asked, max_age=YEAR, http_only=False))
        token = request.cookies.get(SESSION_COOKIE) or None
        session = None
        if token:
            session = find_session(self.store, token, self.engine.clock.now(), self.idle)
            if session is None:  # ended (idle, logged out elsewhere): forget the cookie
                cookies.append(Cookie(SESSION_COOKIE, "", max_age=0))
                token = None
        ended = bool(request.cookies.get(SESSION_COOKIE)) and session is None
        return Page(self, request, Translator(language), session, token, cookies, ended)

    def dispatch(self, request: PageRequest) -> Reply:
        page = self.page_for(request)
        method = "GET" if request.method == "HEAD" else request.method
        allowed = False
        for route_method, pattern, function in self.routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            allowed = True
            if route_method == method:
                # Segments are matched encoded and decoded after: an id may hold a "/".
                params = {k: unquote(v, errors="replace") for k, v in match.groupdict().items()}
                return function(page, **params)
        if allowed:
            reply = page.render("error.html", 405, heading="not_found_heading", text="not_found")
            return reply
        return page.render("error.html", 404, heading="not_found_heading", text="not_found")

    def end_session(self, token: str) -> None:
        close_session(self.store, token)

    # --- rendering -----------------------------------------------------------------------------

    def render(self, template: str, page: Page, **context: Any) -> str:
        request = page.request

        def switch_language() -> str:
            other = "en" if page.language == "zh" else "zh"
            args = {k: v[0] for k, v in request.args.items() if k not in ("lang", "csrf", "pin")}
            return (
                with_query(request.path, **args, lang=other)
                if request.method == "GET"
                else (with_query("/", lang=other))
            )

        return self.environment.get_template(template).render(
            _=page._,
            lang=page.language,
            html_lang="zh-Hans" if page.language == "zh" else "en",
            session=page.session,
            csrf=page.session.csrf_token if page.session else "",
            path=request.path,
            static=self.static.url,
            databases=self.databases,
            ill_offered=self.ill is not None,
            union_offered=self.union is not None,
            partner_names={p.agency_id: p.name or p.agency_id for p in self.ill_partners()},
            switch_language_url=switch_language(),
            database_title=lambda d: d.title_en if page.language == "en" else d.title,
            **context,
        )


def money(minor_units: int, currency: str = "CNY") -> str:
    """Fen as yuan: 150 → "¥1.50"."""
    sign = "-" if minor_units < 0 else ""
    symbol = "¥" if currency == "CNY" else f"{currency} "
    return f"{sign}{symbol}{abs(minor_units) // 100}.{abs(minor_units) % 100:02d}"


class StaticFiles:
    """The portal's stylesheet and images, read once, served under a versioned path
    (`/static/<hash>/portal.css`) that may be cached for a year."""

    TYPES = {
        ".css": "text/css; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".svg": "image/svg+xml",
        ".png": "image/png",
    }

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.versions: dict[str, str] = {}
        folder = resources.files("web") / "static"
        for entry in folder.iterdir():
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            if entry.is_file() and suffix in self.TYPES:
                data = entry.read_bytes()
                self.files[entry.name] = (data, self.TYPES[suffix])
                self.versions[entry.name] = hashlib.sha256(data).hexdigest()[:12]

    def url(self, name: str) -> str:
        return f"/static/{self.versions[name]}/{name}"

    def reply(self, path: str) -> Reply | None:
        """The file of `/static/<version>/<name>`; None if there is none."""
        match = re.fullmatch(r"/static/([0-9a-f]{12})/([A-Za-z0-9_.-]+)", path)
        if match is None or self.versions.get(match.group(2)) != match.group(1):
            return None  # an unknown file, or a version this process does not serve
        data, content_type = self.files[match.group(2)]
        return Reply(body=data, content_type=content_type, cacheable=True)


__all__ = ["Page", "Portal", "StaticFiles", "money"]
