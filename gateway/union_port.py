"""What the readers' portal needs of union search, as plain values and one small interface.

The portal (web/) may not import the union search (union/): front-ends never import each
other. The composition root (gateway/app.py) builds union's implementation of `UnionSearcher`
and hands it to the portal, which sees only these types."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

# A library's state in one search (union/fanout.py TargetState's values): on its way, then final.
LIVE_STATES = ("connecting", "searching")
FINAL_STATES = ("ok", "diagnostic", "failed", "timeout")
LIBRARY_STATES = LIVE_STATES + FINAL_STATES
SORTS = ("relevance", "title", "author", "year")
FACETS = ("library", "year", "language")


@dataclass(frozen=True, kw_only=True)
class LibraryOutcome:
    """How one partner catalogue answered (or is answering): its state, hit count, the
    diagnostic or failure in plain words, and the milliseconds from the start of the search to
    its final state."""

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
class UnionView:
    """How the reader looks at the merged works: their order (one of SORTS) and the facet
    values they narrowed to (by FACETS name: a holding library, a year, a language)."""

    sort: str = "relevance"
    only: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"sort {self.sort!r} is not one of {SORTS}")
        for name, _ in self.only:
            if name not in FACETS:
                raise ValueError(f"facet {name!r} is not one of {FACETS}")


@dataclass(frozen=True, kw_only=True)
class UnionOutcome:
    """The search as it stands: every library's state, the works merged so far (in the view's
    order, narrowed by its facets, at most the searcher's page), how many works there are in
    all before narrowing, the facet counts over them all (by FACETS name, most first), and
    whether the search has ended (every library final, or the deadline passed)."""

    libraries: tuple[LibraryOutcome, ...]
    works: tuple[UnionWork, ...]
    total_works: int = 0
    facets: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    finished: bool = True


class RunningSearch(Protocol):
    """A union search under way on the reactor."""

    @property
    def finished(self) -> bool:
        """Every library is final, or the deadline passed, or the search was cancelled."""
        ...

    def snapshot(self) -> UnionOutcome:
        """What a reader sees now (pazpar2's `show` and `bytarget` in one)."""
        ...

    def cancel(self) -> None:
        """Stop now: connections still waiting are dropped (the reader left)."""
        ...


class UnionSearcher(Protocol):
    """Union search for the portal. A query the search box cannot read raises
    gateway.catalogue.query.QueryError before anything is sent."""

    def library_names(self) -> list[str]: ...

    @property
    def timeout(self) -> float:
        """Seconds a search waits for the libraries ([union] timeout, as in force now: a
        config reload may change it)."""
        ...

    def search(
        self,
        text: str,
        target_names: list[str] | None,
        timeout: float,
        view: UnionView | None = None,
    ) -> UnionOutcome:
        """From a worker thread (never the reactor's): returns when every library has answered
        or the deadline (`timeout` seconds) has passed. No view: by relevance, all works."""
        ...

    def start(
        self,
        text: str,
        target_names: list[str] | None,
        timeout: float,
        view: UnionView,
        on_change: Callable[[], None],
    ) -> RunningSearch:
        """On the reactor thread: starts the search and returns at once; `on_change` is called
        (on the reactor) whenever a library's state changes or its records arrive, the last
        time when the search has ended."""
        ...


__all__ = [
    "FACETS",
    "FINAL_STATES",
    "LIBRARY_STATES",
    "LIVE_STATES",
    "SORTS",
    "RunningSearch",
    "UnionView",
    "Holder",
    "LibraryOutcome",
    "UnionOutcome",
    "UnionSearcher",
    "UnionWork",
]
