"""Run many conflicting circulation operations from one process (used by the concurrency test
to drive the engine from two processes at once). Prints how many of each succeeded as JSON."""

from __future__ import annotations

import json
import sys
import threading

from gateway.circulation.clock import SystemClock
from gateway.circulation.engine import DESK, SELF_CHECK, Engine, Result
from gateway.circulation.policy import Policy
from gateway.store import open_store
from tests.circulation_support import SETTINGS

READERS = ["A", "B", "C", "D"]
COPIES = ["O1", "X1", "W1", "W2", "M1", "M2"]


def hammer(
    engine: Engine, seed: int, rounds: int, results: dict[str, int], lock: threading.Lock
) -> None:
    import random

    chooser = random.Random(seed)
    for _ in range(rounds):
        action = chooser.choice(["checkout", "checkout", "checkin", "hold", "renew", "cancel"])
        reader, copy = chooser.choice(READERS), chooser.choice(COPIES)
        outcome: Result
        if action == "checkout":
            outcome = engine.checkout(reader, copy, chooser.choice([DESK, SELF_CHECK]))
        elif action == "checkin":
            outcome = engine.checkin(copy, chooser.choice([DESK, SELF_CHECK]))
        elif action == "hold":
            outcome = engine.place_hold(reader, item_barcode=copy)
        elif action == "renew":
            outcome = engine.renew(reader, copy)
        else:
            outcome = engine.cancel_hold(reader, item_barcode=copy)
        with lock:
            key = f"{action}:{'ok' if outcome.ok else 'refused'}"
            results[key] = results.get(key, 0) + 1


def run(url: str, seed: int, threads: int, rounds: int) -> dict[str, int]:
    store = open_store(url)
    engine = Engine(store, Policy.from_settings(SETTINGS), SystemClock())
    results: dict[str, int] = {}
    lock = threading.Lock()
    workers = [
        threading.Thread(target=hammer, args=(engine, seed * 100 + n, rounds, results, lock))
        for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.close()
    return results


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
