"""`libgate ill …` end to end on the demo catalogue: the seed's copy lent to a partner
(numbered, set aside, shipped, overdue, checked in), a reader's request with its refusals,
list, show and stats. Refusals exit 3 with the engine's reasons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.circulation.clock import SystemClock
from gateway.circulation.engine import Engine
from gateway.circulation.ill import InterlibraryLoan
from gateway.circulation.policy import Policy
from gateway.cli import main
from gateway.config import load_settings
from gateway.store import open_migrated_store
from tests.conftest import FIXTURES
from tests.ill_support import PKU, SHL, URLS, partner_request

OK, REFUSED = 0, 3
SEED_COPY = "54122100517423"  # the seed's 参考外借资料 copy, on the shelf (归还)


@pytest.fixture
def desk(config_file: Path) -> Path:
    with config_file.open("a", encoding="utf-8") as extra:
        extra.write(
            f'\n[ill]\nagency_id = "{SHL}"\nservice_fee = 300\nloan_days = 45\n'
            f'[[ill.partners]]\nagency_id = "{PKU}"\nname = "北京大学图书馆"\nurl = "{URLS[PKU]}"\n'
        )
    config = str(config_file)
    assert main(["--config", config, "load", str(FIXTURES / "marc" / "demo_main.iso")]) == OK
    patrons = str(FIXTURES / "patrons" / "demo_patrons.csv")
    assert main(["--config", config, "patrons", "import", patrons]) == OK
    return config_file


def run_json(config: Path, capsys, *args: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = main(["--config", str(config), *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def partner_asks(config: Path, request_id: str, record_id: str = "", isbn: str = "") -> None:
    """A partner's request, as the ISO 18626 endpoint hands it to the engine."""
    settings = load_settings(str(config))
    with open_migrated_store(settings.storage) as store:
        engine = Engine(store, Policy.from_settings(settings), SystemClock())
        ill = InterlibraryLoan(engine, settings.ill)
        assert ill.on_request(partner_request(request_id, record_id=record_id, isbn=isbn)).ok


def test_lending_the_seeds_copy(desk: Path, capsys) -> None:
    partner_asks(desk, "PKU-2026-1", "SHL000000001")
    code, listed = run_json(desk, capsys, "ill", "list", "--role", "lender")
    assert code == OK
    [request] = listed
    assert request["number"] == "ST00000001" and request["barcode"] == SEED_COPY
    assert (request["status"], request["partner"]) == ("WillSupply", PKU)
    code, status = run_json(desk, capsys, "circ", "status", SEED_COPY)
    [copy] = status["availability"]["copies"]
    assert copy["available"] is False and copy["state"] == "on_loan"
    code, shipped = run_json(desk, capsys, "ill", "ship", "ST00000001")
    assert code == OK and shipped["request"]["status"] == "Loaned" and shipped["request"]["due_at"]
    code, again = run_json(desk, capsys, "ill", "ship", "ST00000001")
    assert code == REFUSED and again["reasons"][0]["code"] == "ill_not_now"
    as_of = "2099-01-01T00:00:00+00:00"
    assert run_json(desk, capsys, "ill", "process", "--as-of", as_of)[1] == {
        "overdue": ["ST00000001"]
    }
    assert run_json(desk, capsys, "ill", "process", "--as-of", as_of)[1] == {"overdue": []}
    assert run_json(desk, capsys, "circ", "checkin", SEED_COPY)[0] == OK
    code, shown = run_json(desk, capsys, "ill", "show", "ST00000001")
    assert code == OK
    assert shown["status"] == "LoanCompleted"
    assert shown["requesting_agency_request_id"] == "PKU-2026-1"
    assert shown["supplying_agency_request_id"] == "ST00000001"
    assert shown["title"].startswith("The Cambridge history of China")
    assert [m["status"] for m in shown["messages"] if m["direction"] == "out"] == [
        "WillSupply",
        "Loaned",
        "Overdue",
        "LoanCompleted",
    ]
    capsys.readouterr()
    assert main(["--config", str(desk), "ill", "show", "ST00000001"]) == OK
    assert "LoanCompleted" in capsys.readouterr().out


