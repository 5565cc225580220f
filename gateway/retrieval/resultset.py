"""A result set: what a search found, kept so that later pages need no new search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.catalogue.query import Query


@dataclass(frozen=True)
class ResultSet:
    """A search's exact hit count and the record keys of its first hits, in result order.

    Both protocols keep these under names of their own (SRU: an unguessable id with a time to
    live; Z39.50: the client's name, per association). A page past the kept hits is searched
    again with `query`, which is why the set keeps it (and the availability limit)."""

    name: str
    database: str
    query: Query
    total: int
    record_pks: Sequence[int]  # the first hits, at most the protocol's keep limit
    available_only: bool = False  # searched with the availability limit (`local.available`)

    def kept(self, start: int, count: int) -> list[int] | None:
        """Record keys of hits `start … start+count-1` (1-based) when the set kept them all,
        else None (the page has to be searched again)."""
        if start < 1 or start - 1 + count > len(self.record_pks):
            return None
        return list(self.record_pks[start - 1 : start - 1 + count])
