"""R13 notices with a real SMTP server on 127.0.0.1 (aiosmtpd) and Twisted's SMTP client:
a mail arrives; a dead or silent server never blocks or undoes circulation."""

from __future__ import annotations

import email
import socket
import threading
import time
from collections.abc import Callable
from email.header import decode_header, make_header
from pathlib import Path
from typing import cast

import pytest
from twisted.internet import reactor
from twisted.internet.threads import blockingCallFromThread

from gateway.circulation.engine import DESK
from gateway.config import NoticeSettings
from gateway.notify import outbox
from gateway.notify.sender import NoticeSender
from gateway.services import as_server_reactor
from gateway.store import Store
from tests.circulation_support import build_library
from tests.serve_support import free_port


def _one_pass(running_reactor: object, sender: NoticeSender) -> tuple[int, int]:
    """One sending pass on the reactor thread, waited for: (sent, failed attempts)."""
    # Twisted types blockingCallFromThread's function as `Callable[_P, _R] | Callable[_P,
    # Deferred[_R]]`, from which mypy infers nothing for a Deferred-returning one.
    one_pass: Callable[[], object] = sender.send_due
    return cast(
        tuple[int, int], blockingCallFromThread(as_server_reactor(running_reactor), one_pass)
    )


@pytest.fixture(scope="session")
def running_reactor():
    """Twisted's reactor in a background thread, as the gateway runs it, for the whole session."""
    if not reactor.running:
        thread = threading.Thread(
            target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True
        )
        thread.start()
        for _ in range(100):
            if reactor.running:
                break
            time.sleep(0.01)
    yield reactor


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[email.message.Message] = []

    class Collect(Message):
        def handle_message(self, message):
            received.append(message)

    controller = Controller(Collect(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, received
    controller.stop()


def _queue_a_notice(store: Store, tmp_path: Path):
    engine, clock = build_library(store, tmp_path)
    assert engine.checkout("A", "O1", DESK).ok
    assert engine.place_hold("B", record=("main", "T-ONE")).ok  # B has an email: hold_placed
    return engine, clock


def test_R13_a_notice_arrives_by_smtp(
    store: Store, tmp_path: Path, running_reactor, smtp_server
) -> None:
    port, received = smtp_server
    engine, clock = _queue_a_notice(store, tmp_path)
    sender = NoticeSender(
        store,
        NoticeSettings(smtp_port=port, from_address="library@example.org"),
        clock,
        running_reactor,
    )
    sent, failed = _one_pass(running_reactor, sender)
    assert (sent, failed) == (1, 0)
    for _ in range(100):
        if received:
            break
        time.sleep(0.02)
    (message,) = received
    assert message["To"] == "b@example.cn"
    assert str(make_header(decode_header(message["Subject"]))) == "预约成功：书名T-ONE"
    body = message.get_payload(decode=True).decode("utf-8")
    assert "乙，您好" in body
    assert [n.state for n in outbox.list_notices(store)] == ["sent"]
    assert _one_pass(running_reactor, sender) == (0, 0)  # sent once


def test_R13_a_dead_server_never_fails_circulation(
    store: Store, tmp_path: Path, running_reactor
) -> None:
    engine, clock = _queue_a_notice(store, tmp_path)
    settings = NoticeSettings(smtp_port=free_port(), max_attempts=2, first_retry_seconds=60)
    sender = NoticeSender(store, settings, clock, running_reactor)
    assert _one_pass(running_reactor, sender) == (0, 1)
    (notice,) = outbox.list_notices(store, failed_only=True)
    assert notice.state == "queued" and notice.attempts == 1 and notice.last_error
    assert engine.checkin("O1", DESK).ok  # circulation goes on; the trap queues another notice
    assert _one_pass(running_reactor, sender) == (
        0,
        1,
    )  # the new one; retry not due
    clock.advance(minutes=2)
    _one_pass(running_reactor, sender)
    states = {n.kind: n.state for n in outbox.list_notices(store)}
    assert states["hold_placed"] == "failed"  # two attempts, the limit: listed for staff


def test_R13_a_silent_server_does_not_block_a_checkout(
    store: Store, tmp_path: Path, running_reactor
) -> None:
    engine, clock = _queue_a_notice(store, tmp_path)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # accepts connections, never speaks
    try:
        sender = NoticeSender(
            store, NoticeSettings(smtp_port=silent.getsockname()[1]), clock, running_reactor
        )
        pending = []
        running_reactor.callFromThread(lambda: pending.append(sender.send_due()))
        time.sleep(0.2)
        started = time.perf_counter()
        assert engine.checkout("C", "X1", DESK).ok
        assert time.perf_counter() - started < 5  # not a timing assertion on speed: a hang check
        with store.read() as tx:
            assert tx.scalar("SELECT count(*) FROM notices WHERE state = 'queued'") == 1

        def stop_sending():
            # Give up on the silent server; the attempt is recorded before the store closes.
            pending[0].cancel()
            return pending[0]

        assert blockingCallFromThread(running_reactor, stop_sending) == (0, 1)
        (notice,) = outbox.list_notices(store, failed_only=True)
        assert "Cancelled" in notice.last_error or "Timeout" in notice.last_error
    finally:
        silent.close()
