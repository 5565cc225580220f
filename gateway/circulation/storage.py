"""Every SQL statement of the circulation engine, as small functions over a transaction.

Rows a decision reads and then writes are selected with `tx.for_update` (PostgreSQL row locks;
SQLite's IMMEDIATE transaction already serialises writers). Lock order is always title, then
copy, then patron, so concurrent actions cannot deadlock each other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

from gateway.circulation.states import CardStatus, HoldState
from gateway.store import Transaction
from gateway.store.engine import Row


@dataclass(frozen=True)
class Patron:
    pk: int
    barcode: str
    name: str
    pin_hash: str
    category: str
    email: str
    phone: str
    status: CardStatus
    no_show_count: int
    hold_suspended_until: str | None


@dataclass(frozen=True)
class Copy:
    pk: int
    barcode: str
    record_pk: int
    location: str
    call_number: str
    item_type: str
    status: str
    properties: str = ""  # free text kept for the copy (SIP2 19 Item Status Update)
    library: str = ""  # 馆址: the library (branch) that holds it; "" when the holdings said none


@dataclass(frozen=True)
class Loan:
    id: int
    item_pk: int
    patron_pk: int
    record_pk: int
    checked_out_at: str
    due_at: str
    renewals: int


class RecordLabel(NamedTuple):
    """How a title is named to a person: its database, its record id and its title."""

    database: str
    record_id: str
    title: str


@dataclass(frozen=True)
class Hold:
    id: int
    patron_pk: int
    record_pk: int
    state: HoldState
    placed_at: str
    expires_at: str
    item_pk: int | None
    ready_at: str | None
    pickup_deadline: str | None
    pickup_desk: str | None


@dataclass(frozen=True)
class Fee:
    id: int
    patron_pk: int
    kind: str
    amount: int  # minor units (fen)
    currency: str
    description: str
    created_at: str
    closed_at: str | None
    paid: int  # sum of its payments

    @property
    def outstanding(self) -> int:
        return self.amount - self.paid


PATRON = "id, barcode, name, pin_hash, category, email, phone, status, no_show_count, hold_suspended_until"
COPY = "id, barcode, record_pk, location, call_number, item_type, status, properties, library"
FEE = (
    "f.id, f.patron_pk, f.kind, f.amount, f.currency, f.description, f.created_at, f.closed_at,"
    " (SELECT coalesce(sum(p.amount), 0) FROM fee_payments p WHERE p.fee_pk = f.id)"
)
LOAN = "id, item_pk, patron_pk, record_pk, checked_out_at, due_at, renewals"
HOLD = (
    "id, patron_pk, record_pk, state, placed_at, expires_at, item_pk, ready_at,"
    " pickup_deadline, pickup_desk"
)


def patron_by_barcode(tx: Transaction, barcode: str, lock: bool = False) -> Patron | None:
    row = tx.one(
        f"SELECT {PATRON} FROM patrons WHERE barcode = ?" + (tx.for_update if lock else ""),
        (barcode,),
    )
    return _patron(row) if row else None


def patron_by_pk(tx: Transaction, pk: int, lock: bool = False) -> Patron:
    row = tx.one(
        f"SELECT {PATRON} FROM patrons WHERE id = ?" + (tx.for_update if lock else ""), (pk,)
    )
    assert row is not None
    return _patron(row)


def _patron(row: Row) -> Patron:
    pk, barcode, name, pin_hash, category, email, phone, status, no_shows, suspended = row
    return Patron(
        pk, barcode, name, pin_hash, category, email, phone, CardStatus(status), no_shows, suspended
    )


def copy_by_barcode(tx: Transaction, barcode: str, lock: bool = False) -> Copy | None:
    row = tx.one(
        f"SELECT {COPY} FROM items WHERE barcode = ?" + (tx.for_update if lock else ""), (barcode,)
    )
    return Copy(*row) if row else None


def copy_by_pk(tx: Transaction, pk: int, lock: bool = False) -> Copy:
    row = tx.one(f"SELECT {COPY} FROM items WHERE id = ?" + (tx.for_update if lock else ""), (pk,))
    assert row is not None
    return Copy(*row)


def copies_of(tx: Transaction, record_pk: int, lock: bool = False) -> list[Copy]:
    rows = tx.execute(
        f"SELECT {COPY} FROM items WHERE record_pk = ? ORDER BY id"
        + (tx.for_update if lock else ""),
        (record_pk,),
    )
    return [Copy(*r) for r in rows]


def lock_title(tx: Transaction, record_pk: int) -> None:
    """Serialise decisions about one title's hold queue (PostgreSQL; SQLite already is)."""
    if tx.for_update:
        tx.execute("SELECT id FROM bib_records WHERE id = ?" + tx.for_update, (record_pk,))


