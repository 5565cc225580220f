"""The OPAC holdings of a title: one holding per copy with its circulation record, as both
OPAC forms carry them (SRU's opacxml, YAZ's `opacxml.xsd`; Z39.50's OPACRecord, ASN.1 from
Z39.50-2003 Appendix 5). One builder, so the two protocols can never disagree on a copy.

Built from the engine's `TitleAvailability`, read at request time. A copy is "available now"
exactly when the circulation policy says so (`CopyAvailability.state`); a copy on the shelf
whose type does not circulate carries the restriction 在馆阅览 / In library use only.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.circulation.availability import SHELF_STATE_LABELS, ShelfState
from gateway.circulation.engine import CopyAvailability, TitleAvailability


@dataclass(frozen=True, kw_only=True)
class OpacCirculation:
    """One circulationData entry, named as the standard names its fields."""

    available_now: bool
    item_id: str  # the copy's barcode
    availability_date: str | None  # yyyy-mm-dd: the due date of a copy on loan
    restrictions: str | None  # why a copy on the shelf is not lent (在馆阅览)
    on_hold: bool  # trapped for a reader's hold
    renewable: bool = False  # never promised to an anonymous catalogue reader


@dataclass(frozen=True, kw_only=True)
class OpacHolding:
    """One holdingsAndCirc entry."""

    local_location: str
    call_number: str
    public_note: str
    circulation: OpacCirculation


def restriction(copy: CopyAvailability) -> str | None:
    """The restriction shown for a copy: only a non-circulating copy on the shelf has one."""
    if copy.state is not ShelfState.LIBRARY_USE_ONLY:
        return None
    chinese, english = SHELF_STATE_LABELS[ShelfState.LIBRARY_USE_ONLY]
    kind = f" ({copy.item_type})" if copy.item_type else ""
    return f"{chinese} / {english}{kind}"


def opac_holdings(availability: TitleAvailability | None) -> tuple[OpacHolding, ...]:
    """Every copy of a title, in the engine's order; none when availability was not read."""
    if availability is None:
        return ()
    queue = availability.hold_queue
    waiting = f"预约排队 {queue} / holds waiting {queue}" if queue else ""
    holdings = []
    for copy in availability.copies:
        note = "; ".join(part for part in (copy.status, waiting) if part)
        holdings.append(
            OpacHolding(
                local_location=copy.location,
                call_number=copy.call_number,
                public_note=note,
                circulation=OpacCirculation(
                    available_now=copy.state is ShelfState.AVAILABLE,
                    item_id=copy.barcode,
                    availability_date=copy.due_at[:10] if copy.due_at else None,
                    restrictions=restriction(copy),
                    on_hold=copy.state is ShelfState.ON_HOLD_SHELF,
                ),
            )
        )
    return tuple(holdings)
