"""The seed's story between two libraries, each a real `libgate serve` with its own config,
database and ports, talking ISO 18626 over HTTP: a reader of a Beijing university (the
borrower, ISIL:CN-PKU) borrows the Cambridge history of China from Shanghai Library (the
lender, ISIL:CN-SHL).

request (numbered ST…) → WillSupply → ship (Loaned, due date) → receive → the reader picks the
book up over SIP2 at a self-check machine → returns it over SIP2 at the desk → ShippedReturn →
the lender's desk checkin → LoanCompleted at both. On the way, the lent copy is unavailable at
the lender in `libgate search`, SRU and SIP2, and a local reader's hold on the title follows the
rules (refused while the copy is on the shelf, placed while it is out, trapped at the checkin).

The borrower runs on each storage engine (`store_url`); the lender on SQLite.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlencode

import pytest

from gateway.circulation.ill_outbox import pending
from gateway.store import open_store
from tests.conftest import FIXTURES
from tests.ill_serve_support import (
    DESK,
    KIOSK,
    history,
    ill_config,
    run,
    run_json,
    show,
    until,
    until_state,
)
from tests.serve_support import free_port, running_gateway
from tests.sru_support import NS, xml

pytestmark = pytest.mark.slow

Sip2Client = pytest.importorskip("Sip2.sip2", reason="the PyPI sip2 client is a test extra").Sip2
Sip2: TypeAlias = Any  # the client library has no type annotations

SHL, PKU = "ISIL:CN-SHL", "ISIL:CN-PKU"
RECORD = "SHL000000001"  # The Cambridge history of China v.7: one copy, 参考外借资料, 归还
SEED_COPY = "54122100517423"
TITLE = "The Cambridge history of China v.7 The Ming Dynasty, 1368-1644, pt. 1"
NUMBER = "ST00000001"  # the borrower's number and, as it happens, the lender's too
BORROWED = "ILL-" + NUMBER  # the borrower's temporary copy


def sip2_client(port: int, account: tuple[str, str, str], logs: Path) -> Sip2:
    login, password, location = account
    sip = Sip2Client()
    sip.hostName, sip.hostPort = "127.0.0.1", port
    sip.tlsEnable = False
    sip.hostEncoding = "utf-8"
    sip.institutionId, sip.scLocation = "MAIN", location
    sip.logfile_path = str(logs)
    sip.connect()
    answer = sip.sip_login_response(sip.get_response(sip.sip_login_request(login, password)))
    assert answer["fixed"]["Ok"] == "1"
    return sip


def item_information(sip: Sip2, barcode: str) -> dict[str, Any]:
    answer: dict[str, Any] = sip.sip_item_information_response(
        sip.get_response(sip.sip_item_information_request(barcode))
    )
    return answer


def sru_holdings(port: int) -> dict[str, tuple[str | None, str | None]]:
    """barcode → (available, status) in the lender's SRU holdings record of RECORD."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    query = urlencode({"query": f"rec.identifier = {RECORD}", "recordSchema": "holdings"})
    connection.request("GET", f"/main?{query}")
    root = xml(connection.getresponse().read())
    connection.close()
    return {
        str(copy.get("barcode")): (copy.get("available"), copy.findtext("h:status", namespaces=NS))
        for copy in root.iterfind(".//h:holdings/h:copy", NS)
    }


def outbox_empty(store_url: str) -> bool:
    with open_store(store_url) as store:
        return not pending(store)


def searched(config: Path) -> dict[str, Any]:
    code, found = run_json(config, "search", "cambridge history china")
    assert code == 0
    [hit] = found["hits"]
    assert hit["id"] == RECORD
    return dict(hit)


class Library:
    def __init__(self, home: Path, store_url: str, agency: str, sru: bool) -> None:
        self.home = home
        self.store_url = store_url
        self.agency = agency
        self.ill_port, self.sip2_port = free_port(), free_port()
        self.sru_port = free_port() if sru else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ill_port}/iso18626"

    def configure(self, partner: Library, name: str) -> Path:
        self.config = ill_config(
            self.home,
            store_url=self.store_url,
            agency=self.agency,
            ill_port=self.ill_port,
            partners=[(partner.agency, name, partner.url)],
            sip2_port=self.sip2_port,
            sru_port=self.sru_port,
            ill_extra="loan_days = 30",
        )
        return self.config

    @property
    def sru(self) -> int:
        assert self.sru_port is not None
        return self.sru_port

    @property
    def ports(self) -> list[int]:
        return [p for p in (self.ill_port, self.sip2_port, self.sru_port) if p]


