"""The composition root: one reactor, one `MultiService` of the listeners the config asks
for, the scheduled loops, and the store.

This is the one module of the core that imports front-ends (tests/test_architecture.py holds
it to that): it wires each configured protocol's listeners to the one engine.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any, cast

from twisted.application.internet import StreamServerEndpointService, TimerService
from twisted.application.service import MultiService
from twisted.internet import reactor as global_reactor
from twisted.internet import threads
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.python.failure import Failure

from gateway.catalogue import repository, textindex
from gateway.circulation.clock import SystemClock
from gateway.circulation.engine import Engine
from gateway.circulation.ill import InterlibraryLoan
from gateway.circulation.ill_outbox import claim_due, record_delivered, record_failed
from gateway.circulation.policy import Policy
from gateway.circulation.results import ExpiryReport
from gateway.circulation.web_sessions import prune_sessions
from gateway.config import Settings
from gateway.draining import GracefulStop, hold_stop_signals
from gateway.listening import NONE_CONFIGURED
from gateway.log_output import install_logging
from gateway.notify.sender import NoticeLoop, NoticeSender
from gateway.ops import ops_services
from gateway.reload import POLICIES, Reloader
from gateway.services import (
    DESCRIPTORS,
    ThreadPoolService,
    as_server_reactor,
    raise_descriptor_limit,
)
from gateway.store import Store, open_migrated_store
from gateway.workers import (
    HELD_SIGNALS,
    INDEX_CHANGED_SIGNAL,
    SINGLE,
    ProcessRole,
    run_reload_hooks,
    set_role,
)
from ill.resource import ill_services
from ill.sender import Sender as IllSender
from sip2.accounts import Accounts
from sip2.server import build_sip2_service
from sru.resource import sru_services
from union.searcher import ReactorUnionSearcher
from web.resource import web_services
from z3950.server import build_z3950_service

log = logging.getLogger("libgate")


def build_service(
    settings: Settings, store: Store, role: ProcessRole = SINGLE
) -> tuple[MultiService, list[str], list[str], Reloader]:
    """The root service, a description of each listener and background loop it holds, and
    what a config reload (SIGHUP) hands new settings to. The scheduled loops run in one worker
    only (`role.runs_schedules`); every worker serves every listener."""
    root = MultiService()
    listeners: list[str] = []  # filled by the protocol front-ends as they are added
    loops: list[str] = []
    clock = SystemClock()
    engine = Engine(store, Policy.from_settings(settings), clock)
    # Under a supervisor, it reports what a reload cannot apply; each worker what it applied.
    reloader = Reloader(settings, reports_restarts=not role.supervised)
    reloader.add(POLICIES, lambda new: partial(engine.use_policy, Policy.from_settings(new)))

    def log_processed(report: ExpiryReport) -> None:
        if report.expired + report.no_shows:
            log.info(
                "holds processed: %s expired, %s not collected, %s suspended",
                report.expired,
                report.no_shows,
                report.suspended,
            )

    def log_failure(what: str) -> Callable[[Failure], None]:
        return lambda failure: log.error("%s failed: %s", what, failure.value)

    def process_holds() -> Deferred[None]:
        # Hold deadlines (expiry, no-shows, suspensions) on a schedule; the synchronous
        # engine work goes to the thread pool.
        deferred = threads.deferToThread(engine.process_expiry).addCallback(log_processed)
        return deferred.addErrback(log_failure("hold processing"))

    if role.runs_schedules:
        TimerService(settings.holds.process_every_seconds, process_holds).setServiceParent(root)
        loops.append(
            f"hold processing every {settings.holds.process_every_seconds} s (hold deadlines)"
        )
    if settings.notices.enabled and role.runs_schedules:
        # Its stop sends one last round of due notices (SIGTERM: gateway/draining.py).
        sender = NoticeSender(store, settings.notices, clock, global_reactor)
        notice_loop: TimerService = NoticeLoop(sender, settings.notices.send_every_seconds)
        notice_loop.setServiceParent(root)
        loops.append(
            f"notices by SMTP to {settings.notices.smtp_host}:{settings.notices.smtp_port}"
            f" every {settings.notices.send_every_seconds} s"
        )
    # Interlibrary loan over ISO 18626 ([ill]): partners' messages in, ours out (the sender),
    # overdue loans to partners on the hold schedule.
    ill = InterlibraryLoan(engine, settings.ill, clock) if settings.ill.listen else None
    if ill is not None:
        reloader.add("ill partners", lambda new: partial(ill.reconfigure, new.ill))
        # The ILL context holds the policy too: a policy change alone gives it the new one.
        reloader.add(POLICIES, lambda new: partial(ill.reconfigure, new.ill))
        ill_service, ill_listeners = ill_services(settings, store, ill)
        ill_service.setServiceParent(root)
        listeners += ill_listeners
        if role.runs_schedules:
            # Our queued messages to partners, retried with backoff; a child of the ILL pool's
            # service, so the pool stops only after the sender's round in flight.
            pool = cast(ThreadPoolService, ill_service).pool
            ill_sender = IllSender(
                store, claim_due, record_delivered, record_failed, settings.ill, pool
            )
            MultiService.addService(ill_service, ill_sender)
            loops.append(f"ILL messages to partners every {settings.ill.send_every_seconds} s")

            def log_overdue(overdue: list[str]) -> None:
                if overdue:
                    log.info("ILL overdue sent: %s", ", ".join(overdue))

            def process_ill() -> Deferred[None]:
                deferred = threads.deferToThread(ill.process).addCallback(log_overdue)
                return deferred.addErrback(log_failure("ILL processing"))

            TimerService(settings.holds.process_every_seconds, process_ill).setServiceParent(root)
            loops.append(f"ILL overdue processing every {settings.holds.process_every_seconds} s")
    # SIP2 for self-check machines and desk terminals ([sip2]).
    if settings.sip2.listen:
        accounts = Accounts(settings.sip2)
        reloader.add("sip2 accounts", lambda new: partial(accounts.use, new.sip2.accounts))
        sip2_service, sip2_listeners = build_sip2_service(
            settings, engine, clock, accounts=accounts
        )
        sip2_service.setServiceParent(root)
        listeners += sip2_listeners
    # SRU for partner libraries ([sru]): one base path per catalogue database.
    if settings.sru.listen:
        sru_service, sru_listeners = sru_services(settings, store, engine)
        sru_service.setServiceParent(root)
        listeners += sru_listeners
    # The readers' portal ([web]): search, My Library and, where ILL runs, the request form;
    # with [[union.targets]], a union search tab over the partners' catalogues.
    if settings.web.listen:
        union = ReactorUnionSearcher(settings, global_reactor) if settings.union.targets else None
        if union is not None:  # its idle Z39.50 associations get their Close at shutdown
            global_reactor.addSystemEventTrigger("before", "shutdown", union.pool.close)
            reloader.add("union targets", lambda new: partial(union.reconfigure, new))
            reloader.add(POLICIES, lambda new: partial(union.reconfigure, new))
        else:
            reloader.add("union targets", union_needs_restart)
        web_service, web_listeners = web_services(settings, store, engine, ill, union)
        web_service.setServiceParent(root)
        listeners += web_listeners
        if role.runs_schedules:
            idle = timedelta(minutes=settings.web.session_idle_minutes)

            def prune() -> Deferred[None]:
                deferred = threads.deferToThread(prune_sessions, store, clock.now(), idle)
                return deferred.addCallback(lambda _: None).addErrback(
                    log_failure("web session pruning")
                )

            TimerService(60, prune).setServiceParent(root)
            loops.append("idle web sessions ended every 60 s")
    # Z39.50 for partner libraries ([z3950]).
    if settings.z3950.listen:
        z3950_service, z3950_listeners = build_z3950_service(settings, store, engine)
        z3950_service.setServiceParent(root)
        listeners += z3950_listeners
    # The ops listener ([ops]): health, readiness and metrics for monitoring.
    if settings.ops.listen:
        ops_service, ops_listeners = ops_services(settings, store)
        ops_service.setServiceParent(root)
        listeners += ops_listeners
    return root, listeners, loops, reloader


def union_needs_restart(new: Settings) -> Callable[[], None]:
    """The portal started without union search (no [[union.targets]]): its tab and searcher
    are made at start, so targets added by a reload wait for a restart."""

    def report() -> None:
        if new.union.targets:
            log.warning("reload: [[union.targets]] added; restart to give the portal union search")

    return report


def _raise_listen_errors(service: object) -> None:
    """Make every listener report a failure to listen from startService, so `serve` can stop
    with a clear message instead of running without its port."""
    if isinstance(service, StreamServerEndpointService):
        service._raiseSynchronously = True
    for child in getattr(service, "services", []):
        _raise_listen_errors(child)


def configure_logging(settings: Settings, role: ProcessRole = SINGLE) -> None:
    # Workers share the supervisor's log file and leave its rotation to logrotate.
    install_logging(
        settings.service,
        worker=role.index if role.supervised else None,
        rotating=not role.supervised,
    )


def serve(settings: Settings) -> int:
    """`libgate serve` as one process (`[service] workers = 1`): bind, serve, stop."""
    hold_stop_signals()
    configure_logging(settings)
    store = open_migrated_store(settings.storage)
    catch_up_search_index(store)
    return run_process(settings, store, SINGLE, banner=True)


def catch_up_search_index(store: Store) -> None:
    """The search index is derived from the store: bring it up to date before listening, so a
    new machine builds it here and not in its first search (a writer busy elsewhere: skipped)."""
    textindex.index_for(store).catch_up(store)


def serve_worker(settings: Settings, role: ProcessRole) -> int:
    """One worker under the supervisor: its listeners are the sockets it inherited
    (gateway.listening.adopt), the supervisor has migrated the store and printed the banner."""
    configure_logging(settings, role)
    set_role(role)
    store = open_migrated_store(settings.storage)
    return run_process(settings, store, role, banner=False)


def run_process(settings: Settings, store: Store, role: ProcessRole, *, banner: bool) -> int:
    soft, hard = raise_descriptor_limit()
    DESCRIPTORS.margin = settings.service.descriptor_margin
    root, listeners, loops, reloader = build_service(settings, store, role)
    _raise_listen_errors(root)
    try:
        root.startService()
    except Exception as error:  # noqa: BLE001 - whatever stops a listener: a line, then exit
        # A port in use or a bad interface (CannotListenError), or anything the checks before
        # binding did not foresee: one clear line, and the thread pools already started are
        # stopped, so the process ends instead of hanging after a traceback.
        if isinstance(error, CannotListenError | OSError):
            print(f"libgate: cannot listen: {error}", file=sys.stderr, flush=True)
        else:
            print(
                f"libgate: cannot start: {type(error).__name__}: {error}",
                file=sys.stderr,
                flush=True,
            )
        root.stopService()
        store.close()
        return 1
    # Printed only now that every listener is bound: "listening" means it.
    log.info(
        "file descriptor limit %d (hard %d); new connections are refused %d before it",
        soft,
        hard,
        DESCRIPTORS.margin,
    )
    if banner:
        print_banner(settings, store, listeners, loops)
    else:
        log.info("%s serving (pid %d); running: %s", role, os.getpid(), "; ".join(loops) or "-")
    reactor = as_server_reactor(global_reactor)
    reactor.addSystemEventTrigger("before", "shutdown", root.stopService)
    reactor.addSystemEventTrigger("after", "shutdown", store.close)
    # SIGTERM and SIGINT drain: stop accepting, finish what is in flight, within stop_timeout.
    stop = GracefulStop(root, store, reactor, settings.service.stop_timeout)
    reactor.callWhenRunning(stop.install_signal_handlers)
    handle_reload_signals(reactor, reloader)
    # installSignalHandlers is a keyword of the POSIX reactors' run(), not of IReactorCore.
    global_reactor.run(installSignalHandlers=True)  # type: ignore[call-arg]
    return 0


def handle_reload_signals(reactor: Any, reloader: Reloader) -> None:
    """SIGHUP: read the config file again and apply what can change live (gateway/reload.py),
    on the reactor thread, and reopen the search index as below (what SIGHUP did before it
    reloaded the config: `kill -HUP` after a `libgate load` that wrote the index itself).
    INDEX_CHANGED_SIGNAL: the index writer announced a change (gateway/workers.py); its hooks
    reopen the index off the reactor thread. Both were held back since `serve` started
    (gateway/cli/service.py), so one sent during the start is handled now instead of ending
    the process."""

    def reopen_index() -> None:
        threads.deferToThread(run_reload_hooks)

    def reload() -> None:
        reloader.reload()
        reopen_index()

    signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(reload))
    signal.signal(INDEX_CHANGED_SIGNAL, lambda *_: reactor.callFromThread(reopen_index))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)


def print_banner(settings: Settings, store: Store, listeners: list[str], loops: list[str]) -> None:
    """What `serve` runs: the store, its catalogue, the loops and the listeners."""
    with store.read() as tx:
        counts = {d.name: repository.record_count(tx, d.name) for d in settings.databases}
        items = repository.item_count(tx)
    print(f"libgate serving {store.url} (config: {settings.source})", flush=True)
    for name, count in counts.items():
        print(f"  database {name}: {count} records", flush=True)
    print(f"  copies: {items}", flush=True)
    for loop in loops:
        print(f"  running: {loop}", flush=True)
    for listener in listeners:
        print(f"  listening: {listener}", flush=True)
    if not listeners:
        print(NONE_CONFIGURED, flush=True)