def lock_copy(tx: Transaction, barcode: str) -> Copy | None:
    """The copy with `barcode`, locked in the engine's order: its title first, then the copy
    (read again under its lock). None if there is no such copy. SQLite's one writer already
    serialises every decision, so there the first read is the answer."""
    found = copy_by_barcode(tx, barcode)
    if found is None or not tx.for_update:
        return found
    lock_title(tx, found.record_pk)
    return copy_by_barcode(tx, barcode, lock=True)


def record_pk_by_id(tx: Transaction, database: str, record_id: str) -> int | None:
    value = tx.scalar(
        "SELECT id FROM bib_records WHERE database = ? AND record_id = ?", (database, record_id)
    )
    return int(value) if value is not None else None


def record_label(tx: Transaction, record_pk: int) -> RecordLabel:
    row = tx.one("SELECT database, record_id, title FROM bib_records WHERE id = ?", (record_pk,))
    assert row is not None
    return RecordLabel(row[0], row[1], row[2])


def record_author(tx: Transaction, record_pk: int) -> str:
    return str(tx.scalar("SELECT author FROM bib_records WHERE id = ?", (record_pk,)) or "")


class CopyCard(NamedTuple):
    """What SIP2 17 shows of a copy, read in one statement: the copy, its title's label and
    author, its open loan (at most one: loans_one_open_per_item) with the borrower's barcode,
    the hold it is trapped for (at most one: holds_one_ready_per_item) with that reader's
    barcode and name, and the length of its title's queue."""

    copy: Copy
    label: RecordLabel
    author: str
    loan: Loan | None
    borrower_barcode: str | None
    ready: Hold | None
    holder_barcode: str | None
    holder_name: str | None
    waiting: int


_CARD_HOLD = ", ".join(f"h.{column.strip()}" for column in HOLD.split(","))


def copy_card(tx: Transaction, barcode: str) -> CopyCard | None:
    row = tx.one(
        "SELECT i.id, i.barcode, i.record_pk, i.location, i.call_number, i.item_type,"
        " i.status, i.properties, i.library, b.database, b.record_id, b.title, b.author,"
        " l.id, l.item_pk, l.patron_pk, l.record_pk, l.checked_out_at, l.due_at, l.renewals,"
        f" p.barcode, {_CARD_HOLD}, hp.barcode, hp.name,"
        " (SELECT count(*) FROM holds w WHERE w.record_pk = i.record_pk"
        " AND w.state = 'waiting')"
        " FROM items i JOIN bib_records b ON b.id = i.record_pk"
        " LEFT JOIN loans l ON l.item_pk = i.id AND l.returned_at IS NULL"
        " LEFT JOIN patrons p ON p.id = l.patron_pk"
        " LEFT JOIN holds h ON h.item_pk = i.id AND h.state = 'ready'"
        " LEFT JOIN patrons hp ON hp.id = h.patron_pk"
        " WHERE i.barcode = ?",
        (barcode,),
    )
    if row is None:
        return None
    return CopyCard(
        copy=Copy(*row[0:9]),
        label=RecordLabel(row[9], row[10], row[11]),
        author=str(row[12] or ""),
        loan=Loan(*row[13:20]) if row[13] is not None else None,
        borrower_barcode=row[20],
        ready=_hold(row[21:31]) if row[21] is not None else None,
        holder_barcode=row[31],
        holder_name=row[32],
        waiting=int(row[33]),
    )


