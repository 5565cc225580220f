"""Circulation policy from the config: categories, item types, desks, hold periods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from gateway.circulation.availability import AvailabilityRule, ShelfState
from gateway.circulation.pin_backoff import PinBackoff
from gateway.circulation.states import STATUS_STATES, CirculationState
from gateway.config import (
    CirculationSettings,
    HoldSettings,
    PatronCategory,
    Settings,
)

# The item type of a copy we borrowed from another library for one of our readers
# (ill_borrowing.py): it circulates through the hold shelf like any copy, whatever the
# configured [[item_types]] say of types they do not name.
ILL_COPY_TYPE = "馆际互借"

SHELF_CIRCULATION: dict[ShelfState, CirculationState] = {
    ShelfState.AVAILABLE: CirculationState.AVAILABLE,
    ShelfState.LIBRARY_USE_ONLY: CirculationState.LIBRARY_USE_ONLY,
    ShelfState.ON_LOAN: CirculationState.ON_LOAN,
    ShelfState.ON_HOLD_SHELF: CirculationState.ON_HOLD_SHELF,
}


@dataclass(frozen=True)
class Policy:
    categories: dict[str, PatronCategory]
    circulating_types: dict[str, bool]
    ill_lendable_types: dict[str, bool]
    desks: dict[str, str]
    holds: HoldSettings
    circulation: CirculationSettings
    pins: PinBackoff = PinBackoff()

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            categories={c.name: c for c in settings.patron_categories},
            circulating_types={
                ILL_COPY_TYPE: True,
                **{t.name: t.circulating for t in settings.item_types},
            },
            ill_lendable_types={t.name: t.ill_lendable for t in settings.item_types},
            desks={loc.name: loc.desk for loc in settings.locations},
            holds=settings.holds,
            circulation=settings.circulation,
            pins=PinBackoff(
                threshold=settings.sip2.pin_failures_before_backoff,
                cap_seconds=settings.sip2.pin_backoff_max_seconds,
                forgiveness_seconds=settings.circulation.pin_forgiveness_seconds,
                trusted_networks=settings.circulation.pin_trusted_networks,
            ),
        )

    def category(self, name: str) -> PatronCategory:
        return self.categories.get(name) or self.categories[self.circulation.default_category]

    @cached_property
    def availability(self) -> AvailabilityRule:
        """R2's available copy: the one predicate every view asks (see availability.py)."""
        return AvailabilityRule(
            on_shelf_status=self.circulation.on_shelf_status,
            circulating_types=self.circulating_types,
            unknown_types_circulate=self.circulation.unknown_item_types_circulate,
        )

    def circulation_state(
        self, status: str, item_type: str, *, on_loan: bool, trapped: bool
    ) -> CirculationState:
        """Where a copy is: the availability rule's shelf state, and for a copy neither on
        the shelf, lent nor trapped, what its status word says."""
        shelf = self.availability.shelf_state(status, item_type, on_loan=on_loan, trapped=trapped)
        if shelf is not ShelfState.UNAVAILABLE:
            return SHELF_CIRCULATION[shelf]
        if status == self.circulation.on_loan_status:
            return CirculationState.ON_LOAN
        if status == self.circulation.on_hold_shelf_status:
            return CirculationState.ON_HOLD_SHELF
        return STATUS_STATES.get(status.strip().lower(), CirculationState.OTHER)

    def desk_for(self, location: str) -> str:
        """R10: the pickup place is the desk serving the copy's holding location."""
        return self.desks.get(location, self.circulation.default_desk)

    @property
    def request_period(self) -> timedelta:
        return timedelta(days=self.holds.request_days)

    @property
    def pickup_period(self) -> timedelta:
        return timedelta(days=self.holds.pickup_days)

    @property
    def suspension_period(self) -> timedelta:
        return timedelta(days=self.holds.suspension_days)
