"""`libgate serve` with several workers: one supervisor process and `[service] workers` forked
workers that serve the same listening sockets.

The supervisor binds every listener once (gateway/listening.py), migrates the store once,
then forks the workers. It runs no reactor and no threads, so fork() copies nothing a child
must not share (a reactor's epoll instance, a lock held by a thread, a pool connection). It
then only waits for signals:

- a worker that dies (a crash, `kill -9`, the OOM killer) is forked again under the same
  number, after a back-off that doubles from RESTART_FIRST_DELAY to RESTART_MAX_DELAY while it
  keeps dying quickly; a worker that ran STEADY_SECONDS starts again from the first delay.
  A worker that dies GIVE_UP_AFTER times in a row within STEADY_SECONDS of its start cannot
  start at all (a configuration only a worker checks, a store gone): the supervisor stops
  the others and exits 1 with one line.
- SIGTERM or SIGINT: the supervisor closes its copies of the listening sockets and forwards
  SIGTERM to every worker, which drains (gateway/draining.py: stops accepting, finishes what
  is in flight, flushes the notices) within `[service] stop_timeout`. A worker still running
  STOP_MARGIN_SECONDS after that is killed. No worker is started again during a stop. Exit 0
  when every worker drained cleanly, else EXIT_STOP_FORCED.
- SIGHUP: the config file is read again and checked here (a bad one: one line, and the
  workers only reopen the search index); what needs a restart is reported, and SIGHUP goes to
  every worker, which applies the live changes itself (gateway/reload.py) and reopens the
  search index.
- INDEX_CHANGED_SIGNAL (SIGUSR1), from the index writer: forwarded to every worker, which runs
  its index reload hooks (gateway/workers.py).

The workers' metrics meet in one directory (gateway/worker_metrics.py), so `/metrics`, answered
by any worker, shows the site's counts.

This module imports no reactor; a worker imports gateway.app only after fork().
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass

from gateway.admission import count_site_wide
from gateway.catalogue import repository, textindex
from gateway.config import ConfigError, Settings
from gateway.draining import EXIT_STOP_FORCED, STOP_MARGIN_SECONDS, hold_stop_signals
from gateway.listening import (
    NONE_CONFIGURED,
    REUSEPORT_BALANCES,
    ListenError,
    SharedSocket,
    adopt,
    bind_all,
    bind_all_again,
    close,
)
from gateway.log_output import install_logging
from gateway.reload import (
    PART_ORDER,
    changes,
    in_force,
    read_or_report,
    report_restarts,
    set_log_level,
)
from gateway.site_counts import SiteCounts
from gateway.store import StoreError, open_migrated_store
from gateway.worker_metrics import share_metrics_between_workers
from gateway.workers import HELD_SIGNALS, INDEX_CHANGED_SIGNAL, ProcessRole

log = logging.getLogger("libgate.supervisor")

RESTART_FIRST_DELAY = 0.5  # seconds
RESTART_MAX_DELAY = 30.0
STEADY_SECONDS = 30.0
GIVE_UP_AFTER = 5
SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, INDEX_CHANGED_SIGNAL}
# A worker's exit code for a configuration only a worker checks (e.g. [sru] default_schema):
# starting it again cannot help, so the supervisor stops (sysexits' EX_CONFIG).
EXIT_CONFIG = 78
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass
class Worker:
    index: int
    pid: int = 0  # 0: not running
    started: float = 0.0
    quick_failures: int = 0  # deaths in a row within STEADY_SECONDS of starting
    restart_at: float | None = None


def listen_strings(settings: Settings) -> list[tuple[str, str]]:
    """(protocol, listen string) of every configured listener, in config order."""
    return [
        *(("SIP2", listen) for listen in settings.sip2.listen),
        *(("SRU", listen) for listen in settings.sru.listen),
        *(("Z39.50", listen) for listen in settings.z3950.listen),
        *(("ILL", listen) for listen in settings.ill.listen),
        *(("Web", listen) for listen in settings.web.listen),
        *(("Ops", listen) for listen in settings.ops.listen),
    ]


def serve_supervised(settings: Settings, count: int) -> int:
    """Bind, migrate, fork `count` workers and supervise them until told to stop."""
    install_logging(settings.service, rotating=False)  # workers write the same file
    if settings.service.log_file and settings.service.log_max_bytes:
        log.info(
            "%d workers share %s: rotate it with logrotate (log_max_bytes applies to workers = 1)",
            count,
            settings.service.log_file,
        )
    listeners = listen_strings(settings)
    # Every worker's sockets are bound here, before any worker starts (gateway/listening.py).
    sockets: dict[int, list[SharedSocket]] = {}
    try:
        sockets[1] = bind_all((listen for _, listen in listeners), REUSEPORT_BALANCES)
        for index in range(2, count + 1):
            sockets[index] = bind_all_again(sockets[1])
    except ListenError as error:
        for bound in sockets.values():
            close(bound, shared_too=True)
        print(f"libgate: cannot listen: {error}", file=sys.stderr, flush=True)
        return 1
    store = open_migrated_store(settings.storage)
    try:
        with store.read() as tx:
            counts = {d.name: repository.record_count(tx, d.name) for d in settings.databases}
            items = repository.item_count(tx)
    finally:
        store.close()  # before fork: no pool connection or thread is copied into a worker
    catch_up_in_child(settings)
    print(f"libgate serving {store.url} (config: {settings.source})", flush=True)
    for name, records in counts.items():
        print(f"  database {name}: {records} records", flush=True)
    print(f"  copies: {items}", flush=True)
    print(
        f"  workers: {count} processes sharing every listener; worker 1 runs the scheduled"
        " loops and writes the search index",
        flush=True,
    )
    for (protocol, listen), shared in zip(listeners, sockets[1], strict=True):
        print(
            f"  listening: {protocol} on {listen} (port {shared.port}, {sharing(shared)})",
            flush=True,
        )
    if not listeners:
        print(NONE_CONFIGURED, flush=True)
    try:
        supervisor = Supervisor(settings, sockets, count)
    except OSError as error:  # e.g. no room for the metrics directory: one line, not a trace
        print(f"libgate: cannot start the workers: {error}", file=sys.stderr, flush=True)
        for bound in sockets.values():
            close(bound, shared_too=True)
        return 1
    try:
        return supervisor.run()
    finally:
        for bound in supervisor.sockets.values():
            close(bound, shared_too=True)
        supervisor.metrics.remove()


def sharing(shared: SharedSocket) -> str:
    """How the workers share one listener's socket, as the banner says it."""
    if shared.per_worker:
        return "a socket of its own per worker (SO_REUSEPORT)"
    if shared.description.startswith("systemd:"):
        return "one socket from systemd, shared by every worker"
    return "one socket shared by every worker"


