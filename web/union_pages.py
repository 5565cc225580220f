"""The union search tab (联合检索): one search across the partner libraries' catalogues, each
library's state as it goes (connecting, searching, answered with hits, no answer in time,
failed, a diagnostic) and the merged works with the libraries holding them, sorted and
narrowed by facets; from a work, an ILL request pre-filled from its record with the holding
libraries as the lenders, in order.

With script, the page answers at once and follows the search live: web/union_live.py streams
this module's two fragments (the libraries, the works) as the libraries answer. Without
script, the page waits for the search's end (`wait=1`, at the latest `[union] timeout`). The
search itself is the composition root's `UnionSearcher` (gateway/union_port.py); this module
never sees union/."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from gateway.catalogue.query import QueryError
from gateway.cql.free_text import read_query
from gateway.union_port import (
    FACETS,
    SORTS,
    LibraryOutcome,
    UnionOutcome,
    UnionView,
    UnionWork,
)
from web.catalogue_pages import query_problem
from web.http import PageRequest, Reply
from web.portal import Page, Portal

log = logging.getLogger("libgate.web")
QUERY_LIMIT = 500  # characters of the search box read
LIVE_PATH = "/union/live"


@dataclass(frozen=True)
class UnionAsk:
    """One union search as the reader asked it: the words, the libraries ticked (all when
    none is), and how to look at the works."""

    text: str
    libraries: tuple[str, ...] = ()
    view: UnionView = field(default_factory=UnionView)

    def params(
        self, sort: str | None = None, only: tuple[tuple[str, str], ...] | None = None
    ) -> list[tuple[str, str]]:
        """The ask as query parameters, with `sort` or the facets (`only`) changed."""
        sort = sort or self.view.sort
        pairs = [("q", self.text), *(("lib", name) for name in self.libraries)]
        if sort != "relevance":
            pairs.append(("sort", sort))
        return pairs + list(self.view.only if only is None else only)

    def url(
        self,
        path: str = "/union",
        sort: str | None = None,
        only: tuple[tuple[str, str], ...] | None = None,
    ) -> str:
        return f"{path}?{urlencode(self.params(sort, only))}"

    def narrowed_to(self, name: str, value: str) -> str:
        return self.url(only=(*self.view.only, (name, value)))

    def widened_from(self, name: str, value: str) -> str:
        return self.url(only=tuple(x for x in self.view.only if x != (name, value)))


def read_ask(page: Page, known: list[str]) -> UnionAsk:
    """The reader's ask from the request; libraries and facets not on offer are left out."""
    request = page.request
    text = request.arg("q").strip()[:QUERY_LIMIT]
    ticked = tuple(dict.fromkeys(n for n in request.args.get("lib", []) if n in known))
    if set(ticked) == set(known):
        ticked = ()  # every library ticked is no choice: the URL stays short
    sort = request.arg("sort", "relevance")
    only = tuple(
        (name, value[:100]) for name in FACETS for value in request.args.get(name, [])[:5] if value
    )
    view = UnionView(sort=sort if sort in SORTS else "relevance", only=only)
    return UnionAsk(text, ticked, view)


def ill_link(work: UnionWork) -> str:
    """/my/ill/new pre-filled from the work, the holding partners as the lenders in order."""
    fields = {
        "title": work.title,
        "author": work.author,
        "publisher": work.publisher,
        "year": work.year,
        "isbn": work.isbn,
        "language": work.language,
        "holders": ",".join(work.lenders),
    }
    return "/my/ill/new?" + urlencode({k: v for k, v in fields.items() if v})


def facet_label(page: Page, name: str, value: str) -> str:
    """A facet value as the reader reads it: a language by its name where the portal knows it."""
    if name == "language" and page._.has(f"language_{value}"):
        return page._(f"language_{value}")
    return value


def fragments_context(page: Page, ask: UnionAsk, outcome: UnionOutcome) -> dict[str, Any]:
    """What the two fragments (union_libraries.html, union_works.html) are rendered with, on
    the full page and in each live update alike."""
    can_request = page.session is not None and page.portal.ill is not None
    return {
        "ask": ask,
        "outcome": outcome,
        "answered": sum(1 for x in outcome.libraries if x.state == "ok"),
        "waiting": sum(1 for x in outcome.libraries if x.state in ("connecting", "searching")),
        "ill_links": [ill_link(w) if can_request and w.lenders else "" for w in outcome.works],
        "facet_label": lambda name, value: facet_label(page, name, value),
        "sorts": SORTS,
    }


def render_fragments(page: Page, ask: UnionAsk, outcome: UnionOutcome) -> dict[str, str]:
    """The libraries' states and the works, as HTML to put in the page's two regions."""
    context = fragments_context(page, ask, outcome)
    return {
        "libraries": page.portal.render("union_libraries.html", page, **context),
        "works": page.portal.render("union_works.html", page, **context),
    }


def log_outcome(outcome: UnionOutcome, live: bool) -> None:
    log.info(
        "web union_search live=%s libraries=%s works=%d",
        "yes" if live else "no",
        ",".join(f"{x.name}:{x.state}" for x in outcome.libraries),
        outcome.total_works,
    )


def live_ask(portal: Portal, request: PageRequest) -> tuple[Page, UnionAsk] | Reply:
    """For the live stream (web/union_live.py), in a page thread: the reader's page (language,
    session) and ask, or the reply when there is no union search here."""
    page = portal.page_for(request)
    if portal.union is None:
        return page.render("error.html", 404, heading="not_found_heading", text="not_found")
    return page, read_ask(page, portal.union.library_names())


def union_search(page: Page) -> Reply:
    union = page.portal.union
    if union is None:
        return page.render("error.html", 404, heading="not_found_heading", text="not_found")
    known = union.library_names()
    ask = read_ask(page, known)
    timeout = union.timeout
    common: dict[str, Any] = {
        "ask": ask,
        "libraries": known,
        "timeout": f"{timeout:g}",
        "live": "",
        "sorts": SORTS,
    }
    if not ask.text:
        return page.render("union.html", outcome=None, problem="", **common)
    try:
        read_query(ask.text)
    except QueryError as error:
        problem = query_problem(page._, error)
        return page.render("union.html", 400, outcome=None, problem=problem, **common)
    chosen = list(ask.libraries) or None
    if page.request.arg("wait") != "1":
        # The page answers now; its script follows the search at LIVE_PATH (a browser without
        # script comes back with wait=1 and waits for the end).
        starting = UnionOutcome(
            libraries=tuple(
                LibraryOutcome(name=name, state="connecting")
                for name in (ask.libraries or tuple(known))
            ),
            works=(),
            finished=False,
        )
        context = {**fragments_context(page, ask, starting), "live": ask.url(LIVE_PATH)}
        return page.render("union.html", problem="", **{**common, **context})
    slots = page.portal.union_slots
    if slots is not None and not slots.acquire(blocking=False):
        return page.render("union.html", 503, outcome=None, problem=page._("busy"), **common)
    try:
        outcome = union.search(ask.text, chosen, timeout, ask.view)
    finally:
        if slots is not None:
            slots.release()
    log_outcome(outcome, live=False)
    context = fragments_context(page, ask, outcome)
    return page.render("union.html", problem="", **{**common, **context})


__all__ = [
    "LIVE_PATH",
    "UnionAsk",
    "fragments_context",
    "ill_link",
    "live_ask",
    "log_outcome",
    "read_ask",
    "render_fragments",
    "union_search",
]
