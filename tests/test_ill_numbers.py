"""I3's request numbers: one counter row, never the same number twice, even from two
processes' connections at once (PostgreSQL: its row lock; SQLite: its one writer)."""

from __future__ import annotations

import threading

from gateway.circulation import ill_storage
from gateway.store import Store, open_store


def test_two_connections_never_take_one_number(store: Store, store_url: str) -> None:
    other = open_store(store_url)
    taken: list[int] = []
    lock = threading.Lock()

    def take(on: Store) -> None:
        for _ in range(25):
            with on.write() as tx:
                number = ill_storage.next_number(tx)
            with lock:
                taken.append(number)

    try:
        threads = [threading.Thread(target=take, args=(s,)) for s in (store, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other.close()
    assert sorted(taken) == list(range(1, 51))
