"""What "available" means: one predicate, owned by the circulation policy, read by every view.

R2's available copy (reservation-rules.md, Terms): a copy whose status is the configured
on-shelf word ([circulation] on_shelf_status), whose item type circulates ([[item_types]]
circulating, else [circulation] unknown_item_types_circulate), and which is neither on loan
nor trapped for a hold. A non-circulating copy on the shelf is "in library use only"
(在馆阅览), never available.

The engine asks `is_available` with the loan and hold it has read; the search planner and the
per-hit counts ask `sql_available` for the same test as SQL over the `items`, `loans` and
`holds` tables, so a search limit and a hold refusal can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class ShelfState(StrEnum):
    """A copy's state for display (OPAC, holdings, SIP2 item information)."""

    AVAILABLE = "available"  # 在架可借: R2's available copy
    LIBRARY_USE_ONLY = "library_use_only"  # 在馆阅览: on the shelf, type does not circulate
    ON_LOAN = "on_loan"  # 借出
    ON_HOLD_SHELF = "on_hold_shelf"  # 预约到书: trapped for a hold (R6)
    UNAVAILABLE = "unavailable"  # any other status word (missing, in process, lost, ...)


SHELF_STATE_LABELS: dict[ShelfState, tuple[str, str]] = {
    ShelfState.AVAILABLE: ("在架可借", "Available"),
    ShelfState.LIBRARY_USE_ONLY: ("在馆阅览", "In library use only"),
    ShelfState.ON_LOAN: ("借出", "On loan"),
    ShelfState.ON_HOLD_SHELF: ("预约到书", "On hold shelf"),
    ShelfState.UNAVAILABLE: ("不可借", "Not available"),
}


def shelf_state_label(state: ShelfState, language: str = "zh") -> str:
    chinese, english = SHELF_STATE_LABELS[state]
    return english if language == "en" else chinese


@dataclass(frozen=True)
class AvailabilityRule:
    on_shelf_status: str
    circulating_types: Mapping[str, bool]
    unknown_types_circulate: bool

    def circulates(self, item_type: str) -> bool:
        """R1: whether copies of this item type are open for loan."""
        return self.circulating_types.get(item_type, self.unknown_types_circulate)

    def is_available(self, status: str, item_type: str, *, on_loan: bool, trapped: bool) -> bool:
        """R2's available copy, from what the caller has already read of its loan and hold."""
        return (
            status == self.on_shelf_status
            and self.circulates(item_type)
            and not on_loan
            and not trapped
        )

    def shelf_state(
        self, status: str, item_type: str, *, on_loan: bool, trapped: bool
    ) -> ShelfState:
        if on_loan:
            return ShelfState.ON_LOAN
        if trapped:
            return ShelfState.ON_HOLD_SHELF
        if status != self.on_shelf_status:
            return ShelfState.UNAVAILABLE
        if not self.circulates(item_type):
            return ShelfState.LIBRARY_USE_ONLY
        return ShelfState.AVAILABLE

    def sql_available(self, item: str = "i") -> tuple[str, list[object]]:
        """The same predicate as an SQL condition on the `items` row aliased `item`, with its
        parameters in order ("?" placeholders, as every query of ours)."""
        circulating = [name for name, flag in self.circulating_types.items() if flag]
        closed = [name for name, flag in self.circulating_types.items() if not flag]
        if self.unknown_types_circulate:
            # Every type circulates except the ones configured closed.
            type_test = (
                f"{item}.item_type NOT IN ({', '.join('?' * len(closed))})" if closed else "1 = 1"
            )
            type_params: list[object] = list(closed)
        else:
            type_test = (
                f"{item}.item_type IN ({', '.join('?' * len(circulating))})"
                if circulating
                else "1 = 0"
            )
            type_params = list(circulating)
        condition = (
            f"({item}.status = ? AND {type_test}"
            f" AND NOT EXISTS (SELECT 1 FROM loans l WHERE l.item_pk = {item}.id"
            " AND l.returned_at IS NULL)"
            f" AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.item_pk = {item}.id"
            " AND h.state = 'ready'))"
        )
        return condition, [self.on_shelf_status, *type_params]
