"""The ops listener (`[ops] listen`): what a monitor asks of a running gateway.

- `/health`: liveness. The process runs its reactor: `{"status": "ok", "version", "pid"}`.
- `/ready`: whether it can do its work. Each check runs in the ops thread pool with a deadline
  (`[ops] check_timeout`), so a store that does not answer fails its check instead of hanging
  the probe: the store answers a trivial query (and, on SQLite, its file is still the one
  opened), the search index has applied every catalogue change of the store, and fewer
  notices than `[ops] max_notice_backlog` wait to be sent. 200 when all pass, 503 otherwise;
  the JSON lists every check with its outcome.
- `/metrics`: gateway/metrics.py in Prometheus' text format (every metric is listed there), the
  sums over every worker under `[service] workers` > 1, rendered in the same thread pool.

The listener has the limits of every HTTP listener here (gateway/http_listener.py): connection
caps, phase deadlines and a request size cap. It serves no catalogue and no reader data.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from twisted.application.internet import TimerService
from twisted.application.service import MultiService
from twisted.internet import defer, reactor, threads
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server

from gateway import metrics
from gateway.admission import ConnectionCaps
from gateway.catalogue import textindex
from gateway.catalogue.batches.totals import batch_totals
from gateway.config import OpsSettings, Settings
from gateway.http_listener import CappedRequest, Deadlines, LimitedSite, connection_caps
from gateway.networks import Networks
from gateway.services import ThreadPoolService, add_listeners, as_server_reactor
from gateway.store import Store
from gateway.workers import current_role

log = logging.getLogger("libgate.ops")
# A stuck check holds one; the next probe still gets another, and so does /metrics.
CHECK_THREADS = 3


def version() -> str:
    try:
        return metadata.version("libgate")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


# --- the checks: synchronous, each run in a thread ---------------------------------------------


def check_store(store: Store, timeout: float = 5.0) -> Check:
    path = getattr(store, "path", None)
    # An open SQLite connection keeps reading a deleted file; a restart would not find it.
    on_disk = store.dialect == "sqlite" and isinstance(path, str) and not path.startswith(":")
    if on_disk and not Path(str(path)).is_file():
        return Check("store", False, f"database file {path} is missing")
    store.ping(timeout)
    return Check("store", True, store.dialect)


def check_index(store: Store) -> Check:
    with store.read() as tx:
        wanted = textindex.store_state(tx)
    have = textindex.index_for(store).state
    if have.store_id != wanted.store_id:
        return Check("search_index", False, "the index was built from another store")
    if have.seq < wanted.seq:
        return Check(
            "search_index", False, f"{wanted.seq - have.seq} catalogue changes not indexed yet"
        )
    return Check("search_index", True, f"change {have.seq}")


def check_notices(store: Store, most: int) -> Check:
    with store.read() as tx:
        waiting = int(tx.scalar("SELECT COUNT(*) FROM notices WHERE state = 'queued'"))
    return Check("notice_backlog", waiting <= most, f"{waiting} queued (most {most})")


# --- the resources --------------------------------------------------------------------------------


def _json(request: server.Request, status: int, body: object) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


class Health(resource.Resource):
    isLeaf = True

    def __init__(self) -> None:
        resource.Resource.__init__(self)

    def render_GET(self, request: server.Request) -> bytes:
        return _json(request, 200, {"status": "ok", "version": version(), "pid": os.getpid()})


class Ready(resource.Resource):
    isLeaf = True

    def __init__(self, store: Store, settings: OpsSettings, pool: ThreadPool) -> None:
        resource.Resource.__init__(self)
        self.store = store
        self.settings = settings
        self.pool = pool

    def _run(self, name: str, check: Callable[[], Check]) -> defer.Deferred[Check]:
        deferred: defer.Deferred[Check] = threads.deferToThreadPool(
            as_server_reactor(reactor), self.pool, check
        )
        deferred.addTimeout(self.settings.check_timeout, reactor)

        def failed(failure: Failure) -> Check:
            if failure.check(defer.TimeoutError):
                return Check(name, False, f"no answer within {self.settings.check_timeout} s")
            return Check(name, False, f"{type(failure.value).__name__}: {failure.value}"[:300])

        return deferred.addErrback(failed)

    def render_GET(self, request: server.Request) -> int:
        store, most = self.store, self.settings.max_notice_backlog

        def the_rest(reached: Check) -> defer.Deferred[list[Check]]:
            # The other checks read the store: without it they would only wait for its
            # connections (holding this listener's threads), so they are not run.
            if not reached.ok:
                skipped = [
                    Check(n, False, "not checked: the store does not answer")
                    for n in (
                        "search_index",
                        "notice_backlog",
                    )
                ]
                return defer.succeed([reached, *skipped])
            others = [
                self._run("search_index", lambda: check_index(store)),
                self._run("notice_backlog", lambda: check_notices(store, most)),
            ]
            return defer.gatherResults(others).addCallback(lambda found: [reached, *found])

        def answer(results: list[Check]) -> None:
            ready = all(check.ok for check in results)
            body = {
                "status": "ready" if ready else "not ready",
                "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in results},
            }
            if not request.finished and not request._disconnected:
                request.write(_json(request, 200 if ready else 503, body))
                request.finish()

        store_check = self._run("store", lambda: check_store(store, self.settings.check_timeout))
        store_check.addCallback(the_rest).addCallback(answer)
        return server.NOT_DONE_YET


class Metrics(resource.Resource):
    """The exposition reads the workers' files, the batch tables and the pool's statistics:
    it runs in the ops thread pool, not on the reactor."""

    isLeaf = True

    def __init__(self, exposition: metrics.Exposition, pool: ThreadPool) -> None:
        resource.Resource.__init__(self)
        self.exposition = exposition
        self.pool = pool

    def render_GET(self, request: server.Request) -> int:
        rendered: defer.Deferred[bytes] = threads.deferToThreadPool(
            as_server_reactor(reactor), self.pool, self.exposition.render
        )

        def answer(body: bytes) -> None:
            if request.finished or request._disconnected:
                return
            request.setHeader(b"content-type", metrics.CONTENT_TYPE.encode())
            request.setHeader(b"cache-control", b"no-store")
            request.write(body)
            request.finish()

        def failed(failure: Failure) -> None:
            # Our bug (a store that does not answer only leaves the batch families out).
            log.error("metrics: %s", failure.getErrorMessage())
            if not request.finished and not request._disconnected:
                request.setResponseCode(500)
                request.setHeader(b"content-type", b"text/plain; charset=utf-8")
                request.write(f"metrics failed: {failure.getErrorMessage()}\n".encode())
                request.finish()

        rendered.addCallbacks(answer, failed)
        return server.NOT_DONE_YET


class OpsRequest(CappedRequest):
    def refusal(self) -> bytes:
        return b"HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\n\r\n"


def build_site(
    settings: Settings, store: Store, pool: ThreadPool, exposition: metrics.Exposition
) -> LimitedSite:
    ops = settings.ops
    root = resource.Resource()
    root.putChild(b"health", Health())
    root.putChild(b"ready", Ready(store, ops, pool))
    root.putChild(b"metrics", Metrics(exposition, pool))
    connections = ConnectionCaps(connection_caps(ops), Networks(ops.uncapped_networks))
    deadlines = Deadlines(
        header=ops.header_timeout, body=ops.body_timeout, keepalive=ops.keepalive_timeout
    )
    site = LimitedSite("Ops", root, connections, deadlines, max(8192, ops.max_request_bytes))

    class CappedOpsRequest(OpsRequest):
        max_bytes = ops.max_request_bytes

    site.requestFactory = CappedOpsRequest
    return site


def ops_services(settings: Settings, store: Store) -> tuple[MultiService, list[str]]:
    """The ops listeners from `[ops] listen`, under their check pool's service."""
    pool = ThreadPool(minthreads=1, maxthreads=CHECK_THREADS, name="ops")
    exposition = metrics.Exposition(store, batch_totals)
    site = build_site(settings, store, pool, exposition)
    service = ThreadPoolService(pool)
    if current_role().supervised and store.pool_stats() is not None:
        # A scrape reads the pool of the worker that answers it; the others' pools reach the
        # shared files this often (gauges summed over the live workers).
        refresh = TimerService(metrics.POOL_REFRESH_SECONDS, exposition.pool.refresh)
        refresh.setServiceParent(service)
    described = add_listeners(
        service,
        reactor,
        settings.ops.listen,
        site,
        lambda endpoint: f"ops (/health, /ready, /metrics) on {endpoint}",
    )
    return service, described


__all__ = ["Check", "check_index", "check_notices", "check_store", "ops_services", "version"]
