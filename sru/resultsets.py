"""Named result sets: an in-memory, size-bounded store of search results with a time to live.

A result set keeps the query and the record keys of its first hits, in result order, so later
pages (`cql.resultSetId = "…"`) are read without searching again; pages past what was kept are
searched again with the kept query. Sets expire after their TTL without use (SRU 1.x calls it
idle time; each use starts the TTL again) and the least recently used go first when the store
is full. One process: a set lives in the process that made it, which is what SRU promises
(result sets are a hint, and an expired or unknown id is diagnostic 51).
"""

from __future__ import annotations

import secrets
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gateway.retrieval import ResultSet


@dataclass(frozen=True)
class SruResultSet(ResultSet):
    """A result set under an unguessable id (its `name`), alive `ttl` seconds after each use."""

    ttl: int = 0  # seconds

    @property
    def id(self) -> str:
        return self.name


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
        """Keep a search's result set (its first `max_records` hits) under a new id. The hits
        are packed as 64-bit integers: a quarter of the memory of a tuple of ints, which
        counts with `result_sets` sets of `result_set_max_records` hits each."""
        result = SruResultSet(
            # Unguessable ids: a partner must not read another partner's set by counting.
            name=secrets.token_urlsafe(9),
            database=found.database,
            query=found.query,
            total=found.total,
            record_pks=array("q", found.record_pks[: self.max_records]),
            available_only=found.available_only,
            ttl=ttl,
        )
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
