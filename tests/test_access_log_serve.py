"""The access log of `libgate serve` (issue 18, "Logs"): real SIP2, SRU, Z39.50, portal and
ISO 18626 traffic against one gateway writing JSON lines to a file it rotates; each request
gives exactly one line with channel, account or peer, command, query (searches), outcome and
ms; SIP2 23 and 63 tell a wrong PIN from the right one; no PIN, password or cookie is logged."""

from __future__ import annotations

import http.client
import json
import re
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from gateway.cli import main as libgate
from gateway.z3950_codec import ber
from tests import z3950_support as z
from tests.serve_support import free_port, running_gateway
from tests.sip2_support import ByteSummingClient

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MAX_BYTES = 2000  # small, so the traffic below rotates the file several times
SECRETS = ("kiosk-pw", "1234", "9999", "2345", "wrong-pin-7788")


class Gateway:
    def __init__(self, home: Path, ports: dict[str, int]) -> None:
        self.home = home
        self.ports = ports
        self.log_file = home / "access.log"

    def log_texts(self) -> list[str]:
        """The live file and every rotated one, oldest first."""
        rotated = sorted(
            self.home.glob("access.log.*"), key=lambda p: -int(p.name.rsplit(".", 1)[1])
        )
        return [p.read_text("utf-8") for p in [*rotated, self.log_file]]

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for text in self.log_texts() for line in text.splitlines()]

    def access(self, channel: str) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e.get("channel") == channel]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp("accesslog")
    ports = {name: free_port() for name in ("sip2", "sru", "z3950", "web", "ill")}
    config = home / "libgate.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{home / "library.db"}"

[service]
workers = 1
log_max_bytes = {MAX_BYTES}
log_backups = 50

[notices]
enabled = false

[sip2]
listen = ["tcp:{ports["sip2"]}:interface=127.0.0.1"]

[[sip2.accounts]]
login = "kiosk"
password = "kiosk-pw"
location = "一楼自助借还机"
role = "selfcheck"

[sru]
listen = ["tcp:{ports["sru"]}:interface=127.0.0.1"]

[z3950]
listen = ["tcp:{ports["z3950"]}:interface=127.0.0.1"]

[web]
listen = ["tcp:{ports["web"]}:interface=127.0.0.1"]

