"""The Twisted adapter: an HTTP site with one base path per catalogue database (`/main`,
`/japanese`), GET and POST (form-encoded), each request answered by `SruService` in a thread.

The request size is capped before anything is parsed: a Content-Length over the cap, or a body
that grows past it, is refused at once and the connection closed. Connections and their
deadlines are sru/channel.py's; the bounded, per-address work queue is sru/workqueue.py's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from twisted.application.service import MultiService
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server

from gateway.admission import ConnectionCaps, address_key
from gateway.circulation.engine import Engine
from gateway.config import ConfigError, Settings
from gateway.http_access import HttpAccess
from gateway.http_listener import CappedRequest, connection_caps
from gateway.networks import Networks
from gateway.records.schemas import SCHEMAS
from gateway.records.xml import RecordCache
from gateway.services import ThreadPoolService, add_listeners, engine_threads
from gateway.store import Store
from sru.channel import Deadlines, SruSite, raw_refusal, refusal_document
from sru.request import AUTO_SCHEMA, SEARCH_RETRIEVE, Limits
from sru.resultsets import ResultSets, ResultSetStore, SharedResultSetStore
from sru.service import Reply, SruService
from sru.workqueue import WorkQueue

log = logging.getLogger("libgate.sru")
FORM = b"application/x-www-form-urlencoded"


class DatabaseResource(resource.Resource):
    """`/<database>`: every method answers with an SRU document."""

    isLeaf = True

    # Resource.__init__ is called by name: Twisted leaves it unannotated and mypy's
    # untyped-call exclusion for twisted does not reach calls through super().
    def __init__(
        self, name: str, service: SruService, queue: WorkQueue[Reply | None], max_bytes: int
    ) -> None:
        resource.Resource.__init__(self)
        self.name = name
        self.service = service
        self.queue = queue
        self.max_bytes = max_bytes

    def render_GET(self, request: server.Request) -> int | bytes:
        query = request.uri.partition(b"?")[2]
        return self._dispatch(request, query)

    def render_HEAD(self, request: server.Request) -> int | bytes:
        return self.render_GET(request)

    def render_POST(self, request: server.Request) -> int | bytes:
        content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if content_type != FORM:
            return self._immediate(
                request, 6, "Content-Type", "POST a form: application/x-www-form-urlencoded"
            )
        body = request.content.read(self.max_bytes + 1) if request.content else b""
        if len(body) > self.max_bytes:
            return self._too_large(request)
        query = request.uri.partition(b"?")[2]
        return self._dispatch(request, body + (b"&" + query if query else b""))

    def _dispatch(self, request: server.Request, raw: bytes) -> int | bytes:
        access = HttpAccess(request, "sru", log, SEARCH_RETRIEVE)
        if len(raw) > self.max_bytes:
            return self._too_large(request)
        peer = request.getClientAddress()
        address = address_key(str(getattr(peer, "host", peer)))
        if not self.queue.admit(address):
            request.setResponseCode(503)
            request.setHeader(b"retry-after", b"1")
            return self._immediate(request, 2, "", "System temporarily unavailable: too busy")
        host = request.getRequestHostname().decode("ascii", "replace")
        port = request.getHost().port
        finished = request.notifyFinish()
        gone: list[bool] = []
        finished.addErrback(lambda _failure: gone.append(True))
        queue = self.queue

        def work() -> Reply | None:
            if gone:  # the client went away while the request waited: nobody wants it
                return None
            return self.service.handle(self.name, raw, host, port)

        deferred = queue.submit(address, work)

        def write(reply: Reply | None) -> None:
            if reply is None:
                queue.dropped += 1
                return
            if gone:  # the client went away while we searched
                return
            access.command, access.query = reply.operation or access.command, reply.query
            access.outcome = reply.outcome
            request.setResponseCode(reply.status)
            request.setHeader(b"content-type", reply.content_type.encode("ascii"))
            # Known length: one write of headers and body, not chunked transfer coding.
            request.setHeader(b"content-length", b"%d" % len(reply.body))
            request.write(reply.body)
            request.finish()

        def fail(failure: Failure) -> None:
            log.error("SRU handler failed: %s", failure.getTraceback())
            if not gone:
                request.setResponseCode(500)
                request.setHeader(b"content-type", b"text/xml; charset=UTF-8")
                request.write(refusal_document(1, "", "General system error"))
                request.finish()

        deferred.addCallbacks(write, fail)
        return server.NOT_DONE_YET

    def _immediate(self, request: server.Request, number: int, details: str, message: str) -> bytes:
        request.setHeader(b"content-type", b"text/xml; charset=UTF-8")
        return refusal_document(number, details, message)

    def _too_large(self, request: server.Request) -> bytes:
        request.setResponseCode(413)
        return self._immediate(
            request, 6, "request", f"the request is larger than {self.max_bytes} bytes"
        )


class NotFound(resource.Resource):
    isLeaf = True

    def __init__(self, known: Sequence[str]) -> None:
        resource.Resource.__init__(self)
        self.known = known

    def render(self, request: server.Request) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/xml; charset=UTF-8")
        return refusal_document(
            1, "database", f"no such database; SRU bases: /{', /'.join(self.known)}"
        )


class Root(resource.Resource):
    def __init__(self, databases: dict[str, DatabaseResource]) -> None:
        resource.Resource.__init__(self)
        self.databases = databases
        self.missing = NotFound(list(databases))

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        found = self.databases.get(path.decode("utf-8", "replace"))
        if found is None or any(request.postpath or ()):  # /main/ is /main; /main/extra is nothing
            return self.missing
        return found

    def render(self, request: server.Request) -> bytes:
        return self.missing.render(request)


class SruRequest(CappedRequest):
    """A request whose body over the cap is answered 413 with an SRU document."""

    def refusal(self) -> bytes:
        return raw_refusal(
            b"413 Request Entity Too Large",
            6,
            "request",
            f"the request is larger than {self.max_bytes} bytes",
        )


def limits_from(settings: Settings) -> Limits:
    sru = settings.sru
    if sru.default_schema not in SCHEMAS and sru.default_schema != AUTO_SCHEMA:
        raise ConfigError(
            f"sru.default_schema: {sru.default_schema!r} is not auto or one of {', '.join(SCHEMAS)}"
        )
    return Limits(
        default_records=sru.default_records,
        max_records=sru.max_records,
        default_schema=sru.default_schema,
        default_terms=sru.default_terms,
        max_terms=sru.max_terms,
        max_result_set_ttl=sru.result_set_ttl,
        default_sort=sru.default_sort,
    )


def result_set_store(settings: Settings, store: Store) -> ResultSets:
    """In the store when another process may take the next request: several workers, or
    PostgreSQL (how several gateways share one catalogue); else in this process's memory."""
    sru = settings.sru
    if settings.service.worker_count() > 1 or store.dialect == "postgresql":
        return SharedResultSetStore(store, sru.result_sets, sru.result_set_max_records)
    return ResultSetStore(sru.result_sets, sru.result_set_max_records)


