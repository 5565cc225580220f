"""The issue's end-to-end promise: a checkout made at a self-check machine over SIP2 shows in
the next SRU response. One `libgate serve` with both listeners; a raw SIP2 terminal; SRU over
HTTP; then a checkin puts the copy back on the shelf."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from gateway.cli import main as libgate
from tests.conftest import FIXTURES
from tests.serve_support import free_port, running_gateway, sip2_and_sru_config
from tests.sip2_support import sip2_session as sip2  # test_workers.py takes it from here too
from tests.sru_support import NS, xml

RECORD = "SHL000000005"  # 万历十五年: two circulating copies on the shelf
COPY = "54122100600041"


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    home = tmp_path_factory.mktemp("sru_sip2")
    sip2_port, sru_port = free_port(), free_port()
    config = sip2_and_sru_config(home, sip2_port, sru_port)
    for args in (
        ["load", "--database", "main", str(FIXTURES / "marc" / "demo_main.iso")],
        ["patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv")],
    ):
        assert libgate(["--config", str(config), *args]) == 0
    with running_gateway(config, [sip2_port, sru_port]):
        yield sip2_port, sru_port


def holdings(port: int) -> dict[str | None, tuple[str | None, str | None, str | None]]:
    """barcode → (available, status, due date) from the SRU holdings record of RECORD."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    query = urlencode({"query": f"rec.identifier = {RECORD}", "recordSchema": "holdings"})
    connection.request("GET", f"/main?{query}")
    root = xml(connection.getresponse().read())
    connection.close()
    return {
        copy.get("barcode"): (
            copy.get("available"),
            copy.findtext("h:status", namespaces=NS),
            copy.findtext("h:dueDate", namespaces=NS),
        )
        for copy in root.iterfind(".//h:holdings/h:copy", NS)
    }


def test_a_sip2_checkout_and_checkin_show_in_the_next_sru_response(ports) -> None:
    sip2_port, sru_port = ports
    assert holdings(sru_port)[COPY][:2] == ("true", "归还")
    now = time.strftime("%Y%m%d    %H%M%S")
    login, checkout = sip2(
        sip2_port,
        b"9300CNkiosk|COkiosk-pw|",
        f"11YN{now}{' ' * 18}AOMAIN|AAP0001|AB{COPY}|AC|".encode(),
    )
    assert login.startswith(b"941") and checkout.startswith(b"121"), checkout
    available, status, due = holdings(sru_port)[COPY]
    assert (available, status) == ("false", "借出") and due and len(due) == 10
    _, checkin = sip2(
        sip2_port, b"9300CNkiosk|COkiosk-pw|", f"09N{now}{now}AP|AOMAIN|AB{COPY}|AC|".encode()
    )
    assert checkin.startswith(b"101"), checkin
    assert holdings(sru_port)[COPY] == ("true", "归还", None)
