"""Every SQL statement of interlibrary loan (tables of schema 0010), as small functions over a
transaction. The outbox's own claim and delivery statements are in ill_outbox.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from gateway.store import Transaction
from gateway.store.engine import IntegrityViolation, Row


@dataclass(frozen=True)
class IllRequest:
    """One row of ill_requests."""

    id: int
    number: str | None
    role: str
    state: str
    status: str
    partner: str
    partner_url: str
    our_agency: str
    requesting_agency_request_id: str
    supplying_agency_request_id: str
    record_pk: int | None
    item_pk: int | None
    barcode: str
    loan_id: int | None
    patron_pk: int | None
    reader_barcode: str
    reader_name: str
    title: str
    author: str
    publisher: str
    year: str
    isbn: str
    issn: str
    language: str
    material_type: str
    supplier_record_id: str
    recipient: str
    email: str
    phone: str
    delivery: str
    reference: str
    note: str
    reason: str
    due_at: str | None
    renewals_used: int
    rota: str
    rota_index: int
    fee: int
    retry_first_seconds: int
    retry_max_attempts: int
    created_at: str
    updated_at: str

    @property
    def lenders(self) -> list[str]:
        found: list[str] = json.loads(self.rota)
        return found


REQUEST_COLUMNS = tuple(f.name for f in fields(IllRequest))
_SELECT = f"SELECT {', '.join(REQUEST_COLUMNS)} FROM ill_requests"


@dataclass(frozen=True)
class IllMessageRow:
    """One line of a request's message history."""

    at: str
    direction: str  # in | out
    kind: str
    status: str
    action: str
    reason_for_message: str
    answer: str
    note: str
    outbox_pk: int | None


def _request(row: Row | None) -> IllRequest | None:
    return IllRequest(*row) if row else None


def insert_request(tx: Transaction, values: dict[str, Any]) -> int:
    names = list(values)
    return tx.insert(
        f"INSERT INTO ill_requests ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        [values[n] for n in names],
    )


def update_request(tx: Transaction, request_pk: int, **values: Any) -> None:
    names = list(values)
    tx.execute(
        f"UPDATE ill_requests SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?",
        [*(values[n] for n in names), request_pk],
    )


def is_lender_once_violation(violation: IntegrityViolation) -> bool:
    """Whether a refused write broke "one lender request per partner's id"
    (ill_requests_lender_once), as each engine words it, and not another constraint."""
    text = str(violation)
    return "ill_requests_lender_once" in text or (
        "ill_requests.partner, ill_requests.requesting_agency_request_id" in text
    )


def lender_confirmed_request(tx: Transaction, request_pk: int, url: str, status: str) -> None:
    """A borrower request still without a status takes `status` when the lender it is with now
    (the one at `url`, not an earlier one of the rota) confirmed the Request."""
    tx.execute(
        "UPDATE ill_requests SET status = ? WHERE id = ? AND role = 'borrower'"
        " AND state = 'sent' AND status = '' AND partner_url = ?",
        (status, request_pk, url),
    )


def request_by_pk(tx: Transaction, request_pk: int, lock: bool = False) -> IllRequest | None:
    return _request(
        tx.one(f"{_SELECT} WHERE id = ?" + (tx.for_update if lock else ""), (request_pk,))
    )


def request_by_number(tx: Transaction, number: str, lock: bool = False) -> IllRequest | None:
    return _request(
        tx.one(f"{_SELECT} WHERE number = ?" + (tx.for_update if lock else ""), (number,))
    )


def lender_request_by_partner_id(
    tx: Transaction, partner: str, requesting_id: str, lock: bool = False
) -> IllRequest | None:
    return _request(
        tx.one(
            f"{_SELECT} WHERE role = 'lender' AND partner = ? AND requesting_agency_request_id = ?"
            + (tx.for_update if lock else ""),
            (partner, requesting_id),
        )
    )


def open_request_of_item(
    tx: Transaction, item_pk: int, role: str, states: tuple[str, ...]
) -> IllRequest | None:
    marks = ", ".join("?" * len(states))
    return _request(
        tx.one(
            f"{_SELECT} WHERE item_pk = ? AND role = ? AND state IN ({marks})"
            " ORDER BY id DESC LIMIT 1",
            (item_pk, role, *states),
        )
    )


def requests(
    tx: Transaction, role: str | None = None, status: str | None = None
) -> list[IllRequest]:
    where, params = [], []
    if role:
        where.append("role = ?")
        params.append(role)
    if status:
        where.append("status = ?")
        params.append(status)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return [IllRequest(*row) for row in tx.execute(f"{_SELECT}{clause} ORDER BY id", params)]


def requests_of_reader(tx: Transaction, patron_barcode: str) -> list[IllRequest]:
    """A reader's own requests (we borrow for them), newest first."""
    rows = tx.execute(
        f"{_SELECT} WHERE role = 'borrower'"
        " AND patron_pk = (SELECT id FROM patrons WHERE barcode = ?)"
        " ORDER BY created_at DESC, id DESC",
        (patron_barcode,),
    )
    return [IllRequest(*row) for row in rows]


def due_lender_loans(tx: Transaction, states: tuple[str, ...], as_of: str) -> list[IllRequest]:
    marks = ", ".join("?" * len(states))
    rows = tx.execute(
        f"{_SELECT} WHERE role = 'lender' AND state IN ({marks}) AND due_at < ? ORDER BY due_at, id",
        (*states, as_of),
    )
    return [IllRequest(*row) for row in rows]


