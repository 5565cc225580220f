"""What the readers' portal needs of union search, as plain values and one small interface.

The portal (web/) may not import the union search (union/): front-ends never import each
other. The composition root (gateway/app.py) builds union's implementation of `UnionSearcher`
and hands it to the portal, which sees only these types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# A library's final state in one search (union/fanout.py TargetState's final values).
LIBRARY_STATES = ("ok", "diagnostic", "failed", "timeout")


@dataclass(frozen=True, kw_only=True)
class LibraryOutcome:
    """How one partner catalogue answered: its state, hit count, the diagnostic or failure in
    plain words, and the milliseconds from the start of the search to its final state."""

    name: str
    state: str  # one of LIBRARY_STATES
    hits: int = 0
    error: str = ""
    ms: int = 0

    def __post_init__(self) -> None:
        if self.state not in LIBRARY_STATES:
            raise ValueError(f"library state {self.state!r} is not one of {LIBRARY_STATES}")


@dataclass(frozen=True, kw_only=True)
class Holder:
    """A library that holds the work: its target name, its ILL agency id ("" if none), and
    whether one of its copies offers an ILL request (the engine's `offers_ill`); None when
    the library shows no holdings."""

    name: str
    agency_id: str = ""
    offers_ill: bool | None = None


@dataclass(frozen=True, kw_only=True)
class UnionWork:
    """One merged work, with what an ILL request is pre-filled from, its holding libraries in
    the order they answered, and `lenders`: the agency ids an ILL request may ask, in that
    order (holders that are [ill] partners with a copy that offers ILL, or no holdings shown)."""

    title: str
    author: str = ""
    publisher: str = ""
    year: str = ""
    isbn: str = ""
    language: str = ""
    holders: tuple[Holder, ...] = ()
    lenders: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class UnionOutcome:
    libraries: tuple[LibraryOutcome, ...]
    works: tuple[UnionWork, ...]


class UnionSearcher(Protocol):
    """One union search, called from a worker thread (never the reactor's); it returns when
    every library has answered or the deadline (`timeout` seconds) has passed. A query the
    search box cannot read raises gateway.catalogue.query.QueryError."""

    def library_names(self) -> list[str]: ...

    def search(self, text: str, target_names: list[str] | None, timeout: float) -> UnionOutcome: ...


__all__ = [
    "LIBRARY_STATES",
    "Holder",
    "LibraryOutcome",
    "UnionOutcome",
    "UnionSearcher",
    "UnionWork",
]
