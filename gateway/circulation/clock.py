"""One injectable clock: the engine never reads the system time itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)


def stamp(moment: datetime) -> str:
    """The stored form of a time: ISO 8601 UTC, second precision, sortable as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> datetime:
    # fromisoformat reads our `…Z` stamps (Python 3.11+) several times faster than strptime.
    if not (len(text) == 20 and text.endswith("Z")):
        raise ValueError(f"not a libgate timestamp: {text!r}")
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