def build_site(settings: Settings, store: Store, engine: Engine, pool: ThreadPool) -> SruSite:
    service = SruService(
        store,
        engine,
        settings.databases,
        limits_from(settings),
        result_set_store(settings, store),
        RecordCache(settings.sru.record_cache),
    )
    sru = settings.sru
    max_bytes = sru.max_request_bytes
    queue: WorkQueue[Reply | None] = WorkQueue(pool, sru.max_queued)
    databases = {
        d.name: DatabaseResource(d.name, service, queue, max_bytes) for d in settings.databases
    }
    connections = ConnectionCaps(connection_caps(sru), Networks(sru.uncapped_networks))
    deadlines = Deadlines(sru.header_timeout, sru.body_timeout, sru.keepalive_timeout)
    # The request line holds the whole query of a GET: it may be as long as a request may be,
    # plus the method, path and version; longer gets 414 with an SRU document.
    site = SruSite(Root(databases), connections, deadlines, max(16384, max_bytes + 1024))
    cap = max_bytes

    class CappedSruRequest(SruRequest):
        max_bytes = cap

    site.requestFactory = CappedSruRequest
    return site


def sru_services(
    settings: Settings, store: Store, engine: Engine
) -> tuple[MultiService, list[str]]:
    """The SRU listeners from `[sru] listen`, under their thread pool's service."""
    from twisted.internet import reactor  # the process's reactor, as strports would take

    threads = engine_threads(store, settings.storage, settings.sru.threads)
    pool = ThreadPool(minthreads=1, maxthreads=threads, name="sru")
    site = build_site(settings, store, engine, pool)
    service = ThreadPoolService(pool)
    paths = ", ".join(f"/{d.name}" for d in settings.databases)
    described = add_listeners(
        service,
        reactor,
        settings.sru.listen,
        site,
        lambda endpoint: f"SRU 1.1/1.2/2.0 on {endpoint} ({paths})",
    )
    return service, described


__all__ = ["build_site", "sru_services"]