def test_unfill_by_staff(desk: Path, capsys) -> None:
    partner_asks(desk, "PKU-2026-2", isbn="0521243327")  # the seed's copy's title, by ISBN-10
    [request] = run_json(desk, capsys, "ill", "list")[1]
    assert (request["status"], request["barcode"]) == ("WillSupply", SEED_COPY)
    code, out = run_json(desk, capsys, "ill", "unfill", "ST00000001", "--reason", "Damaged")
    assert code == REFUSED and out["reasons"][0]["code"] == "ill_reason_unknown"
    code, out = run_json(
        desk, capsys, "ill", "unfill", "ST00000001", "--reason", "PoorCondition", "--note", "破损"
    )
    assert code == OK and out["request"]["status"] == "Unfilled"
    code, status = run_json(desk, capsys, "circ", "status", SEED_COPY)
    assert status["availability"]["copies"][0]["available"] is True
    assert run_json(desk, capsys, "ill", "unfill", "ST00000009", "--reason", "NotHeld")[0] == 3


def test_a_readers_request(desk: Path, capsys) -> None:
    form = [
        "--title",
        "明代政治史",
        "--author",
        "张显清",
        "--publisher",
        "广西师范大学出版社",
        "--year",
        "2003",
        "--language",
        "chi",
        "--type",
        "Book",
        "--lender",
        PKU,
        "--recipient",
        "张伟",
        "--phone",
        "13800000001",
        "--delivery",
        "物流",
        "--reference",
        "ZW-1",
        "--note",
        "课程用书",
    ]
    email = ["--email", "zhangwei@example.edu.cn"]
    code, out = run_json(desk, capsys, "ill", "request", "P0001", *form, *email)
    assert code == REFUSED
    assert [(r["rule"], r["code"]) for r in out["reasons"]] == [("I7", "ill_reader_not_registered")]
    assert run_json(desk, capsys, "ill", "readers", "confirm", "P0001")[0] == OK
    code, out = run_json(desk, capsys, "ill", "request", "P0001", *form)  # no email
    assert code == REFUSED and out["reasons"][0]["code"] == "ill_email_missing"
    assert out["reasons"][0]["zh"] and out["reasons"][0]["en"]
    assert run_json(desk, capsys, "ill", "list")[1] == []  # a refused request stores nothing
    code, out = run_json(desk, capsys, "ill", "request", "P0001", *form, *email)
    assert code == OK
    request = out["request"]
    assert (request["number"], request["role"], request["partner"]) == (
        "ST00000001",
        "borrower",
        PKU,
    )
    assert request["reference"] == "ZW-1" and request["rota"] == [PKU]
    code, fees = run_json(desk, capsys, "circ", "fees", "P0001")
    assert [(f["kind"], f["amount"]) for f in fees["fees"]] == [("processing", 300)]
    code, stats = run_json(
        desk, capsys, "ill", "stats", "--from", "2000-01-01", "--to", "2999-12-31"
    )
    assert code == OK and (stats["requests"], stats["fees"]) == (1, 300)
    assert stats["lines"] == [
        {"role": "borrower", "partner": PKU, "status": "", "requests": 1, "fees": 300}
    ]
    assert run_json(desk, capsys, "ill", "stats", "--to", "2000-01-01")[1]["requests"] == 0
    code, out = run_json(desk, capsys, "ill", "list", "--role", "borrower", "--status", "Loaned")
    assert out == []
    assert run_json(desk, capsys, "ill", "readers", "revoke", "P0001")[0] == OK
    code, out = run_json(desk, capsys, "ill", "request", "P0001", *form, *email)
    assert code == REFUSED
