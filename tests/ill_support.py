"""Interlibrary loan in tests: libraries that lend and borrow, partner messages, the outbox."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.circulation.ill import InterlibraryLoan
from gateway.circulation.ill_outbox import OutgoingMessage, claim_due, record_delivered
from gateway.circulation.ill_types import (
    Action,
    AgencyId,
    BibliographicInfo,
    Confirmation,
    Header,
    Message,
    PatronInfo,
    Request,
    RequestingAgencyMessage,
)
from gateway.config import IllSettings, settings_from_dict
from gateway.store import Store
from tests.circulation_support import build_library

SHL = "ISIL:CN-SHL"  # Shanghai Library: the lender of the seed
PKU = "ISIL:CN-PKU"  # a Beijing university: the borrower
TSU = "ISIL:CN-TSU"  # another partner
URLS = {
    SHL: "http://shl.example/iso18626",
    PKU: "http://pku.example/iso18626",
    TSU: "http://tsu.example/iso18626",
}


def ill_settings(agency: str, partners: list[str], **values: Any) -> IllSettings:
    return settings_from_dict(
        {
            "ill": {
                "agency_id": agency,
                "partners": [{"agency_id": p, "name": p, "url": URLS[p]} for p in partners],
                **values,
            }
        }
    ).ill


def library_ill(
    store: Store, tmp_path: Path, agency: str, partners: list[str], **values: Any
) -> tuple[Engine, FixedClock, InterlibraryLoan]:
    engine, clock = build_library(store, tmp_path)
    return engine, clock, InterlibraryLoan(engine, ill_settings(agency, partners, **values))


def header(
    request_id: str, *, requester: str = PKU, supplier: str | None = SHL, **kw: Any
) -> Header:
    return Header(
        requesting_agency=AgencyId.parse(requester),
        supplying_agency=AgencyId.parse(supplier) if supplier else None,
        timestamp=datetime(2026, 3, 2, 8, 0).astimezone(),
        requesting_agency_request_id=request_id,
        **kw,
    )


def partner_request(
    request_id: str,
    *,
    record_id: str = "",
    title: str = "",
    author: str = "",
    isbn: str = "",
    requester: str = PKU,
    supplier: str | None = SHL,
) -> Request:
    return Request(
        header=header(request_id, requester=requester, supplier=supplier),
        bibliographic=BibliographicInfo(
            title=title, author=author, supplier_unique_record_id=record_id, isbn=isbn
        ),
        patron=PatronInfo(patron_id="PKU-READER", name="张三"),
    )


def action(
    request_id: str, what: Action, *, number: str = "", requester: str = PKU
) -> RequestingAgencyMessage:
    return RequestingAgencyMessage(
        header(request_id, requester=requester, supplying_agency_request_id=number), what
    )


def deliver(store: Store, now: datetime) -> list[OutgoingMessage]:
    """Every message now due, claimed and recorded delivered (OK), in the order sent; what a
    partner that answers everything would make of the outbox."""
    out: list[OutgoingMessage] = []
    while True:
        batch = claim_due(store, now, "test", timedelta(minutes=5), 100)
        if not batch:
            return out
        for message in batch:
            record_delivered(store, message.id, now, Confirmation.accepted())
        out += batch


def messages(store: Store, now: datetime) -> list[Message]:
    return [m.message for m in deliver(store, now)]
