"""The union search tab, live: one union search streamed to one browser as Server-Sent Events
(`GET /union/live?q=…`, read by web/static/union.js). Each event carries one of the page's
two regions, rendered by the same templates as the whole page: `libraries` (each library's
state) and `works` (the merged works, their order and facets); `done` ends the stream.

The search runs on the reactor and belongs to this one response: a reader who leaves (closes
the page, follows a link) cancels it, and its partner connections close. Any gateway worker
can serve the stream; nothing is kept between requests. Updates are coalesced: at most one
per `FLUSH_SECONDS`, and the last at once when the search ends."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure
from twisted.web import server

from gateway.catalogue.query import QueryError
from gateway.union_port import RunningSearch, UnionSearcher
from web.catalogue_pages import query_problem
from web.portal import Page
from web.union_pages import UnionAsk, log_outcome, render_fragments

log = logging.getLogger("libgate.web")
FLUSH_SECONDS = 0.15  # at most this often a live page is rewritten while libraries answer


def sse_event(name: str, data: str) -> bytes:
    """One event: its name and its data, a `data:` line per line of text."""
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return (f"event: {name}\n" + "".join(f"data: {line}\n" for line in lines) + "\n").encode()


class LiveUnionSearch:
    """Streams one search to one request; `on_end` is called once when the stream ends."""

    def __init__(
        self,
        request: server.Request,
        page: Page,
        ask: UnionAsk,
        union: UnionSearcher,
        reactor: Any,
        on_end: Callable[[], None],
    ) -> None:
        self.request = request
        self.page = page
        self.ask = ask
        self.union = union
        self.reactor = reactor
        self.on_end = on_end
        self.running: RunningSearch | None = None
        self.pending: IDelayedCall | None = None
        self.ended = False

    def start(self) -> None:
        self._open()
        timeout = self.union.timeout
        try:
            self.running = self.union.start(
                self.ask.text,
                list(self.ask.libraries) or None,
                timeout,
                self.ask.view,
                self.changed,
            )
        except QueryError as error:
            self.problem(query_problem(self.page._, error))
            return
        self.flush()  # every library's first state at once

    def refuse(self, why: str) -> None:
        """No search: the stream says why (the system is busy) and ends."""
        self._open()
        self.problem(why)

    def _open(self) -> None:
        request = self.request
        request.setResponseCode(200)
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"x-accel-buffering", b"no")  # a proxy in front must not hold events
        request.notifyFinish().addBoth(self._gone)

    def problem(self, text: str) -> None:
        """The stream's only news: the search cannot run (the page shows it in place of works)."""
        words = self.page.portal.render("union_problem.html", self.page, problem=text)
        self._write(sse_event("works", words) + sse_event("done", ""))
        self._end()

    def changed(self) -> None:
        if self.ended or self.running is None:
            return
        if self.running.finished:
            self.flush()
        elif self.pending is None:
            self.pending = self.reactor.callLater(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self.pending is not None and self.pending.active():
            self.pending.cancel()
        self.pending = None
        if self.ended or self.running is None:
            return
        outcome = self.running.snapshot()
        regions = render_fragments(self.page, self.ask, outcome)
        events = sse_event("libraries", regions["libraries"]) + sse_event("works", regions["works"])
        if outcome.finished:
            log_outcome(outcome, live=True)
            self._write(events + sse_event("done", ""))
            self._end()
        else:
            self._write(events)

    def _write(self, data: bytes) -> None:
        if not self.ended and not getattr(self.request, "_disconnected", False):
            self.request.write(data)

    def _end(self) -> None:
        if self.ended:
            return
        self.ended = True
        if not self.request.finished and not getattr(self.request, "_disconnected", False):
            self.request.finish()

    def _gone(self, result: object) -> None:
        """The response ended: finished here, or the reader went away (then stop the search)."""
        if isinstance(result, Failure) or not self.ended:
            self.ended = True
            if self.pending is not None and self.pending.active():
                self.pending.cancel()
            if self.running is not None and not self.running.finished:
                self.running.cancel()
        self.on_end()


__all__ = ["FLUSH_SECONDS", "LiveUnionSearch", "sse_event"]
