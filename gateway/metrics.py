"""Every Prometheus metric libgate exports (`libgate_...`), defined here and nowhere else, and
the small functions the front-ends and the core call to count.

The ops listener (gateway/ops.py) serves them at `/metrics`. Front-ends import this module,
never each other; each call is a dictionary lookup and an atomic add, cheap enough for every
SIP2 message. The exported names (a counter gets `_total`, a histogram `_bucket`, `_sum` and
`_count`):

    libgate_connections_open{protocol}                gauge    open now (summed over live workers)
    libgate_connections_accepted_total{protocol}      counter  let in
    libgate_connections_refused_total{protocol}       counter  refused by a connection cap
    libgate_sip2_messages_total{command,outcome}      counter  SIP2 messages answered
    libgate_sip2_message_seconds{command}             histogram  read to answer written
    libgate_sru_requests_total{operation,outcome}     counter  ok | diagnostic
    libgate_sru_diagnostics_total{operation,diagnostic}  counter  fatal diagnostics by number
    libgate_z3950_requests_total{operation,outcome}   counter  APDUs answered
    libgate_z3950_diagnostics_total{operation,diagnostic}  counter  Bib-1 conditions
    libgate_ill_messages_received_total{message,outcome}  counter  ok | the errorType answered
    libgate_ill_messages_sent_total{message,outcome}  counter  delivered | refused | retry | failed
    libgate_ill_retries_total{message}                counter  sends of a message that failed before
    libgate_notices_queued_total{kind}                counter  written to the outbox
    libgate_notices_sent_total                        counter  handed to the SMTP server
    libgate_notices_failed_total{state}               counter  failed attempts (queued | failed)
    libgate_batches{kind,state}                       gauge    batches in the store (read from it)
    libgate_batch_records_total{kind,outcome}         counter  records of those batches, by outcome
    libgate_db_pool_connections{state}                gauge    PostgreSQL pool: in_use | idle
    libgate_db_pool_max_connections                   gauge    PostgreSQL pool: its max_size
    libgate_db_pool_waiting_requests                  gauge    waiting for a pool connection now
    libgate_db_pool_requests_total                    counter  connections asked of the pool
    libgate_db_pool_wait_seconds_total                counter  time spent waiting for them
    libgate_db_pool_timeouts_total                    counter  requests that got no connection

Labels are bounded: protocol names, SIP2 command codes, operations, diagnostic numbers, the
ISO 18626 message kinds and error types, notice kinds, batch kinds, states and outcomes.
Never a patron, an account, a query or an address.

Workers (`[service] workers` > 1): the supervisor gives the workers one directory for their
values (prometheus-client's multiprocess mode, gateway/worker_metrics.py), so a scrape answered
by any worker shows the site's sums. prometheus-client chooses where values live when it is
first imported, so nothing imports it before the supervisor has chosen: every metric is built
on first use (`_metrics()`), not when this module is imported.

Two families are not counted in the serving processes but read at scrape time:
- batches and their records: loads run in the `libgate load` process, which nobody scrapes, so
  the numbers are read from the store's batch tables (cached for BATCH_CACHE_SECONDS);
- the PostgreSQL pool: read from the pool's statistics (`Store.pool_stats`) at each scrape, and
  under workers every POOL_REFRESH_SECONDS by each worker, so the sum covers every pool.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from gateway.store import Store, StoreError, Transaction

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

log = logging.getLogger("libgate.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client reads this name
BATCH_CACHE_SECONDS = 5.0
POOL_REFRESH_SECONDS = 5.0
STORE_TIMEOUT_SECONDS = 2.0  # the batch tables are read only if the store answers within it
SIP2_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Metrics:
    """The metrics of this process, built once, on first use (see the module's docstring)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        # --- connections (every listener; counted by gateway/admission.ConnectionCaps) -----
        self.connections_open = Gauge(
            "libgate_connections_open",
            "Connections open now, per protocol (sip2, sru, z3950, ill, web, ops).",
            ["protocol"],
            multiprocess_mode="livesum",  # a dead worker's connections died with it
        )
        self.connections_accepted = Counter(
            "libgate_connections_accepted", "Connections let in, per protocol.", ["protocol"]
        )
        self.connections_refused = Counter(
            "libgate_connections_refused",
            "Connections refused by a connection cap, per protocol.",
            ["protocol"],
        )
        # --- SIP2 (sip2/server.py, one call per answered message) ---------------------------
        self.sip2_messages = Counter(
            "libgate_sip2_messages",
            "SIP2 messages answered, by command (the request's two digits) and outcome.",
            ["command", "outcome"],
        )
        self.sip2_seconds = Histogram(
            "libgate_sip2_message_seconds",
            "Seconds from a SIP2 message read to its answer written, by command.",
            ["command"],
            buckets=SIP2_BUCKETS,
        )
        # --- SRU and Z39.50 ------------------------------------------------------------------
        self.sru_requests = Counter(
            "libgate_sru_requests",
            "SRU requests answered, by operation and outcome (ok, diagnostic).",
            ["operation", "outcome"],
        )
        self.sru_diagnostics = Counter(
            "libgate_sru_diagnostics",
            "SRU requests answered with a fatal diagnostic, by operation and diagnostic number.",
            ["operation", "diagnostic"],
        )
        self.z3950_requests = Counter(
            "libgate_z3950_requests",
            "Z39.50 APDUs answered, by operation and outcome (ok, diagnostic, protocol-error, ...).",
            ["operation", "outcome"],
        )
        self.z3950_diagnostics = Counter(
            "libgate_z3950_diagnostics",
            "Z39.50 operations answered with a Bib-1 diagnostic, by operation and condition.",
            ["operation", "diagnostic"],
        )
        # --- ISO 18626 ILL (ill/resource.py receives, ill/sender.py sends) -------------------
        self.ill_received = Counter(
            "libgate_ill_messages_received",
            "ISO 18626 messages partners POSTed, by message (request, supplyingAgencyMessage,"
            " requestingAgencyMessage, unknown) and outcome (ok, the errorType of an ERROR"
            " confirmation, internal-error: answered 500).",
            ["message", "outcome"],
        )
        self.ill_sent = Counter(
            "libgate_ill_messages_sent",
            "Attempts to deliver our ISO 18626 messages, by message and outcome (delivered: OK"
            " confirmation; refused: ERROR confirmation; retry: no confirmation, tried again"
            " later; failed: no confirmation, given up).",
            ["message", "outcome"],
        )
        self.ill_retries = Counter(
            "libgate_ill_retries",
            "Attempts to deliver an ISO 18626 message that had failed before, by message.",
            ["message"],
        )
        # --- notices (gateway/circulation/notices.py queues, gateway/notify/sender.py sends) -
        self.notices_queued = Counter(
            "libgate_notices_queued", "Notices written to the outbox, by kind.", ["kind"]
        )
        self.notices_sent = Counter("libgate_notices_sent", "Notices handed to the SMTP server.")
        self.notices_failed = Counter(
            "libgate_notices_failed",
            "Failed notice send attempts, by what became of the notice (queued: retried later;"
            " failed: given up).",
            ["state"],
        )


class _PoolMetrics:
    """The PostgreSQL pool's metrics, built by the first PoolWatch that has a pool to read (on
    SQLite they are not exported at all, rather than as zeros)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge

        self.pool_connections = Gauge(
            "libgate_db_pool_connections",
            "PostgreSQL pool connections open now, by state (in_use, idle); summed over workers.",
            ["state"],
            multiprocess_mode="livesum",
        )
        self.pool_max = Gauge(
            "libgate_db_pool_max_connections",
            "The most connections the PostgreSQL pools may open ([storage] pool_size per process).",
            multiprocess_mode="livesum",
        )
        self.pool_waiting = Gauge(
            "libgate_db_pool_waiting_requests",
            "Requests waiting for a PostgreSQL pool connection now.",
            multiprocess_mode="livesum",
        )
        self.pool_requests = Counter(
            "libgate_db_pool_requests", "Connections asked of the PostgreSQL pool."
        )
        self.pool_wait_seconds = Counter(
            "libgate_db_pool_wait_seconds",
            "Seconds requests spent waiting for a PostgreSQL pool connection.",
        )
        self.pool_timeouts = Counter(
            "libgate_db_pool_timeouts",
            "Requests for a PostgreSQL pool connection that failed (none free within the timeout).",
        )


_pool_built: _PoolMetrics | None = None


def _pool_metrics() -> _PoolMetrics:
    global _pool_built
    if _pool_built is None:
        with _building:
            if _pool_built is None:
                _pool_built = _PoolMetrics()
    return _pool_built


_built: _Metrics | None = None
_building = threading.Lock()


def _metrics() -> _Metrics:
    global _built
    if _built is None:
        with _building:
            if _built is None:
                _built = _Metrics()
    return _built


# --- what the front-ends call ------------------------------------------------------------------


def connection_opened(protocol: str) -> None:
    metrics = _metrics()
    metrics.connections_accepted.labels(protocol).inc()
    metrics.connections_open.labels(protocol).inc()


def connection_closed(protocol: str) -> None:
    _metrics().connections_open.labels(protocol).dec()


def connection_refused(protocol: str) -> None:
    _metrics().connections_refused.labels(protocol).inc()


def sip2_message(command: str, outcome: str, seconds: float) -> None:
    metrics = _metrics()
    metrics.sip2_messages.labels(command, outcome).inc()
    metrics.sip2_seconds.labels(command).observe(seconds)


def sru_request(operation: str, diagnostic: int | None) -> None:
    """One SRU request answered; `diagnostic`: the fatal diagnostic's number, None if none."""
    metrics = _metrics()
    if diagnostic is None:
        metrics.sru_requests.labels(operation, "ok").inc()
    else:
        metrics.sru_requests.labels(operation, "diagnostic").inc()
        metrics.sru_diagnostics.labels(operation, str(diagnostic)).inc()


_DIAGNOSTIC = re.compile(r"^diagnostic (\d+)")


def z3950_request(operation: str, outcome: str) -> None:
    """One Z39.50 APDU answered; `outcome` as z3950/session.Reply has it ("ok",
    "diagnostic 114", "protocol-error", ...)."""
    metrics = _metrics()
    found = _DIAGNOSTIC.match(outcome)
    if found is None:
        metrics.z3950_requests.labels(operation, outcome).inc()
    else:
        metrics.z3950_requests.labels(operation, "diagnostic").inc()
        metrics.z3950_diagnostics.labels(operation, found.group(1)).inc()


ILL_UNKNOWN_MESSAGE = "unknown"  # a body too broken to tell which message it was


def ill_received(message: str | None, outcome: str) -> None:
    """A partner's message answered: `message` its kind (None: unreadable), `outcome` "ok", an
    ISO 18626 errorType, or "internal-error"."""
    _metrics().ill_received.labels(message or ILL_UNKNOWN_MESSAGE, outcome).inc()


def ill_sent(message: str, outcome: str, earlier_attempts: int) -> None:
    """One attempt to deliver our message `message` (its kind); `outcome`: delivered, refused,
    retry or failed; `earlier_attempts`: how many attempts at it failed before this one."""
    metrics = _metrics()
    metrics.ill_sent.labels(message, outcome).inc()
    if earlier_attempts > 0:
        metrics.ill_retries.labels(message).inc()


def notice_queued(kind: str) -> None:
    _metrics().notices_queued.labels(kind).inc()


def notice_sent() -> None:
    _metrics().notices_sent.inc()


def notice_failed(state: str) -> None:
    _metrics().notices_failed.labels(state).inc()


# --- read at scrape time: the batches and the pool -----------------------------------------------


class BatchCounts(Protocol):
    """What gateway/catalogue/batches/totals.batch_totals reads (passed in by gateway/ops.py:
    this module imports nothing of the catalogue, which counts through it)."""

    @property
    def batches(self) -> Mapping[tuple[str, str], int]: ...  # (kind, state) -> batches
    @property
    def records(self) -> Mapping[tuple[str, str], int]: ...  # (kind, outcome) -> records


class BatchCollector:
    """`libgate_batches` and `libgate_batch_records_total`, read from the store's batch tables
    by `read_totals` at most every `cache_seconds`."""

    def __init__(
        self,
        store: Store,
        read_totals: Callable[[Transaction], BatchCounts],
        cache_seconds: float = BATCH_CACHE_SECONDS,
    ) -> None:
        self.store = store
        self.read_totals = read_totals
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._read_at = -float("inf")
        self._families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.cache_seconds:
                try:
                    # A store that does not answer must not hold the scrape for the pool's
                    # whole timeout: the families are left out (/ready reports the store).
                    self.store.ping(STORE_TIMEOUT_SECONDS)
                    self._families = self._read()
                except StoreError as error:
                    log.warning("metrics: batches not read: %s", error)
                    self._families = []
                self._read_at = time.monotonic()
            return iter(list(self._families))

    def _read(self) -> list[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self.store.read() as tx:
            totals = self.read_totals(tx)
        batches = GaugeMetricFamily(
            "libgate_batches",
            "Batches in the store (loads and deletes, from any process), by kind and state"
            " (running, done, interrupted, undone).",
            labels=["kind", "state"],
        )
        for (kind, state), count in sorted(totals.batches.items()):
            batches.add_metric([kind, state], count)
        records = CounterMetricFamily(
            "libgate_batch_records",
            "Records of the store's batches, by kind and outcome (new, overlay, merged,"
            " unchanged, ignored, reject, duplicate, deleted, kept).",
            labels=["kind", "outcome"],
        )
        for (kind, outcome), count in sorted(totals.records.items()):
            records.add_metric([kind, outcome], count)
        return [batches, records]

    def describe(self) -> list[Metric]:
        return []  # nothing read at registration: the store is read at scrape time only


class PoolWatch:
    """Copies one process's PostgreSQL pool statistics (psycopg_pool's get_stats: cumulative
    since the pool opened) into the pool metrics: gauges set, counters advanced by what grew."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._last: dict[str, int] = {}

    def refresh(self) -> None:
        stats = self.store.pool_stats()
        if stats is None:  # SQLite: no pool
            return
        metrics = _pool_metrics()
        with self._lock:
            size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
            metrics.pool_connections.labels("in_use").set(max(0, size - idle))
            metrics.pool_connections.labels("idle").set(idle)
            metrics.pool_max.set(stats.get("pool_max", 0))
            metrics.pool_waiting.set(stats.get("requests_waiting", 0))
            grown = {
                name: stats.get(name, 0) - self._last.get(name, 0)
                for name in ("requests_num", "requests_wait_ms", "requests_errors")
            }
            self._last.update({name: stats.get(name, 0) for name in grown})
            if grown["requests_num"] > 0:
                metrics.pool_requests.inc(grown["requests_num"])
            if grown["requests_wait_ms"] > 0:
                metrics.pool_wait_seconds.inc(grown["requests_wait_ms"] / 1000)
            if grown["requests_errors"] > 0:
                metrics.pool_timeouts.inc(grown["requests_errors"])


# --- the exposition ----------------------------------------------------------------------------


def shares_between_workers() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR))


class Exposition:
    """What `/metrics` answers in one serving process: its own metrics, or under workers the
    sums over every worker's files; plus the batches read from `store` (once, whichever worker
    answers: never summed) and this process's pool statistics."""

    def __init__(self, store: Store, read_batches: Callable[[Transaction], BatchCounts]) -> None:
        from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

        _metrics()  # every family appears from the first scrape, counted or not
        self.pool = PoolWatch(store)
        self.registry: CollectorRegistry
        if shares_between_workers():
            self.registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        else:
            self.registry = REGISTRY
        self.batches = BatchCollector(store, read_batches)
        _register_once(self.registry, self.batches)

    def render(self) -> bytes:
        """The text format (reads files and the store: run it off the reactor)."""
        from prometheus_client import generate_latest

        self.pool.refresh()
        return generate_latest(self.registry)


_registered: dict[int, Any] = {}


def _register_once(registry: CollectorRegistry, collector: BatchCollector) -> None:
    """One batch collector per registry: a later ops site (tests build several in one process)
    replaces the earlier one instead of failing on duplicate names."""
    earlier = _registered.pop(id(registry), None)
    if earlier is not None:
        registry.unregister(earlier)
    registry.register(collector)
    _registered[id(registry)] = collector


def use_directory_between_workers(directory: str) -> None:
    """Multiprocess mode from now on in this process and every process it forks: values in
    files in `directory` (the supervisor calls this before any worker exists)."""
    os.environ[MULTIPROCESS_DIR] = directory
    if "prometheus_client.values" in sys.modules:
        from prometheus_client import values

        # prometheus-client was imported before the directory was set (nothing here does
        # that; a plug-in might). It chose in-process values then; no metric is built yet
        # (_metrics() builds them on first use), so choosing again still counts everything.
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


__all__ = [
    "CONTENT_TYPE",
    "BatchCollector",
    "BatchCounts",
    "Exposition",
    "PoolWatch",
    "connection_closed",
    "connection_opened",
    "connection_refused",
    "ill_received",
    "ill_sent",
    "notice_failed",
    "notice_queued",
    "notice_sent",
    "shares_between_workers",
    "sip2_message",
    "sru_request",
    "use_directory_between_workers",
    "z3950_request",
]
