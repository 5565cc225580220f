"""The readers' portal without a browser: a `Portal` over the circulation tests' small library
(tests/circulation_support.py), an ILL engine with one partner, and a client that keeps
cookies and reads forms the way a browser would, calling `Portal.dispatch` directly."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.circulation.ill import InterlibraryLoan
from gateway.circulation.pins import hash_pin
from gateway.config import IllPartner, Settings, WebSettings
from gateway.store import Store
from tests.circulation_support import SETTINGS, build_library
from web.http import PageRequest, Reply
from web.portal import Portal
from web.routes import ROUTES

PINS = {"A": "0000", "B": "1111", "D": "3333"}
PARTNER = IllPartner("ISIL:CN-PKU", "北京大学图书馆", "http://127.0.0.1:9/iso18626")


def portal_settings(ill: bool = True) -> Settings:
    ill_settings = replace(
        SETTINGS.ill, listen=("tcp:0",) if ill else (), partners=(PARTNER,) if ill else ()
    )
    return replace(SETTINGS, ill=ill_settings, web=WebSettings(timezone="Asia/Shanghai"))


@dataclass
class Library:
    portal: Portal
    engine: Engine
    clock: FixedClock
    ill: InterlibraryLoan | None
    store: Store


def build_portal(store: Store, tmp_path: Path, ill: bool = True) -> Library:
    engine, clock = build_library(store, tmp_path)
    with store.write() as tx:
        for barcode, pin in PINS.items():
            tx.execute(
                "UPDATE patrons SET pin_hash = ? WHERE barcode = ?", (hash_pin(pin), barcode)
            )
    settings = portal_settings(ill)
    loan = InterlibraryLoan(engine, settings.ill, clock) if ill else None
    portal = Portal(settings, store, engine, loan, ROUTES)
    return Library(portal, engine, clock, loan, store)


@dataclass
class Page:
    reply: Reply

    @property
    def status(self) -> int:
        return self.reply.status

    @property
    def html(self) -> str:
        return self.reply.body.decode("utf-8")

    @property
    def text(self) -> str:
        """The page's words without tags, entities decoded, whitespace collapsed."""
        words = re.sub(r"<[^>]+>", " ", self.html)
        return re.sub(r"\s+", " ", html.unescape(words)).strip()

    def hidden(self, name: str) -> str:
        match = re.search(rf'name="{name}" value="([^"]*)"', self.html)
        assert match, f"no hidden field {name} on the page"
        return html.unescape(match.group(1))


@dataclass
class Client:
    """A browser's part: cookies kept, redirects followed, forms posted with their tokens."""

    portal: Portal
    address: str = "192.0.2.10"
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, target: str, **fields: str) -> Page:
        return self.request_multi(method, target, fields)

    def request_multi(
        self, method: str, target: str, fields: dict[str, str], **repeated: list[str]
    ) -> Page:
        """A request whose `repeated` fields carry several values (a form's same-named
        selects), in order."""
        parts = urlsplit(target)
        args = {k: v for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        for key, value in fields.items():
            args[key] = [value]
        for key, values in repeated.items():
            args[key] = list(values)
        reply = self.portal.dispatch(
            PageRequest(method, parts.path or "/", args, dict(self.cookies), self.address)
        )
        for cookie in reply.cookies:
            if cookie.max_age == 0:
                self.cookies.pop(cookie.name, None)
            else:
                self.cookies[cookie.name] = cookie.value
        if reply.location is not None:
            return self.request("GET", reply.location)
        return Page(reply)

    def get(self, target: str, **fields: str) -> Page:
        return self.request("GET", target, **fields)

    def post(self, target: str, **fields: str) -> Page:
        return self.request("POST", target, **fields)

    def log_in(self, card: str, pin: str | None = None) -> Page:
        form = self.get("/login")
        return self.post(
            "/login",
            card=card,
            pin=PINS[card] if pin is None else pin,
            login_token=form.hidden("login_token"),
            next="/my",
        )

    def csrf(self) -> str:
        return self.get("/my").hidden("csrf")


__all__ = ["PINS", "PARTNER", "Client", "Library", "Page", "build_portal", "portal_settings"]
