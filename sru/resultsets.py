"""Named result sets: an in-memory, size-bounded store of search results with a time to live.

A result set keeps the query and the record keys of its first hits, in result order, so later
pages (`cql.resultSetId = "…"`) are read without searching again; pages past what was kept are
searched again with the kept query. Sets expire after their TTL without use (SRU 1.x calls it
idle time; each use starts the TTL again) and the least recently used go first when the store
is full. An expired or unknown id is diagnostic 51.

`ResultSetStore` keeps sets in this process's memory: enough for one process. When more than
one process can take the next request (`[service] workers` above 1, or PostgreSQL, which is how
several gateways share a catalogue), `SharedResultSetStore` keeps them in the store instead
(gateway/retrieval/kept.py), so any worker answers any set.
"""

from __future__ import annotations

import secrets
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.retrieval import ResultSet, kept
from gateway.store import Store


@dataclass(frozen=True)
class SruResultSet(ResultSet):
    """A result set under an unguessable id (its `name`), alive `ttl` seconds after each use."""

    ttl: int = 0  # seconds

    @property
    def id(self) -> str:
        return self.name


class ResultSets(Protocol):
    """Where SRU keeps its named result sets."""

    max_records: int  # record keys kept per set

    def keep(self, found: ResultSet, ttl: int) -> SruResultSet: ...

    def get(self, set_id: str, database: str) -> SruResultSet | None: ...


def _new_set(found: ResultSet, ttl: int, max_records: int) -> SruResultSet:
    """A search's result set (its first `max_records` hits) under a new id. The hits are
    packed as 64-bit integers: a quarter of the memory of a tuple of ints, which counts with
    `result_sets` sets of `result_set_max_records` hits each."""
    return SruResultSet(
        # Unguessable ids: a partner must not read another partner's set by counting.
        name=secrets.token_urlsafe(9),
        database=found.database,
        query=found.query,
        total=found.total,
        record_pks=array("q", found.record_pks[:max_records]),
        available_only=found.available_only,
        ttl=ttl,
    )


class ResultSetStore:
    def __init__(
        self, max_sets: int, max_records: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_sets = max_sets
        self.max_records = max_records  # record keys kept per set
        self._clock = clock
        # id → (set, expiry)
        self._sets: OrderedDict[str, tuple[SruResultSet, float]] = OrderedDict()
        self._lock = threading.Lock()  # requests run in a thread pool

    def keep(self, found: ResultSet, ttl: int) -> SruResultSet:
        """Keep a search's result set (its first `max_records` hits) under a new id."""
        result = _new_set(found, ttl, self.max_records)
        with self._lock:
            self._expire()
            self._sets[result.id] = (result, self._clock() + ttl)
            while len(self._sets) > self.max_sets:
                self._sets.popitem(last=False)
        return result

    def get(self, set_id: str, database: str) -> SruResultSet | None:
        """The set, its TTL started again; None when unknown, expired or another database's."""
        with self._lock:
            self._expire()
            found = self._sets.get(set_id)
            if found is None or found[0].database != database:
                return None
            result = found[0]
            self._sets[set_id] = (result, self._clock() + result.ttl)
            self._sets.move_to_end(set_id)
            return result

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._sets)

    def _expire(self) -> None:
        now = self._clock()
        for set_id in [k for k, (_, expiry) in self._sets.items() if expiry <= now]:
            del self._sets[set_id]


class SharedResultSetStore:
    """Result sets in the store, read by every process: one write when a set is made, one
    primary-key read per page, and a write to start the idle time again at most every
    `_slack(ttl)` seconds of use (a set then lives at least its TTL after its last use, and
    at most that slack longer). At most `max_sets` sets are kept in all; beyond it those that
    expire first go."""

    def __init__(
        self,
        store: Store,
        max_sets: int,
        max_records: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.max_sets = max_sets
        self.max_records = max_records
        self._clock = clock  # the wall clock: every process must agree on it

    def keep(self, found: ResultSet, ttl: int) -> SruResultSet:
        result = _new_set(found, ttl, self.max_records)
        now = self._clock()
        with self.store.write() as tx:
            kept.save(tx, result, ttl, now + ttl + _slack(ttl))
            kept.prune(tx, now, self.max_sets)
        return result

    def get(self, set_id: str, database: str) -> SruResultSet | None:
        now = self._clock()
        with self.store.read() as tx:
            found = kept.load(tx, set_id)
        if found is None or found.expires_at <= now or found.result.database != database:
            return None
        if found.expires_at < now + found.ttl:
            with self.store.write() as tx:
                kept.extend(tx, set_id, now + found.ttl + _slack(found.ttl))
        result = found.result
        return SruResultSet(
            name=result.name,
            database=result.database,
            query=result.query,
            total=result.total,
            record_pks=result.record_pks,
            available_only=result.available_only,
            ttl=found.ttl,
        )

    def __len__(self) -> int:
        with self.store.read() as tx:
            return kept.count(tx, self._clock())


def _slack(ttl: int) -> float:
    """How much longer than its TTL a shared set may live: a tenth, between 1 and 30 s."""
    return float(min(30, max(1, ttl // 10)))