def set_copy_status(tx: Transaction, item_pk: int, status: str) -> None:
    tx.execute("UPDATE items SET status = ? WHERE id = ?", (status, item_pk))


def set_copy_properties(tx: Transaction, item_pk: int, properties: str) -> None:
    tx.execute("UPDATE items SET properties = ? WHERE id = ?", (properties, item_pk))


def set_patron_status(tx: Transaction, patron_pk: int, status: CardStatus) -> None:
    tx.execute("UPDATE patrons SET status = ? WHERE id = ?", (status, patron_pk))


def open_loan_of_copy(tx: Transaction, item_pk: int) -> Loan | None:
    row = tx.one(f"SELECT {LOAN} FROM loans WHERE item_pk = ? AND returned_at IS NULL", (item_pk,))
    return Loan(*row) if row else None


def open_loans_of_patron(tx: Transaction, patron_pk: int) -> list[Loan]:
    rows = tx.execute(
        f"SELECT {LOAN} FROM loans WHERE patron_pk = ? AND returned_at IS NULL ORDER BY id",
        (patron_pk,),
    )
    return [Loan(*r) for r in rows]


class LabelledLoan(NamedTuple):
    """An open loan with its copy's barcode and its title's label."""

    loan: Loan
    item_barcode: str
    label: RecordLabel


def open_loans_of_patron_labelled(tx: Transaction, patron_pk: int) -> list[LabelledLoan]:
    """`open_loans_of_patron` with each copy's barcode and title, in one statement."""
    loan_columns = ", ".join(f"l.{c.strip()}" for c in LOAN.split(","))
    rows = tx.execute(
        f"SELECT {loan_columns}, i.barcode, b.database, b.record_id, b.title FROM loans l"
        " JOIN items i ON i.id = l.item_pk JOIN bib_records b ON b.id = l.record_pk"
        " WHERE l.patron_pk = ? AND l.returned_at IS NULL ORDER BY l.id",
        (patron_pk,),
    )
    return [LabelledLoan(Loan(*r[0:7]), r[7], RecordLabel(r[8], r[9], r[10])) for r in rows]


def open_loans_of_title(tx: Transaction, record_pk: int) -> list[Loan]:
    rows = tx.execute(
        f"SELECT {LOAN} FROM loans WHERE record_pk = ? AND returned_at IS NULL ORDER BY id",
        (record_pk,),
    )
    return [Loan(*r) for r in rows]


def insert_loan(
    tx: Transaction, copy: Copy, patron_pk: int, at: str, due: str, channel: str
) -> int:
    return tx.insert(
        "INSERT INTO loans (item_pk, patron_pk, record_pk, checked_out_at, due_at, channel)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (copy.pk, patron_pk, copy.record_pk, at, due, channel),
    )


def close_loan(tx: Transaction, loan_id: int, at: str) -> None:
    tx.execute("UPDATE loans SET returned_at = ? WHERE id = ?", (at, loan_id))


def renew_loan(tx: Transaction, loan_id: int, due: str) -> None:
    tx.execute("UPDATE loans SET due_at = ?, renewals = renewals + 1 WHERE id = ?", (due, loan_id))


def _hold(row: Row) -> Hold:
    pk, patron_pk, record_pk, state, placed_at, expires_at, item_pk, ready_at, deadline, desk = row
    return Hold(
        pk,
        patron_pk,
        record_pk,
        HoldState(state),
        placed_at,
        expires_at,
        item_pk,
        ready_at,
        deadline,
        desk,
    )


def waiting_holds(tx: Transaction, record_pk: int) -> list[Hold]:
    """The title's queue, oldest first (first come, first served)."""
    rows = tx.execute(
        f"SELECT {HOLD} FROM holds WHERE record_pk = ? AND state = 'waiting'"
        " ORDER BY placed_at, id",
        (record_pk,),
    )
    return [_hold(r) for r in rows]


