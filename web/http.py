"""The portal's requests and replies as plain values, so that every page is a synchronous
function of a `PageRequest` (tested without sockets) and the Twisted adapter
(web/resource.py) only moves them on and off the wire."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

SESSION_COOKIE = "libgate_session"
LANGUAGE_COOKIE = "libgate_lang"
LOGIN_COOKIE = "libgate_login"  # the login form's double-submit CSRF token (before a session)


@dataclass(frozen=True)
class PageRequest:
    method: str  # GET | POST | HEAD
    path: str  # decoded, without the query
    args: dict[str, list[str]]  # query and form fields, decoded as UTF-8
    cookies: dict[str, str]
    address: str  # the peer's IP address
    secure: bool = False  # came over TLS: cookies get Secure

    def arg(self, name: str, default: str = "") -> str:
        values = self.args.get(name)
        return values[0] if values else default

    def arg_int(self, name: str, default: int, low: int, high: int) -> int:
        """An integer field clamped to low..high; anything unreadable is the default."""
        try:
            value = int(self.arg(name, str(default)))
        except ValueError:
            return default
        return max(low, min(high, value))


@dataclass(frozen=True)
class Cookie:
    name: str
    value: str
    max_age: int | None = None  # seconds; None: a session cookie; 0: delete it
    http_only: bool = True


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    location: str | None = None  # a redirect (303 after a POST, 302 otherwise)
    cookies: list[Cookie] = field(default_factory=list)
    cacheable: bool = False  # pages are private and never cached; static files are

    @classmethod
    def redirect(cls, location: str, *, after_post: bool = True) -> Reply:
        return cls(status=303 if after_post else 302, location=location)


def same_token(sent: str, expected: str) -> bool:
    """A token from a form or cookie equals the expected one, compared in constant time (as
    bytes: a form may send any characters, and `compare_digest` refuses non-ASCII text)."""
    return bool(sent) and hmac.compare_digest(sent.encode(), expected.encode())


# A path on this site, and nothing a browser could read as another site: no "//" start, no
# backslash, no whitespace or control character (browsers drop tabs, so "/\t/x" is "//x").
LOCAL_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9/_.~%?=&#:+,;@!$'()*-]*")


def local_path(target: str, fallback: str = "/") -> str:
    """`target` if it is a path on this site, else `fallback`: a `next` parameter can never
    send a reader to another site after login (an open redirect)."""
    return target if LOCAL_PATH.fullmatch(target) else fallback


def parse_cookies(header: str) -> dict[str, str]:
    """The name=value pairs of a Cookie header, read leniently: one malformed cookie of another
    application on the same host (a consent banner's JSON) must not hide ours."""
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in cookies:
            cookies[name] = value.strip().strip('"')
    return cookies


def with_query(path: str, **params: str | int) -> str:
    """`path?a=1&b=2` with the empty parameters left out."""
    kept = {k: v for k, v in params.items() if v not in ("", None)}
    return f"{path}?{urlencode(kept)}" if kept else path


__all__ = [
    "LANGUAGE_COOKIE",
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "Cookie",
    "PageRequest",
    "Reply",
    "local_path",
    "parse_cookies",
    "same_token",
    "with_query",
]
