"""Records as readers see them: the bibliographic display and a one-line availability summary,
for the readers' portal (web/) and union search. Built from the stored mapped record (never
re-mapped: the display always shows the record as catalogued) and the engine's availability.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.catalogue.repository import find_record, records_for_retrieval
from gateway.circulation.availability import ShelfState
from gateway.circulation.results import TitleAvailability
from gateway.store import Store
from marc.bibliographic import BibRecord


@dataclass(frozen=True)
class TitleDisplay:
    """One catalogue record for display: where it lives and its mapped data."""

    pk: int
    database: str
    record_id: str
    bib: BibRecord

    @property
    def publication(self) -> str:
        """Place : publisher, date, as a title page line."""
        place_publisher = " : ".join(p for p in (self.bib.place, self.bib.publisher) if p)
        return ", ".join(p for p in (place_publisher, self.bib.date) if p)


def titles_for_display(store: Store, record_pks: list[int]) -> dict[int, TitleDisplay]:
    """The records by primary key, mapped data parsed; missing ones are left out."""
    with store.read() as tx:
        found = records_for_retrieval(tx, record_pks)
    return {
        pk: TitleDisplay(pk, r.database, r.record_id, BibRecord.from_json(r.bib_json))
        for pk, r in found.items()
    }


def title_by_id(store: Store, database: str, record_id: str) -> TitleDisplay | None:
    """A record by its database and id (001), as a record page opens it."""
    with store.read() as tx:
        stored = find_record(tx, database, record_id)
        if stored is None:
            return None
        found = records_for_retrieval(tx, [stored.pk])
    retrieved = found.get(stored.pk)
    if retrieved is None:
        return None
    bib = BibRecord.from_json(retrieved.bib_json)
    return TitleDisplay(stored.pk, database, record_id, bib)


class Availability(StrEnum):
    """What the results list says of a title, from its copies' states."""

    AVAILABLE = "available"  # n of m copies can be borrowed now
    ON_LOAN = "on_loan"  # every lendable copy is out: the earliest due date is shown
    ON_HOLD_SHELF = "on_hold_shelf"  # lendable copies are all out or kept for holds
    LIBRARY_USE_ONLY = "library_use_only"  # copies on the shelf, none of a lendable type
    UNAVAILABLE = "unavailable"  # copies exist, none on the shelf or lent (missing, ...)
    NO_COPIES = "no_copies"


@dataclass(frozen=True)
class AvailabilitySummary:
    state: Availability
    available: int  # copies that can be borrowed now (the engine's available copy)
    copies: int  # all copies
    due_at: str | None = None  # ON_LOAN: the earliest due date of a lent copy
    hold_queue: int = 0  # waiting holds on the title


def summarise(availability: TitleAvailability | None) -> AvailabilitySummary:
    """The availability line of a title: "2 of 3 available", "on loan, due 2026-12-20",
    "in library use only". One rule, from the engine's copy states."""
    copies = availability.copies if availability is not None else ()
    queue = availability.hold_queue if availability is not None else 0
    if not copies:
        return AvailabilitySummary(Availability.NO_COPIES, 0, 0, hold_queue=queue)
    states = [c.state for c in copies]
    available = states.count(ShelfState.AVAILABLE)
    total = len(copies)
    if available:
        return AvailabilitySummary(Availability.AVAILABLE, available, total, hold_queue=queue)
    dues = sorted(c.due_at for c in copies if c.state is ShelfState.ON_LOAN and c.due_at)
    if dues:
        return AvailabilitySummary(Availability.ON_LOAN, 0, total, dues[0], queue)
    if ShelfState.ON_HOLD_SHELF in states:
        return AvailabilitySummary(Availability.ON_HOLD_SHELF, 0, total, hold_queue=queue)
    if ShelfState.LIBRARY_USE_ONLY in states:
        return AvailabilitySummary(Availability.LIBRARY_USE_ONLY, 0, total, hold_queue=queue)
    return AvailabilitySummary(Availability.UNAVAILABLE, 0, total, hold_queue=queue)


__all__ = [
    "Availability",
    "AvailabilitySummary",
    "TitleDisplay",
    "summarise",
    "title_by_id",
    "titles_for_display",
]