def hold_by_id(tx: Transaction, hold_id: int) -> Hold | None:
    row = tx.one(f"SELECT {HOLD} FROM holds WHERE id = ?", (hold_id,))
    return _hold(row) if row else None


def ready_hold_of_copy(tx: Transaction, item_pk: int) -> Hold | None:
    row = tx.one(f"SELECT {HOLD} FROM holds WHERE item_pk = ? AND state = 'ready'", (item_pk,))
    return _hold(row) if row else None


def open_holds_of_patron(tx: Transaction, patron_pk: int) -> list[Hold]:
    rows = tx.execute(
        f"SELECT {HOLD} FROM holds WHERE patron_pk = ? AND state IN ('waiting', 'ready')"
        " ORDER BY placed_at, id",
        (patron_pk,),
    )
    return [_hold(r) for r in rows]


def open_hold(tx: Transaction, patron_pk: int, record_pk: int) -> Hold | None:
    row = tx.one(
        f"SELECT {HOLD} FROM holds WHERE patron_pk = ? AND record_pk = ?"
        " AND state IN ('waiting', 'ready')",
        (patron_pk, record_pk),
    )
    return _hold(row) if row else None


def insert_hold(
    tx: Transaction, patron_pk: int, record_pk: int, at: str, expires: str, channel: str
) -> int:
    return tx.insert(
        "INSERT INTO holds (patron_pk, record_pk, state, placed_at, expires_at, channel)"
        " VALUES (?, ?, 'waiting', ?, ?, ?)",
        (patron_pk, record_pk, at, expires, channel),
    )


def make_ready(
    tx: Transaction, hold_id: int, item_pk: int, at: str, deadline: str, desk: str
) -> None:
    tx.execute(
        "UPDATE holds SET state = 'ready', item_pk = ?, ready_at = ?, pickup_deadline = ?,"
        " pickup_desk = ? WHERE id = ?",
        (item_pk, at, deadline, desk, hold_id),
    )


def close_hold(tx: Transaction, hold_id: int, state: HoldState, at: str) -> None:
    tx.execute(
        "UPDATE holds SET state = ?, item_pk = NULL, closed_at = ? WHERE id = ?",
        (state, at, hold_id),
    )


def due_waiting_expiry(tx: Transaction, as_of: str) -> Hold | None:
    row = tx.one(
        f"SELECT {HOLD} FROM holds WHERE state = 'waiting' AND expires_at <= ?"
        " ORDER BY expires_at, id LIMIT 1",
        (as_of,),
    )
    return _hold(row) if row else None


def due_pickup_deadline(tx: Transaction, as_of: str) -> Hold | None:
    row = tx.one(
        f"SELECT {HOLD} FROM holds WHERE state = 'ready' AND pickup_deadline <= ?"
        " ORDER BY pickup_deadline, id LIMIT 1",
        (as_of,),
    )
    return _hold(row) if row else None


def set_no_shows(tx: Transaction, patron_pk: int, count: int, suspended_until: str | None) -> None:
    tx.execute(
        "UPDATE patrons SET no_show_count = ?, hold_suspended_until = ? WHERE id = ?",
        (count, suspended_until, patron_pk),
    )


def insert_fee(
    tx: Transaction,
    patron_pk: int,
    kind: str,
    amount: int,
    currency: str,
    description: str,
    at: str,
) -> int:
    return tx.insert(
        "INSERT INTO fees (patron_pk, kind, amount, currency, description, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (patron_pk, kind, amount, currency, description, at),
    )


def fees_of_patron(tx: Transaction, patron_pk: int, open_only: bool = False) -> list[Fee]:
    """A reader's fees, oldest first (the order payments are applied in)."""
    rows = tx.execute(
        f"SELECT {FEE} FROM fees f WHERE f.patron_pk = ?"
        + (" AND f.closed_at IS NULL" if open_only else "")
        + " ORDER BY f.created_at, f.id",
        (patron_pk,),
    )
    return [Fee(*r) for r in rows]


