"""One notice sender in its own process, for the outbox race tests. Waits for a start file (so
that every process begins at once), then either sends every notice it can claim through the
SMTP server on 127.0.0.1 and prints how many it sent, or (`die`) claims notices and is killed
holding them, as a crashed `serve` would be.

    python -m tests.outbox_worker <url> <start-file> send <smtp-port> [<seconds-ahead>]
    python -m tests.outbox_worker <url> <start-file> die <claims>
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

from gateway.circulation.clock import FixedClock, SystemClock
from gateway.config import NoticeSettings
from gateway.notify import outbox
from gateway.notify.sender import NoticeSender, sender_name
from gateway.store import Store, open_store


def wait_for(start: Path) -> None:
    deadline = time.monotonic() + 60
    while not start.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the start file never appeared")
        time.sleep(0.005)


def send_all(store: Store, port: int, ahead: float) -> int:
    """Passes until a pass finds nothing to claim; the sender's clock runs `ahead` seconds in
    front of the real one (to stand after another sender's lease)."""
    from twisted.internet import reactor

    clock = FixedClock(SystemClock().now() + timedelta(seconds=ahead))
    sender = NoticeSender(store, NoticeSettings(smtp_port=port), clock, reactor)
    total: list[int] = []

    def one_pass() -> None:
        def done(result: tuple[int, int]) -> None:
            sent, failed = result
            assert failed == 0, "the test's SMTP server refused a notice"
            total.append(sent)
            if sent:
                one_pass()
            else:
                reactor.stop()

        def crashed(failure: object) -> None:
            print(failure, file=sys.stderr)
            reactor.stop()

        sender.send_due().addCallbacks(done, crashed)

    reactor.callWhenRunning(one_pass)
    reactor.run()
    return sum(total)


def claim_and_die(store: Store, claims: int) -> None:
    name = sender_name()
    lease = timedelta(seconds=NoticeSettings().claim_lease_seconds)
    for _ in range(claims):
        assert outbox.claim_next(store, SystemClock().now(), name, lease) is not None
    print(json.dumps({"claimed": claims}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no rollback of committed claims


def main(argv: list[str]) -> None:
    url, start, mode = argv[0], Path(argv[1]), argv[2]
    store = open_store(url)
    wait_for(start)
    if mode == "die":
        claim_and_die(store, int(argv[3]))
    ahead = float(argv[4]) if len(argv) > 4 else 0.0
    print(json.dumps({"sent": send_all(store, int(argv[3]), ahead)}))
    store.close()


if __name__ == "__main__":
    main(sys.argv[1:])