@pytest.fixture
def libraries(tmp_path: Path, store_url: str) -> Iterator[tuple[Library, Library]]:
    lender_home, borrower_home = tmp_path / "shl", tmp_path / "pku"
    lender_home.mkdir()
    borrower_home.mkdir()
    lender = Library(lender_home, f"sqlite:///{lender_home / 'shl.db'}", SHL, sru=True)
    borrower = Library(borrower_home, store_url, PKU, sru=False)
    lender.configure(borrower, "北京大学图书馆")
    borrower.configure(lender, "上海图书馆")
    patrons = str(FIXTURES / "patrons" / "demo_patrons.csv")
    for args in (
        ["init"],
        ["load", "--database", "main", str(FIXTURES / "marc" / "demo_main.iso")],
        ["patrons", "import", patrons],
    ):
        assert run(lender.config, *args)[0] == 0
    for args in (["init"], ["patrons", "import", patrons]):
        assert run(borrower.config, *args)[0] == 0
    with (
        running_gateway(lender.config, lender.ports),
        running_gateway(borrower.config, borrower.ports),
    ):
        yield lender, borrower


def test_the_seeds_story_between_two_libraries(
    libraries: tuple[Library, Library], tmp_path: Path
) -> None:
    lender, borrower = libraries
    shl, pku = lender.config, borrower.config

    # The lender's copy is on the shelf, of a lendable type; a local hold is refused (R2).
    code, status = run_json(shl, "circ", "status", SEED_COPY)
    [copy] = status["availability"]["copies"]
    assert (copy["item_type"], copy["status"], copy["available"]) == ("参考外借资料", "归还", True)
    assert searched(shl)["available"] == 1
    assert sru_holdings(lender.sru)[SEED_COPY][0] == "true"
    code, hold = run_json(shl, "circ", "hold", "P0002", RECORD)
    assert code == 3 and hold["reasons"][0]["code"] == "copy_available"

    # The borrower's reader, confirmed for ILL (I7), files the seed's request (I3: ST…).
    assert run(pku, "ill", "readers", "confirm", "P0001")[0] == 0
    code, filed = run_json(
        pku,
        "ill",
        "request",
        "P0001",
        "--title",
        TITLE,
        "--author",
        "Twitchett, Denis Crispin",
        "--isbn",
        "0521243327",
        "--recipient",
        "张伟",
        "--email",
        "zhangwei@example.edu.cn",
        "--delivery",
        "Courier",
        "--reference",
        "PKU-REF-1",
        "--note",
        "物流",
        "--lender",
        SHL,
    )
    assert code == 0, filed
    assert filed["request"]["number"] == NUMBER and filed["request"]["partner"] == SHL

    # The lender decides at once (I1, I6): WillSupply, the copy set aside; the answer arrives.
    asked = until_state(pku, NUMBER, "will_supply")
    assert asked["status"] == "WillSupply" and asked["supplying_agency_request_id"] == NUMBER
    [lent] = run_json(shl, "ill", "list", "--role", "lender")[1]
    assert (lent["number"], lent["status"], lent["partner"]) == (NUMBER, "WillSupply", PKU)
    assert (lent["requesting_agency_request_id"], lent["barcode"]) == (NUMBER, SEED_COPY)
    assert lent["title"] == TITLE

    # The set-aside copy is unavailable at the lender everywhere, and the title holdable.
    assert searched(shl)["available"] == 0
    assert sru_holdings(lender.sru)[SEED_COPY][0] == "false"
    lender_desk = sip2_client(lender.sip2_port, DESK, tmp_path)
    item = item_information(lender_desk, SEED_COPY)
    assert item["fixed"]["CirculationStatus"] == "04", item  # charged (to the partner)
    code, hold = run_json(shl, "circ", "hold", "P0002", RECORD)
    assert code == 0, hold

    # Ship: Loaned with a due date reaches the borrower.
    code, shipped = run_json(shl, "ill", "ship", NUMBER)
    assert code == 0 and shipped["request"]["status"] == "Loaned" and shipped["request"]["due_at"]
    on_way = until_state(pku, NUMBER, "shipped")
    assert on_way["status"] == "Loaned" and on_way["due_at"] == shipped["request"]["due_at"]
    due = datetime.fromisoformat(on_way["due_at"])  # [ill] loan_days = 30 at the lender
    assert (due.date() - datetime.now(due.tzinfo).date()).days in (30, 31)
    assert item_information(lender_desk, SEED_COPY)["fixed"]["CirculationStatus"] == "04"

    # Received: a temporary copy on the borrower's hold shelf for the reader.
    code, received = run_json(pku, "ill", "receive", NUMBER)
    assert code == 0 and received["request"]["barcode"] == BORROWED
    until_state(shl, NUMBER, "loaned")  # Received changes nothing at the lender …
    until(
        lambda: ("in", "Received") in history(show(shl, NUMBER)),
        "Received recorded at the lender",
    )

    # … the reader picks the book up at a self-check machine (SIP2 11), only that reader (R14).
    kiosk = sip2_client(borrower.sip2_port, KIOSK, tmp_path)
    kiosk.patron, kiosk.patronpwd = "P0002", "2345"
    refused = kiosk.sip_checkout_response(kiosk.get_response(kiosk.sip_checkout_request(BORROWED)))
    assert refused["fixed"]["Ok"] == "0"
    kiosk.patron, kiosk.patronpwd = "P0001", "1234"
    out = kiosk.sip_checkout_response(kiosk.get_response(kiosk.sip_checkout_request(BORROWED)))
    assert out["fixed"]["Ok"] == "1", out
    assert out["variable"]["AB"] == [BORROWED] and out["variable"]["AH"][0].strip()

    # Not shipped back while the reader has it; then the reader returns it at the desk (SIP2 09).
    code, early = run_json(pku, "ill", "return", NUMBER)
    assert code == 3 and early["reasons"][0]["code"] == "ill_not_now"
    borrower_desk = sip2_client(borrower.sip2_port, DESK, tmp_path)
    back = borrower_desk.sip_checkin_response(
        borrower_desk.get_response(borrower_desk.sip_checkin_request(BORROWED))
    )
    assert back["fixed"]["Ok"] == "1", back
    assert show(pku, NUMBER)["state"] == "checked_in"

    # ShippedReturn reaches the lender.
    code, returned = run_json(pku, "ill", "return", NUMBER)
    assert code == 0 and returned["request"]["state"] == "returned"
    until_state(shl, NUMBER, "returning")

    # The lender's desk checkin ends the loan (the copy is trapped for the local hold, R6),
    # and LoanCompleted reaches the borrower.
    code, checkin = run_json(shl, "circ", "checkin", SEED_COPY)
    assert code == 0, checkin
    code, status = run_json(shl, "circ", "status", SEED_COPY)
    [copy] = status["availability"]["copies"]
    assert copy["on_hold_shelf"] is True and copy["available"] is False
    assert item_information(lender_desk, SEED_COPY)["fixed"]["CirculationStatus"] == "08"
    done = until_state(pku, NUMBER, "completed")
    assert done["status"] == "LoanCompleted"
    assert history(done) == [
        ("out", "Request"),
        ("in", "WillSupply"),
        ("in", "Loaned"),
        ("out", "Received"),
        ("out", "ShippedReturn"),
        ("in", "LoanCompleted"),
    ]
    at_lender = show(shl, NUMBER)
    assert (at_lender["status"], at_lender["state"]) == ("LoanCompleted", "completed")
    assert history(at_lender) == [
        ("in", "Request"),
        ("out", "WillSupply"),
        ("out", "Loaned"),
        ("in", "Received"),
        ("in", "ShippedReturn"),
        ("out", "LoanCompleted"),
    ]
    # Every message was delivered, each once: nothing is left in either outbox.
    for library in (lender, borrower):
        until(partial(outbox_empty, library.store_url), f"{library.agency}'s outbox empty")
    for sip in (lender_desk, kiosk, borrower_desk):
        sip.disconnect()