def fees_owed(tx: Transaction, patron_pk: int) -> int:
    """What a reader still owes on open fees, in minor units."""
    value = tx.scalar(
        "SELECT coalesce(sum(f.amount - (SELECT coalesce(sum(p.amount), 0) FROM fee_payments p"
        " WHERE p.fee_pk = f.id)), 0) FROM fees f WHERE f.patron_pk = ? AND f.closed_at IS NULL",
        (patron_pk,),
    )
    return int(value or 0)


def insert_fee_payment(
    tx: Transaction,
    fee_pk: int,
    patron_pk: int,
    amount: int,
    at: str,
    payment_type: str,
    transaction_id: str,
    part: int,
    channel: str,
) -> int:
    return tx.insert(
        "INSERT INTO fee_payments (fee_pk, patron_pk, amount, paid_at, payment_type,"
        " transaction_id, part, channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (fee_pk, patron_pk, amount, at, payment_type, transaction_id, part, channel),
    )


class RecordedPayment(NamedTuple):
    """A payment a reader already made under a transaction id."""

    amount: int  # all its parts, minor units
    fee_id: int  # the first fee it paid


def payment_by_transaction(
    tx: Transaction, patron_pk: int, transaction_id: str
) -> RecordedPayment | None:
    """The payment a reader made under this transaction id, if any."""
    row = tx.one(
        "SELECT sum(amount), max(CASE WHEN part = 0 THEN fee_pk END) FROM fee_payments"
        " WHERE patron_pk = ? AND transaction_id = ?",
        (patron_pk, transaction_id),
    )
    return RecordedPayment(int(row[0]), int(row[1])) if row and row[0] is not None else None


def close_fee(tx: Transaction, fee_pk: int, at: str) -> None:
    tx.execute("UPDATE fees SET closed_at = ? WHERE id = ?", (at, fee_pk))


def log_event(
    tx: Transaction,
    at: str,
    action: str,
    channel: str,
    *,
    patron_pk: int | None = None,
    item_pk: int | None = None,
    record_pk: int | None = None,
    hold_id: int | None = None,
    loan_id: int | None = None,
    **details: object,
) -> None:
    """The append-only audit log, written in the same transaction as the change."""
    tx.execute(
        "INSERT INTO circulation_events (at, action, channel, patron_pk, item_pk, record_pk,"
        " hold_id, loan_id, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            at,
            action,
            channel,
            patron_pk,
            item_pk,
            record_pk,
            hold_id,
            loan_id,
            json.dumps(details, ensure_ascii=False, sort_keys=True, default=str),
        ),
    )


# --- Readers as an import writes them (libgate patrons import) ----------------------------


@dataclass(frozen=True)
class PatronDetails:
    """What a reader file says about a reader: everything but the circulation state."""

    name: str
    pin_hash: str  # "" = no PIN set
    category: str
    email: str
    phone: str


def insert_patron(tx: Transaction, barcode: str, details: PatronDetails) -> int:
    return tx.insert(
        "INSERT INTO patrons (barcode, name, pin_hash, category, email, phone)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            barcode,
            details.name,
            details.pin_hash,
            details.category,
            details.email,
            details.phone,
        ),
    )


def update_patron_details(tx: Transaction, patron_pk: int, details: PatronDetails) -> None:
    tx.execute(
        "UPDATE patrons SET name = ?, pin_hash = ?, category = ?, email = ?, phone = ?"
        " WHERE id = ?",
        (details.name, details.pin_hash, details.category, details.email, details.phone, patron_pk),
    )


# --- wrong reader PINs (pin_guard.py) ---------------------------------------------------------


def pin_failures(tx: Transaction, reader: str, source: str) -> tuple[int, str] | None:
    """(failures, last failure's stamp) of one back-off counter, if it has a row."""
    row = tx.one(
        "SELECT failures, last_failure FROM pin_failures WHERE reader = ? AND source = ?",
        (reader, source),
    )
    return None if row is None else (int(row[0]), str(row[1]))