class Supervisor:
    def __init__(
        self, settings: Settings, sockets: dict[int, list[SharedSocket]], count: int
    ) -> None:
        self.settings = settings
        self.sockets = sockets  # each worker's, by its number (shared ones appear in every list)
        self.template = list(sockets[1])  # the listeners' addresses, to bind a worker's again
        self.count = count
        # The connection caps' counts, shared by every worker (gateway/site_counts.py): room
        # for every connection a listener may hold, twice over for the address tables.
        largest = max(
            settings.sip2.max_connections, settings.sru.max_connections, settings.z3950.max_sessions
        )
        self.counts = SiteCounts(count, 4 * largest + 16)
        self.workers = {index: Worker(index) for index in range(1, count + 1)}
        # One directory for every worker's metrics, chosen before the first fork.
        self.metrics = share_metrics_between_workers()
        self.stopping = False
        self.exit_code = 0
        self.stop_deadline = 0.0
        # A worker's drain may take stop_timeout; then its own watchdog exits it.
        self.stop_wait = settings.service.stop_timeout + STOP_MARGIN_SECONDS

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)  # taken with sigtimedwait below
        for worker in self.workers.values():
            self.start(worker)
        while True:
            info = signal.sigtimedwait(SIGNALS, self.wait_seconds())
            if info is not None:
                self.on_signal(info.si_signo)
            self.reap()
            if self.stopping:
                running = [w for w in self.workers.values() if w.pid]
                if not running:
                    return self.exit_code
                if time.monotonic() >= self.stop_deadline:
                    for worker in running:
                        log.warning("worker %d (pid %d) did not stop: killed", *_who(worker))
                        _signal(worker.pid, signal.SIGKILL)
                    self.exit_code = self.exit_code or EXIT_STOP_FORCED
                    self.stop_deadline = time.monotonic() + STOP_MARGIN_SECONDS
                continue
            now = time.monotonic()
            for worker in self.workers.values():
                if worker.restart_at is not None and worker.restart_at <= now:
                    self.start(worker)

    def wait_seconds(self) -> float:
        if self.stopping:
            return max(0.05, min(1.0, self.stop_deadline - time.monotonic()))
        due = [w.restart_at for w in self.workers.values() if w.restart_at is not None]
        if not due:
            return 1.0
        return max(0.01, min(1.0, min(due) - time.monotonic()))

    def on_signal(self, number: int) -> None:
        if number in (signal.SIGTERM, signal.SIGINT):
            if not self.stopping:
                log.info("%s: stopping %d workers", signal.Signals(number).name, self.count)
                self.stop(0)
        elif number == signal.SIGHUP:
            self.reload_config()
        elif number == INDEX_CHANGED_SIGNAL:
            self.forward(INDEX_CHANGED_SIGNAL)

    def forward(self, number: int) -> None:
        for worker in self.workers.values():
            if worker.pid:
                _signal(worker.pid, number)

    def reload_config(self) -> None:
        """SIGHUP: check the file once here; then each worker applies its live changes and
        reopens the search index (SIGHUP's older meaning). A worker started later (after a
        crash) starts with the settings now in force."""
        if self.stopping:
            return
        fresh = read_or_report(self.settings, log)
        if fresh is None:
            self.forward(INDEX_CHANGED_SIGNAL)  # the file is not read again, the index is
            return
        found = changes(self.settings, fresh)
        restart = [c for c in found if c.part is None]
        report_restarts(restart)
        self.settings = in_force(self.settings, fresh, found)
        set_log_level(self.settings)()
        live = [p for p in PART_ORDER if any(c.part == p for c in found)]
        if live:
            log.info("reload: %d workers apply %s", self.count, ", ".join(live))
        elif not found:
            log.info("reload: %s unchanged", self.settings.source)
        self.forward(signal.SIGHUP)

    def stop(self, exit_code: int) -> None:
        self.stopping = True
        self.exit_code = exit_code
        self.stop_deadline = time.monotonic() + self.stop_wait
        # Without these copies a socket closes with its worker's, so new connections are
        # refused instead of queued for nobody.
        for bound in self.sockets.values():
            close(bound, shared_too=True)
        for worker in self.workers.values():
            worker.restart_at = None
            if worker.pid:
                _signal(worker.pid, signal.SIGTERM)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = next((w for w in self.workers.values() if w.pid == pid), None)
            if worker is None:
                continue
            worker.pid = 0
            # Its own sockets go at once: new connections go to the living workers, not to a
            # queue nobody accepts from (the replacement gets sockets of its own).
            close(self.sockets.pop(worker.index, []))
            self.counts.clear(worker.index)  # its connections died with it
            self.metrics.worker_gone(pid)  # its live gauges leave the sums
            if self.stopping:
                self.stopped(worker, status)
                continue
            self.died(worker, _describe(status))

    def stopped(self, worker: Worker, status: int) -> None:
        """A worker ended during a stop: never started again; a forced end makes the exit code."""
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            log.info("worker %d stopped", worker.index)
            return
        log.warning("worker %d %s during the stop", worker.index, _describe(status))
        self.exit_code = self.exit_code or EXIT_STOP_FORCED

    def died(self, worker: Worker, how: str) -> None:
        if how == f"exited with code {EXIT_CONFIG}":
            print(
                f"libgate: worker {worker.index} cannot start with this configuration; stopping",
                file=sys.stderr,
                flush=True,
            )
            self.stop(1)
            return
        ran = time.monotonic() - worker.started
        worker.quick_failures = worker.quick_failures + 1 if ran < STEADY_SECONDS else 1
        if worker.quick_failures >= GIVE_UP_AFTER:
            print(
                f"libgate: worker {worker.index} {how} {worker.quick_failures} times in a row"
                f" within {STEADY_SECONDS:.0f} s of starting; stopping (its log says why)",
                file=sys.stderr,
                flush=True,
            )
            self.stop(1)
            return
        delay = min(RESTART_MAX_DELAY, RESTART_FIRST_DELAY * 2 ** (worker.quick_failures - 1))
        log.warning(
            "worker %d %s after %.1f s; starting it again in %.1f s",
            worker.index,
            how,
            ran,
            delay,
        )
        worker.restart_at = time.monotonic() + delay

    def start(self, worker: Worker) -> None:
        worker.restart_at = None
        if worker.index not in self.sockets:
            try:
                self.sockets[worker.index] = bind_all_again(self.template)
            except ListenError as error:
                log.error("worker %d: %s", worker.index, error)
                self.died(worker, "could not bind its sockets")
                return
        own = self.sockets[worker.index]
        others = [s for i, bound in self.sockets.items() if i != worker.index for s in bound]
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the supervisor's stack
            close(others)  # a copy of another worker's socket would keep its queue alive
            self.counts.worker = worker.index
            count_site_wide(self.counts)
            os._exit(_run_worker(self.settings, own, ProcessRole(worker.index, self.count)))
        worker.pid = pid
        worker.started = time.monotonic()
        log.info("worker %d started (pid %d)", worker.index, pid)


