"""Reader PIN checks behind a back-off kept in the store (issue 11, "PIN guessing").

Every process of the gateway reads and writes the same `pin_failures` rows, so two processes
cannot double an attacker's guesses and a restart forgets nothing. Three counters decide:

- (reader, address): the reader's wrong PINs from one address. Always applies.
- (reader, any address): the reader's wrong PINs from everywhere, so guesses spread over many
  addresses are slowed too. Does not apply to a trusted source (a desk account, or an address in
  `[circulation] pin_trusted_networks`): the reader standing at the library's own terminal with
  the right PIN is never locked out by someone guessing elsewhere (no lock-out denial of service).
- (any reader, address): one address's wrong PINs over all readers (one PIN tried on many
  cards), with a threshold `ADDRESS_FACTOR` times higher. Does not apply to a trusted source.

After `threshold` counted failures the next check waits 2, 4, 8 ... seconds from the last
failure, at most `cap_seconds`; failures older than `forgiveness_seconds` are forgotten.

A check is counted as a failure before the PIN is hashed (in one short write transaction that
also decides whether it may run), and given back when the PIN was right: concurrent guesses,
in any process, each see the ones before them. The hash itself runs outside the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from gateway.circulation import storage
from gateway.circulation.clock import parse_stamp, stamp
from gateway.circulation.core import EngineCore
from gateway.circulation.pin_backoff import ADDRESS_FACTOR
from gateway.circulation.pins import check_pin
from gateway.circulation.states import Channel
from gateway.store import Transaction

ANY = ""  # the reader or address column of a row that counts over all of them


class PinSource(NamedTuple):
    """Where a PIN came from."""

    address: str  # the peer's IP address
    terminal: str  # who sent it, for staff (e.g. SIP2 login@address)
    channel: Channel  # the desk is trusted


class PinVerdict(StrEnum):
    RIGHT = "right"
    WRONG = "wrong"  # also a reader without a PIN
    BACKING_OFF = "backing_off"  # not checked: too many wrong PINs lately
    UNKNOWN_READER = "unknown_reader"


@dataclass(frozen=True)
class PinCheckResult:
    verdict: PinVerdict
    wait_seconds: int = 0  # BACKING_OFF: how long until a check may run

    @property
    def ok(self) -> bool:
        return self.verdict is PinVerdict.RIGHT


class _Counter(NamedTuple):
    reader: str
    source: str
    threshold: int


class _Reservation(NamedTuple):
    pin_hash: str
    counters: tuple[_Counter, ...]
    own_failures: int  # the (reader, address) count before this check


def check_patron_pin(
    core: EngineCore, patron_barcode: str, pin: str, source: PinSource
) -> PinCheckResult:
    backoff = core.policy.pins
    trusted = source.channel is Channel.DESK or backoff.trusts(source.address)
    threshold = max(1, backoff.threshold)
    address = source.address or "?"  # never ANY: an address we could not read is one address
    counters = [_Counter(patron_barcode, address, threshold)]
    if not trusted:
        counters += [
            _Counter(patron_barcode, ANY, threshold),
            _Counter(ANY, address, threshold * ADDRESS_FACTOR),
        ]

    def reserve(tx: Transaction, now: datetime) -> _Reservation | PinCheckResult:
        # The patron row's lock serialises checks of one reader on PostgreSQL (SQLite's write
        # transaction already does), so no two checks read the same counts.
        patron = storage.patron_by_barcode(tx, patron_barcode, lock=True)
        if patron is None:
            return PinCheckResult(PinVerdict.UNKNOWN_READER)
        wait = 0
        own = 0
        for counter in counters:
            failures, last = _counted(tx, counter, now, backoff.forgiveness_seconds)
            if counter is counters[0]:  # (reader, this address)
                own = failures
            if failures and last is not None:
                until = last + timedelta(seconds=backoff.delay_seconds(failures, counter.threshold))
                wait = max(wait, _ceil_seconds(until - now))
        if wait > 0:
            return PinCheckResult(PinVerdict.BACKING_OFF, wait_seconds=wait)
        forgotten = stamp(now - timedelta(seconds=backoff.forgiveness_seconds))
        for counter in counters:
            storage.add_pin_failure(
                tx, counter.reader, counter.source, stamp(now), forgotten, source.terminal
            )
        return _Reservation(patron.pin_hash, tuple(counters), own)

    reserved = core.write(reserve)
    if isinstance(reserved, PinCheckResult):
        return reserved
    if not check_pin(pin, reserved.pin_hash):
        return PinCheckResult(PinVerdict.WRONG)

    def forgive(tx: Transaction, now: datetime) -> None:
        # The right PIN clears this address's failures on this reader, and gives back what
        # they (and this check) added to the shared counters; other addresses' failures stay.
        own = reserved.own_failures + 1
        for counter in reserved.counters:
            taken = own if counter.reader == patron_barcode else 1
            storage.take_back_pin_failures(tx, counter.reader, counter.source, taken)
        forgotten = now - timedelta(seconds=backoff.forgiveness_seconds)
        storage.drop_spent_pin_failures(tx, stamp(forgotten))

    core.write(forgive)
    return PinCheckResult(PinVerdict.RIGHT)


def _counted(
    tx: Transaction, counter: _Counter, now: datetime, forgiveness_seconds: int
) -> tuple[int, datetime | None]:
    """The failures a counter still holds (none once forgiven) and the last one's time."""
    found = storage.pin_failures(tx, counter.reader, counter.source)
    if found is None:
        return 0, None
    failures, last_stamp = found
    last = parse_stamp(last_stamp)
    if now - last > timedelta(seconds=forgiveness_seconds):
        return 0, None
    return failures, last


def _ceil_seconds(delta: timedelta) -> int:
    seconds = delta.total_seconds()
    whole = int(seconds)
    return whole + 1 if seconds > whole else whole
