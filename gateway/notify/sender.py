"""The sending loop: due notices out through Twisted's SMTP client, one attempt each per pass.

Each notice is claimed just before it is sent (`outbox.claim_next`), one at a time, so the
claim's lease only has to outlast one SMTP attempt (`SEND_TIMEOUT_SECONDS`), and several
processes sending at once share the work instead of sending a notice twice.

Failures are logged and retried with backoff (`outbox.mark_failed_attempt`); after
`max_attempts` a notice is `failed` and `libgate notices list --failed` shows it to staff.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Generator
from datetime import timedelta
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid
from typing import Any

from twisted.application.internet import TimerService
from twisted.internet import defer, threads
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTCP
from twisted.mail import smtp
from twisted.python.failure import Failure

from gateway import metrics
from gateway.circulation.clock import Clock
from gateway.config import SMTP_ATTEMPT_TIMEOUT_SECONDS, NoticeSettings
from gateway.notify import outbox
from gateway.services import as_server_reactor
from gateway.store import Store

log = logging.getLogger("libgate.notices")
SEND_TIMEOUT_SECONDS = SMTP_ATTEMPT_TIMEOUT_SECONDS
PASS_LIMIT = 50  # notices per pass, so one pass never runs for ever behind a busy queue


def sender_name() -> str:
    """Who holds a claim, for staff reading the table: host, process, and which sender."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def render_message(notice: outbox.Notice, from_address: str) -> bytes:
    message = MIMEText(notice.body, "plain", "utf-8")
    message["Subject"] = Header(notice.subject, "utf-8").encode()
    message["From"] = from_address
    message["To"] = notice.to_address
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=from_address.split("@", 1)[1])
    return message.as_bytes()


class NoticeSender:
    def __init__(
        self, store: Store, settings: NoticeSettings, clock: Clock, reactor: IReactorTCP
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.reactor = as_server_reactor(reactor)
        self.name = sender_name()
        self.lease = timedelta(seconds=settings.claim_lease_seconds)
        self.stopping = False  # a stop cut the round short: claim no further notice

    @defer.inlineCallbacks
    def send_due(self) -> Generator[Deferred[Any], Any, tuple[int, int]]:
        """One pass: every due notice this sender claims gets one attempt (at most
        `PASS_LIMIT`). Returns (sent, failed attempts)."""
        sent = failed = 0
        for _ in range(PASS_LIMIT):
            if self.stopping:
                break
            notice: outbox.Notice | None = yield threads.deferToThreadPool(
                self.reactor,
                self.reactor.getThreadPool(),
                outbox.claim_next,
                self.store,
                self.clock.now(),
                self.name,
                self.lease,
            )
            if notice is None:
                break
            try:
                yield self._send(notice)
            except Exception as error:  # noqa: BLE001 - every SMTP failure is recorded and retried
                failed += 1
                reason = f"{type(error).__name__}: {error}"
                state = yield threads.deferToThreadPool(
                    self.reactor,
                    self.reactor.getThreadPool(),
                    outbox.mark_failed_attempt,
                    self.store,
                    notice,
                    self.clock.now(),
                    reason,
                    self.settings.max_attempts,
                    self.settings.first_retry_seconds,
                )
                metrics.notice_failed(state)
                log.warning(
                    "notice %s to %s not sent (%s): %s", notice.id, notice.to_address, state, reason
                )
            else:
                sent += 1
                yield threads.deferToThreadPool(
                    self.reactor,
                    self.reactor.getThreadPool(),
                    outbox.mark_sent,
                    self.store,
                    notice.id,
                    self.clock.now(),
                )
                metrics.notice_sent()
                log.info("notice %s (%s) sent to %s", notice.id, notice.kind, notice.to_address)
        return sent, failed

    def _send(self, notice: outbox.Notice) -> Deferred[object]:
        s = self.settings
        sending: Deferred[object] = smtp.sendmail(
            s.smtp_host,
            s.from_address,
            [notice.to_address],
            render_message(notice, s.from_address),
            port=s.smtp_port,
            reactor=self.reactor,
            username=s.username.encode() if s.username else None,
            password=s.password.encode() if s.password else None,
            requireAuthentication=bool(s.username),
            requireTransportSecurity=s.require_tls,
        )
        # A server that accepts the connection and then says nothing must not stall the loop.
        return sending.addTimeout(SEND_TIMEOUT_SECONDS, self.reactor)


class NoticeLoop(TimerService):
    """`sender.send_due` every `send_every_seconds`, and one last round when the service stops
    (SIGTERM, gateway/draining.py), after the round in flight: notices that came due before
    the stop leave with it instead of waiting for the next start.

    A stop gives it a time to be done by (`finish_by`): then the attempt under way is
    cancelled (a failed attempt, retried as any) and what is not sent stays in the outbox for
    the next start, so a silent SMTP server (each attempt waits its timeout) never turns a
    clean stop into a forced one."""

    def __init__(self, sender: NoticeSender, every: float) -> None:
        TimerService.__init__(self, every, self._round)
        self.sender = sender
        self.done_by: float | None = None  # time.monotonic() the stop's rounds must end by
        self.current: Deferred[tuple[int, int] | None] | None = None  # the latest round

    def _round(self) -> Deferred[tuple[int, int] | None]:
        self.current = self.sender.send_due().addErrback(self._failed)
        return self.current

    @staticmethod
    def _failed(failure: Failure) -> None:
        if failure.check(defer.CancelledError):  # cut short by a stop, which said so
            return
        log.error("notice sending failed: %s", failure.value)

    def finish_by(self, deadline: float) -> None:
        self.done_by = deadline

    def stopService(self) -> Deferred[None]:
        def logged(counts: tuple[int, int] | None) -> None:
            if counts is not None:
                log.info("notices at stop: %d sent, %d failed attempts", *counts)

        def last_round(_: object) -> Deferred[None]:
            return self._round().addCallback(logged)

        stopped = defer.maybeDeferred(TimerService.stopService, self).addCallback(last_round)
        if self.done_by is None:
            return stopped
        remaining = max(0.1, self.done_by - time.monotonic())
        timer = self.sender.reactor.callLater(remaining, self._cut_short)

        def disarm(result: object) -> object:
            if timer.active():
                timer.cancel()
            return result

        return stopped.addBoth(disarm)

    def _cut_short(self) -> None:
        """The stop's time is up: the attempt under way is cancelled (and recorded as a failed
        attempt, retried later, as any), and no further notice is claimed."""
        log.warning("notices at stop: not done by stop_timeout; the rest stay queued")
        self.sender.stopping = True
        if self.current is not None and not self.current.called:
            self.current.cancel()