def add_pin_failure(
    tx: Transaction, reader: str, source: str, now: str, forgotten_before: str, terminal: str
) -> None:
    """One more failure on a counter; one whose last failure is forgotten starts again at 1."""
    tx.execute(
        "INSERT INTO pin_failures"
        " (reader, source, failures, window_start, last_failure, last_terminal)"
        " VALUES (?, ?, 1, ?, ?, ?)"
        " ON CONFLICT (reader, source) DO UPDATE SET"
        " failures = CASE WHEN pin_failures.last_failure < ? THEN 1"
        " ELSE pin_failures.failures + 1 END,"
        " window_start = CASE WHEN pin_failures.last_failure < ? THEN excluded.window_start"
        " ELSE pin_failures.window_start END,"
        " last_failure = excluded.last_failure, last_terminal = excluded.last_terminal",
        (reader, source, now, now, terminal, forgotten_before, forgotten_before),
    )


def take_back_pin_failures(tx: Transaction, reader: str, source: str, count: int) -> None:
    tx.execute(
        "UPDATE pin_failures SET failures = CASE WHEN failures > ? THEN failures - ? ELSE 0 END"
        " WHERE reader = ? AND source = ?",
        (count, count, reader, source),
    )


def drop_spent_pin_failures(tx: Transaction, forgotten_before: str) -> None:
    """Rows that count nothing any more: emptied, or forgiven."""
    tx.execute(
        "DELETE FROM pin_failures WHERE failures = 0 OR last_failure < ?", (forgotten_before,)
    )


# --- copies and titles leaving the catalogue (withdrawal.py) -----------------------------------


class IllUse(NamedTuple):
    """An interlibrary loan request that names a copy or a title."""

    item_pk: int | None
    record_pk: int | None
    number: str
    state: str


def ill_uses(tx: Transaction, item_pks: list[int], record_pks: list[int]) -> list[IllUse]:
    """ILL requests (any state: their history names them) of these copies or titles."""
    found: list[IllUse] = []
    for column, pks in (("item_pk", item_pks), ("record_pk", record_pks)):
        for start in range(0, len(pks), 500):
            chunk = pks[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = tx.execute(
                "SELECT item_pk, record_pk, coalesce(number, ''), state FROM ill_requests"
                f" WHERE {column} IN ({marks}) ORDER BY id",
                chunk,
            )
            found += [IllUse(r[0], r[1], str(r[2]), str(r[3])) for r in rows]
    return found


def circulation_history(
    tx: Transaction, item_pks: list[int], record_pks: list[int]
) -> tuple[dict[int, str], dict[int, str]]:
    """Which of these copies and titles have circulated: any loan, hold, ILL request or
    audit event (fees, item notes) names them. Copy pk → what, title pk → what."""
    items: dict[int, list[str]] = {}
    records: dict[int, list[str]] = {}
    checks = (
        ("loans", "item_pk", items, "loans"),
        ("holds", "item_pk", items, "holds"),
        ("ill_requests", "item_pk", items, "ILL requests"),
        ("circulation_events", "item_pk", items, "circulation events"),
        ("loans", "record_pk", records, "loans"),
        ("holds", "record_pk", records, "holds"),
        ("ill_requests", "record_pk", records, "ILL requests"),
        ("circulation_events", "record_pk", records, "circulation events"),
    )
    for table, column, into, what in checks:
        pks = item_pks if into is items else record_pks
        for start in range(0, len(pks), 500):
            chunk = pks[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for pk, count in tx.execute(
                f"SELECT {column}, count(*) FROM {table} WHERE {column} IN ({marks})"
                f" GROUP BY {column}",
                chunk,
            ):
                into.setdefault(int(pk), []).append(f"{count} {what}")
    return (
        {pk: ", ".join(parts) for pk, parts in items.items()},
        {pk: ", ".join(parts) for pk, parts in records.items()},
    )
