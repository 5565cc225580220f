"""Every Prometheus metric libgate exports (`libgate_...`), defined here and nowhere else, and
the small functions the front-ends and the core call to count.

The ops listener (gateway/ops.py) serves them at `/metrics`. Front-ends import this module,
never each other; each call is a dictionary lookup and an atomic add, cheap enough for every
SIP2 message.

Workers: with `[service] workers` > 1 each worker is its own process and counts for itself.
Multiprocess mode is not wired yet: `exposition` sums every worker's files when
PROMETHEUS_MULTIPROC_DIR is set, but nothing sets it (it would have to be set before
prometheus_client is first imported, i.e. in `libgate serve` before the supervisor's imports,
and the supervisor would call `multiprocess.mark_process_dead` on reaping a worker). Until
then a scrape of a multi-worker site sees the one worker that took the connection.
"""

from __future__ import annotations

import os
import re

from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# --- connections (every listener; counted by gateway/admission.ConnectionCaps) ---------------

CONNECTIONS_OPEN = Gauge(
    "libgate_connections_open",
    "Connections open now, per protocol (sip2, sru, z3950, ill, web).",
    ["protocol"],
    multiprocess_mode="livesum",
)
CONNECTIONS_ACCEPTED = Counter(
    "libgate_connections_accepted",
    "Connections let in since start, per protocol.",
    ["protocol"],
)
CONNECTIONS_REFUSED = Counter(
    "libgate_connections_refused",
    "Connections refused by a connection cap, per protocol.",
    ["protocol"],
)

# --- SIP2 (sip2/server.py, one call per answered message) ------------------------------------

SIP2_MESSAGES = Counter(
    "libgate_sip2_messages",
    "SIP2 messages answered, by command (the request's two digits) and outcome.",
    ["command", "outcome"],
)
SIP2_SECONDS = Histogram(
    "libgate_sip2_message_seconds",
    "Seconds from a SIP2 message read to its answer written, by command.",
    ["command"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# --- SRU and Z39.50 --------------------------------------------------------------------------

SRU_REQUESTS = Counter(
    "libgate_sru_requests",
    "SRU requests answered, by operation and outcome (ok, diagnostic).",
    ["operation", "outcome"],
)
SRU_DIAGNOSTICS = Counter(
    "libgate_sru_diagnostics",
    "SRU requests answered with a fatal diagnostic, by operation and diagnostic number.",
    ["operation", "diagnostic"],
)
Z3950_REQUESTS = Counter(
    "libgate_z3950_requests",
    "Z39.50 APDUs answered, by operation and outcome (ok, diagnostic, protocol-error, ...).",
    ["operation", "outcome"],
)
Z3950_DIAGNOSTICS = Counter(
    "libgate_z3950_diagnostics",
    "Z39.50 operations answered with a Bib-1 diagnostic, by operation and condition.",
    ["operation", "diagnostic"],
)

# --- notices (gateway/circulation/notices.py queues, gateway/notify/sender.py sends) ----------

NOTICES_QUEUED = Counter(
    "libgate_notices_queued", "Notices written to the outbox by this process.", ["kind"]
)
NOTICES_SENT = Counter("libgate_notices_sent", "Notices handed to the SMTP server.")
NOTICES_FAILED = Counter(
    "libgate_notices_failed",
    "Failed notice send attempts, by what became of the notice (queued: retried later;"
    " failed: given up).",
    ["state"],
)

# --- the loader (gateway/catalogue/loading, once per load) ------------------------------------

LOAD_BATCHES = Counter("libgate_load_batches", "Store transactions committed by loads.")
LOAD_RECORDS = Counter("libgate_load_records", "Records read by loads, by outcome.", ["outcome"])
LOAD_REJECTS = Counter("libgate_load_rejects", "Records rejected by loads.")


# --- what the front-ends call ------------------------------------------------------------------


def connection_opened(protocol: str) -> None:
    CONNECTIONS_ACCEPTED.labels(protocol).inc()
    CONNECTIONS_OPEN.labels(protocol).inc()


def connection_closed(protocol: str) -> None:
    CONNECTIONS_OPEN.labels(protocol).dec()


def connection_refused(protocol: str) -> None:
    CONNECTIONS_REFUSED.labels(protocol).inc()


def sip2_message(command: str, outcome: str, seconds: float) -> None:
    SIP2_MESSAGES.labels(command, outcome).inc()
    SIP2_SECONDS.labels(command).observe(seconds)


def sru_request(operation: str, diagnostic: int | None) -> None:
    """One SRU request answered; `diagnostic`: the fatal diagnostic's number, None if none."""
    if diagnostic is None:
        SRU_REQUESTS.labels(operation, "ok").inc()
    else:
        SRU_REQUESTS.labels(operation, "diagnostic").inc()
        SRU_DIAGNOSTICS.labels(operation, str(diagnostic)).inc()


_DIAGNOSTIC = re.compile(r"^diagnostic (\d+)")


def z3950_request(operation: str, outcome: str) -> None:
    """One Z39.50 APDU answered; `outcome` as z3950/session.Reply has it ("ok",
    "diagnostic 114", "protocol-error", ...)."""
    found = _DIAGNOSTIC.match(outcome)
    if found is None:
        Z3950_REQUESTS.labels(operation, outcome).inc()
    else:
        Z3950_REQUESTS.labels(operation, "diagnostic").inc()
        Z3950_DIAGNOSTICS.labels(operation, found.group(1)).inc()


def notice_queued(kind: str) -> None:
    NOTICES_QUEUED.labels(kind).inc()


def notice_sent() -> None:
    NOTICES_SENT.inc()


def notice_failed(state: str) -> None:
    NOTICES_FAILED.labels(state).inc()


def load_finished(batches: int, outcomes: dict[str, int], rejects: int) -> None:
    LOAD_BATCHES.inc(batches)
    for outcome, count in outcomes.items():
        if count:
            LOAD_RECORDS.labels(outcome).inc(count)
    LOAD_REJECTS.inc(rejects)


# --- the exposition ----------------------------------------------------------------------------


def exposition() -> bytes:
    """Every metric in Prometheus' text format: this process's, or, under workers, the sum
    over every worker's files in PROMETHEUS_MULTIPROC_DIR."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(PROCESS_REGISTRY)


__all__ = [
    "CONTENT_TYPE",
    "connection_closed",
    "connection_opened",
    "connection_refused",
    "exposition",
    "load_finished",
    "notice_failed",
    "notice_queued",
    "notice_sent",
    "sip2_message",
    "sru_request",
    "z3950_request",
]
