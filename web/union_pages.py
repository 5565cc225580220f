"""The union search tab (联合检索): one search across the partner libraries' catalogues, each
library's state (answered with hits, no answer in time, failed, a diagnostic) and the merged
works with the libraries holding them; from a work, an ILL request pre-filled from its record
with the holding libraries as the lenders, in order.

The page answers when the search ends: when every library has answered, at the latest at
`[union] timeout`. The search itself is the composition root's `UnionSearcher`
(gateway/union_port.py); this module never sees union/."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from gateway.catalogue.query import QueryError
from gateway.union_port import UnionWork
from web.catalogue_pages import query_problem
from web.http import Reply
from web.portal import Page

log = logging.getLogger("libgate.web")
QUERY_LIMIT = 500  # characters of the search box read


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


def union_search(page: Page) -> Reply:
    union = page.portal.union
    if union is None:
        return page.render("error.html", 404, heading="not_found_heading", text="not_found")
    text = page.request.arg("q").strip()[:QUERY_LIMIT]
    timeout = page.portal.settings.union.timeout
    seconds = f"{timeout:g}"
    if not text:
        return page.render("union.html", q=text, timeout=seconds, outcome=None, problem="")
    slots = page.portal.union_slots
    if slots is not None and not slots.acquire(blocking=False):
        return page.render(
            "union.html", 503, q=text, timeout=seconds, outcome=None, problem=page._("busy")
        )
    try:
        outcome = union.search(text, None, timeout)
    except QueryError as error:
        problem = query_problem(page._, error)
        return page.render(
            "union.html", 400, q=text, timeout=seconds, outcome=None, problem=problem
        )
    finally:
        if slots is not None:
            slots.release()
    log.info(
        "web union_search libraries=%s works=%d",
        ",".join(f"{x.name}:{x.state}" for x in outcome.libraries),
        len(outcome.works),
    )
    can_request = page.session is not None and page.portal.ill is not None
    return page.render(
        "union.html",
        q=text,
        timeout=seconds,
        outcome=outcome,
        problem="",
        answered=sum(1 for x in outcome.libraries if x.state == "ok"),
        ill_links=[ill_link(w) if can_request and w.lenders else "" for w in outcome.works],
    )


__all__ = ["ill_link", "union_search"]
