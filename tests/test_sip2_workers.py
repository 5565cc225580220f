"""The SIP2 adapter's engine threads and its batched audit log (sip2/workers.py)."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator

import pytest
from twisted.internet import task
from twisted.python.failure import Failure

from sip2.workers import AuditLog, EngineThreads

FORMAT = "%(levelname)s %(name)s %(message)s"


class CountingStream(io.StringIO):
    """A stream that counts its writes (one per batch is the point of AuditLog)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def audit() -> Iterator[tuple[AuditLog, CountingStream, task.Clock]]:
    logger = logging.getLogger("libgate.test-audit")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    stream = CountingStream()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    clock = task.Clock()
    yield AuditLog(logger, clock, delay=0.1, most=3), stream, clock
    logger.removeHandler(handler)


def test_lines_wait_for_the_timer_and_go_out_in_one_write(
    audit: tuple[AuditLog, CountingStream, task.Clock],
) -> None:
    log, stream, clock = audit
    log.info("sip2 account=%s command=%s outcome=%s", "sc1", "17", "ok")
    log.info("sip2 account=%s command=%s outcome=%s", "sc2", "23", "ok")
    assert stream.getvalue() == ""
    clock.advance(0.1)
    assert stream.getvalue() == (
        "INFO libgate.test-audit sip2 account=sc1 command=17 outcome=ok\n"
        "INFO libgate.test-audit sip2 account=sc2 command=23 outcome=ok\n"
    )
    assert stream.writes == 1


def test_a_full_batch_and_an_at_once_line_are_written_in_order(
    audit: tuple[AuditLog, CountingStream, task.Clock],
) -> None:
    log, stream, clock = audit
    for number in range(3):  # most=3: the third line writes the batch
        log.info("line %d", number)
    assert stream.getvalue().splitlines() == [f"INFO libgate.test-audit line {n}" for n in range(3)]
    log.info("waiting")
    log.info("login", at_once=True)
    assert stream.getvalue().splitlines()[-2:] == [
        "INFO libgate.test-audit waiting",
        "INFO libgate.test-audit login",
    ]
    clock.advance(1)  # the timer was cancelled by the flush: nothing twice
    assert stream.getvalue().count("waiting") == 1


def test_below_the_level_nothing_is_kept(
    audit: tuple[AuditLog, CountingStream, task.Clock],
) -> None:
    log, stream, clock = audit
    log.logger.setLevel(logging.WARNING)
    log.info("not kept")
    assert log.pending == []
    clock.advance(1)
    assert stream.getvalue() == ""


def test_other_handlers_get_every_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="libgate.test-audit-2")
    log = AuditLog(logging.getLogger("libgate.test-audit-2"), task.Clock())
    log.info("one %s", "a")
    log.info("two %s", "b")
    log.flush()
    assert [r.getMessage() for r in caplog.records] == ["one a", "two b"]


def test_engine_threads_answer_and_report_failures() -> None:
    pool = EngineThreads(2, name="test")
    pool.start()
    answers: list[tuple[bool, object]] = []
    done = threading.Event()

    def collect(ok: bool, result: object) -> None:
        answers.append((ok, result))
        if len(answers) == 3:
            done.set()

    def fail() -> None:
        raise ValueError("the database went away")

    pool.callInThreadWithCallback(collect, pow, 2, 10)
    pool.callInThreadWithCallback(collect, fail)
    pool.callInThreadWithCallback(collect, int, "7", base=8)
    assert done.wait(10)
    pool.stop()
    assert sorted((ok, r) for ok, r in answers if ok) == [(True, 7), (True, 1024)]
    failures = [r for ok, r in answers if not ok]
    assert len(failures) == 1
    assert isinstance(failures[0], Failure) and failures[0].check(ValueError)


def test_stop_lets_queued_calls_finish() -> None:
    pool = EngineThreads(1, name="test")
    pool.start()
    gate = threading.Event()
    ran: list[int] = []
    pool.callInThreadWithCallback(None, gate.wait, 10)
    for number in range(5):
        pool.callInThreadWithCallback(None, ran.append, number)
    gate.set()
    pool.stop()
    assert ran == [0, 1, 2, 3, 4]