def _run_worker(settings: Settings, sockets: list[SharedSocket], role: ProcessRole) -> int:
    code = 1
    try:
        supervisor = os.getppid()
        # SIGHUP and the index's signal stay held until the worker handles them (gateway/app.py).
        signal.pthread_sigmask(signal.SIG_SETMASK, HELD_SIGNALS)
        for number in SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        hold_stop_signals()  # a stop before this worker's reactor runs waits for it
        _stop_with_parent()
        if os.getppid() != supervisor:  # the supervisor died before the line above
            return 1
        adopt(sockets)
        from gateway.app import serve_worker  # installs this worker's own reactor

        code = serve_worker(settings, role)
    except ConfigError as error:
        print(f"libgate: {error}", file=sys.stderr)
        code = EXIT_CONFIG
    except StoreError as error:  # the database may come back: the supervisor tries again
        print(f"libgate: worker {role.index}: {error}", file=sys.stderr)
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:  # noqa: BLE001 - the worker's last words go to the log
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def catch_up_in_child(settings: Settings) -> None:
    """Bring the search index up to date before any worker listens, in a child process: the
    supervisor itself never opens the index, so no Tantivy thread is copied into a worker."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            store = open_migrated_store(settings.storage)
            try:
                textindex.index_for(store).catch_up(store)
            finally:
                store.close()
            code = 0
        except BaseException:
            log.exception("catching the search index up failed; worker 1 will try again")
        finally:
            os._exit(code)
    os.waitpid(pid, 0)


def _stop_with_parent() -> None:
    """Linux: SIGTERM this worker when the supervisor dies (even by SIGKILL), so no orphan
    keeps serving the port with nobody to restart or stop it."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        log.warning("worker: cannot ask to stop with the supervisor (prctl)")


def _who(worker: Worker) -> tuple[int, int]:
    return worker.index, worker.pid


def _signal(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone: reap() will see it
        os.kill(pid, number)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"