def next_number(tx: Transaction) -> int:
    """The next request number: one row, incremented and read in one statement, so two
    processes (PostgreSQL: its row lock) never take the same one."""
    value = tx.scalar(
        "UPDATE ill_counters SET value = value + 1 WHERE name = 'request' RETURNING value"
    )
    return int(value)


def add_message(
    tx: Transaction,
    request_pk: int,
    at: str,
    direction: str,
    kind: str,
    *,
    status: str = "",
    action: str = "",
    reason_for_message: str = "",
    answer: str = "",
    note: str = "",
    outbox_pk: int | None = None,
    raw_xml: str | None = None,
) -> int:
    return tx.insert(
        "INSERT INTO ill_messages (request_pk, at, direction, kind, status, action,"
        " reason_for_message, answer, note, outbox_pk, raw_xml)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            request_pk,
            at,
            direction,
            kind,
            status,
            action,
            reason_for_message,
            answer,
            note,
            outbox_pk,
            raw_xml,
        ),
    )


def messages_of(tx: Transaction, request_pk: int) -> list[IllMessageRow]:
    rows = tx.execute(
        "SELECT at, direction, kind, status, action, reason_for_message, answer, note, outbox_pk"
        " FROM ill_messages WHERE request_pk = ? ORDER BY id",
        (request_pk,),
    )
    return [IllMessageRow(*row) for row in rows]


def queue_outgoing(
    tx: Transaction,
    request_pk: int,
    url: str,
    message_json: str,
    at: str,
    first_retry_seconds: int,
    max_attempts: int,
) -> int:
    return tx.insert(
        "INSERT INTO ill_outbox (request_pk, url, message, first_retry_seconds, max_attempts,"
        " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (request_pk, url, message_json, first_retry_seconds, max_attempts, at, at),
    )


def reader_state(tx: Transaction, patron_pk: int) -> str | None:
    value = tx.scalar("SELECT state FROM ill_readers WHERE patron_pk = ?", (patron_pk,))
    return str(value) if value is not None else None


def set_reader_state(tx: Transaction, patron_pk: int, state: str, at: str) -> None:
    tx.execute(
        "INSERT INTO ill_readers (patron_pk, state, changed_at) VALUES (?, ?, ?)"
        " ON CONFLICT (patron_pk) DO UPDATE SET state = excluded.state,"
        " changed_at = excluded.changed_at",
        (patron_pk, state, at),
    )


def record_pks_by_record_id(tx: Transaction, record_id: str) -> list[int]:
    """Our records with this 001, in any database (a partner names our record id)."""
    rows = tx.execute("SELECT id FROM bib_records WHERE record_id = ? ORDER BY id", (record_id,))
    return [int(r[0]) for r in rows]


def record_pks_by_identifier(tx: Transaction, kind: str, value: str) -> list[int]:
    rows = tx.execute(
        "SELECT record_pk FROM bib_identifiers WHERE kind = ? AND value = ? ORDER BY record_pk",
        (kind, value),
    )
    return [int(r[0]) for r in rows]


def catalogue_databases(tx: Transaction) -> list[str]:
    return [str(r[0]) for r in tx.execute("SELECT DISTINCT database FROM bib_records ORDER BY 1")]


def insert_temporary_record(
    tx: Transaction, database: str, record_id: str, title: str, author: str, bib_json: str
) -> int:
    """A title for a borrowed copy: enough for the desk, SIP2 and notices to name it."""
    return tx.insert(
        "INSERT INTO bib_records (database, record_id, format, marc, bib, title, author, digest)"
        " VALUES (?, ?, 'unimarc', ?, ?, ?, ?, ?)",
        (database, record_id, b"", bib_json, title, author, "ill:" + record_id),
    )


def insert_temporary_copy(
    tx: Transaction, barcode: str, record_pk: int, location: str, item_type: str, status: str
) -> int:
    return tx.insert(
        "INSERT INTO items (barcode, record_pk, library, location, call_number, item_type,"
        " status, source) VALUES (?, ?, '', ?, '', ?, ?, 'ill')",
        (barcode, record_pk, location, item_type, status),
    )


def partner_patron(tx: Transaction, barcode: str) -> int | None:
    value = tx.scalar("SELECT id FROM patrons WHERE barcode = ?", (barcode,))
    return int(value) if value is not None else None


def insert_partner_patron(tx: Transaction, barcode: str, name: str, category: str) -> int:
    return tx.insert(
        "INSERT INTO patrons (barcode, name, category) VALUES (?, ?, ?)", (barcode, name, category)
    )


def set_loan_due(tx: Transaction, loan_id: int, due: str) -> None:
    tx.execute("UPDATE loans SET due_at = ? WHERE id = ?", (due, loan_id))


def stats(tx: Transaction, start: str | None, end: str | None) -> list[Row]:
    """(role, partner, status, requests, fees) of the requests made in [start, end)."""
    where, params = [], []
    if start:
        where.append("created_at >= ?")
        params.append(start)
    if end:
        where.append("created_at < ?")
        params.append(end)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return tx.execute(
        "SELECT role, partner, status, count(*), coalesce(sum(fee), 0) FROM ill_requests"
        f"{clause} GROUP BY role, partner, status ORDER BY role, partner, status",
        params,
    )