[ill]
listen = ["tcp:{ports["ill"]}:interface=127.0.0.1"]
""",
        encoding="utf-8",
    )
    for args in (
        ["init"],
        ["load", "--database", "main", str(FIXTURES / "marc" / "demo_main.iso")],
        ["patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv")],
    ):
        assert libgate(["--config", str(config), *args]) == 0
    # The format and the file come from serve's flags; the rotation from the config.
    flags = ["--log-format", "json", "--log-file", str(home / "access.log")]
    with running_gateway(config, list(ports.values()), serve_args=flags):
        yield Gateway(home, ports)


def now() -> str:
    return datetime.now().strftime("%Y%m%d    %H%M%S")


def test_sip2_lines_tell_a_wrong_pin_from_the_right_one(gateway: Gateway) -> None:
    kiosk = ByteSummingClient(gateway.ports["sip2"])
    try:
        assert kiosk.exchange("9300CNkiosk|COkiosk-pw|CP一楼|") == "941"
        kiosk.exchange(f"23001{now()}AOMAIN|AAP0001|AC|AD1234|")
        kiosk.exchange(f"23001{now()}AOMAIN|AAP0001|AC|AD9999|")
        kiosk.exchange(f"63001{now()}{'          '}AOMAIN|AAP0002|AD2345|BP1|BQ5|")
        kiosk.exchange(f"63001{now()}{'          '}AOMAIN|AAP0002|AD9999|BP1|BQ5|")
        kiosk.exchange(f"23001{now()}AOMAIN|AANOSUCHREADER|AC|AD9999|")
    finally:
        kiosk.socket.close()
    lines = wait_for(gateway, "sip2", 6)  # SIP2 lines are written in batches of 0.1 s
    assert [(e["command"], e["outcome"]) for e in lines] == [
        ("93", "ok"),
        ("23", "ok"),
        ("23", "bad_pin"),
        ("63", "ok"),
        ("63", "bad_pin"),
        ("23", "unknown_patron"),
    ]
    for entry in lines:
        assert entry["account"] == "kiosk" and entry["peer"] == "127.0.0.1"
        assert isinstance(entry["ms"], float | int) and entry["ms"] >= 0


def test_sru_requests_each_give_one_line_with_their_query(gateway: Gateway) -> None:
    asked = [
        "operation=searchRetrieve&version=1.2&query=" + quote('title="历史"'),
        "operation=searchRetrieve&version=1.2&query=" + quote("title=("),  # a syntax error
        "operation=scan&version=1.2&scanClause=title",
        "operation=explain&version=1.2",
    ]
    for query in asked:
        connection = http.client.HTTPConnection("127.0.0.1", gateway.ports["sru"], timeout=10)
        connection.request("GET", f"/main?{query}")
        assert connection.getresponse().status == 200
        connection.close()
    lines = wait_for(gateway, "sru", 4)
    assert [(e["command"], e.get("query")) for e in lines] == [
        ("searchRetrieve", 'title="历史"'),
        ("searchRetrieve", "title=("),
        ("scan", "title"),
        ("explain", None),
    ]
    assert lines[0]["outcome"] == "ok" and lines[1]["outcome"].startswith("diagnostic ")
    assert all(e["peer"] == "127.0.0.1" and "account" not in e for e in lines)


def test_z3950_search_lines_carry_the_query(gateway: Gateway) -> None:
    sock = socket.create_connection(("127.0.0.1", gateway.ports["z3950"]), timeout=10)
    buffer = b""

    def exchange(apdu: bytes) -> str:
        nonlocal buffer
        sock.sendall(apdu)
        while (length := ber.apdu_length(buffer, 1 << 24)) is None:
            buffer += sock.recv(65536)
        answer, buffer = buffer[:length], buffer[length:]
        return z.answer(answer)[0]

    try:
        assert exchange(z.init()) == "initResponse"
        assert exchange(z.search(z.term("历史", use=4))) == "searchResponse"
        both = z.boolean("and", z.term("历史", use=4), z.term("中国 古代", use=1003))
        assert exchange(z.search(both)) == "searchResponse"
    finally:
        sock.close()
    lines = wait_for(gateway, "z3950", 3)
    assert [e["command"] for e in lines] == ["initRequest", "searchRequest", "searchRequest"]
    assert "query" not in lines[0]
    assert lines[1]["query"] == "@attr 1=4 历史"
    assert lines[2]["query"] == '@and @attr 1=4 历史 @attr 1=1003 "中国 古代"'
    assert lines[1]["outcome"] == "ok"


def test_portal_and_ill_requests_each_give_one_line(gateway: Gateway) -> None:
    web = http.client.HTTPConnection("127.0.0.1", gateway.ports["web"], timeout=10)
    web.request("GET", "/search?q=" + quote("历史"))
    web.getresponse().read()
    web.request("GET", "/login")
    form = web.getresponse()
    form.read()
    token = re.search(r"libgate_login=([^;]+)", form.getheader("set-cookie") or "")
    assert token is not None
    body = urlencode({"card": "P0002", "pin": "wrong-pin-7788", "login_token": token.group(1)})
    web.request(
        "POST",
        "/login",
        body=body,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "cookie": f"libgate_login={token.group(1)}",
        },
    )
    web.getresponse().read()
    web.close()
    ill = http.client.HTTPConnection("127.0.0.1", gateway.ports["ill"], timeout=10)
    ill.request("POST", "/iso18626", body=b"<not-iso18626/>", headers={"content-type": "text/xml"})
    ill.getresponse().read()
    ill.close()
    pages = wait_for(gateway, "web", 3)
    assert [(e["command"], e.get("query")) for e in pages] == [
        ("GET /search", "历史"),
        ("GET /login", None),
        ("POST /login", None),
    ]
    (message,) = wait_for(gateway, "ill", 1)
    assert message["outcome"].startswith("error ") and message["peer"] == "127.0.0.1"
    # The cookie's value and the PIN stay out of every line, access or not.
    text = "".join(gateway.log_texts())
    assert token.group(1) not in text


def test_the_file_rotates_at_its_size_and_holds_no_secret(gateway: Gateway) -> None:
    # Runs last (pytest keeps a module's order): the traffic above has filled several files.
    texts = gateway.log_texts()
    assert len(texts) >= 3, [len(t) for t in texts]
    assert all(len(t.encode()) <= MAX_BYTES for t in texts)
    text = "".join(texts)
    for secret in SECRETS:
        assert secret not in text, secret
    assert "libgate_login=" not in text and "libgate_session=" not in text


def wait_for(gateway: Gateway, channel: str, count: int) -> list[dict[str, Any]]:
    """The channel's access lines once `count` are written (SIP2's come in batches)."""
    import time

    deadline = time.monotonic() + 5
    while len(lines := gateway.access(channel)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(lines) == count, lines
    return lines
