"""A self-check day driven by a SIP2 client library nobody here wrote (PyPI `sip2`, tzeumer),
against `libgate serve` running as its own process on a real TCP port.

The client's quirks are part of the test: it must be told not to try TLS, it reads each
response with one recv, it sends 65 without a transaction date and 18 blanks as the no-block
due date, and it strips the last six characters of every response as AZ. It sums characters,
not bytes, for its own checksums, while byte-oriented clients sum the encoded bytes: the
server accepts either, so the same desk with a Chinese location (CP) and readers with Chinese
barcodes work from this client and from a byte-summing one (`ByteSummingClient`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

import pytest

from gateway.cli import main as libgate
from tests.serve_support import free_port, running_gateway
from tests.sip2_support import ByteSummingClient, variable_fields
from tests.tls_support import self_signed_certificate

Sip2Client = pytest.importorskip("Sip2.sip2", reason="the PyPI sip2 client is a test extra").Sip2
Sip2: TypeAlias = Any  # the client library has no type annotations

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SINGLE_COPY = "54122100600051"  # SHL000000006 has this one lendable copy
DESK_LOCATION = "一楼借书处"
LOANED_BY_PYPI = "54122100600021"  # lent and returned by the desk tests, one per client kind
LOANED_BY_BYTES = "54122100600022"
# Readers whose barcodes are Chinese (AA), imported beside the demo readers.
CHINESE_READERS = """barcode,name,pin,category,email,phone
读者甲,赵敏,6789,本科生,,
读者乙,钱多多,7890,本科生,,
"""


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tls_files: tuple[Path, Path], tls_port: int
) -> Iterator[int]:
    home = tmp_path_factory.mktemp("sip2day")
    port = free_port()
    key, cert = tls_files
    config = home / "libgate.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{home / "day.db"}"

[service]
workers = 2  # sessions through several workers sharing the port (issue 12)

[sru]
listen = []

[z3950]
listen = []

[sip2]
listen = [
    "tcp:{port}:interface=127.0.0.1",
    "ssl:{tls_port}:interface=127.0.0.1:privateKey={key}:certKey={cert}",
]

[[sip2.accounts]]
login = "kiosk"
password = "kiosk-pw"
location = "一楼自助借还机"
role = "selfcheck"

[[sip2.accounts]]
login = "desk"
password = "desk-pw"
location = "二楼借书处"
role = "desk"

[[sip2.accounts]]
login = "desk-cn"
password = "desk-pw"
location = "{DESK_LOCATION}"
role = "desk"

[[sip2.accounts]]
login = "desk-gb"
password = "desk-pw"
location = "{DESK_LOCATION}"
role = "desk"
encoding = "gb18030"
""",
        encoding="utf-8",
    )
    chinese_readers = home / "chinese_readers.csv"
    chinese_readers.write_text(CHINESE_READERS, encoding="utf-8")
    for args in (
        ["init"],
        ["load", "--database", "main", str(FIXTURES / "marc" / "demo_main.iso")],
        ["patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv")],
        ["patrons", "import", str(chinese_readers)],
    ):
        assert libgate(["--config", str(config), *args]) == 0
    with running_gateway(config, [port, tls_port]):
        yield port
    text = config.with_suffix(".log").read_text(encoding="utf-8")
    for secret in ("kiosk-pw", "desk-pw", "1234", "2345", "6789", "7890"):
        assert f"CO{secret}" not in text and f"AD{secret}" not in text


def client(
    port: int, login: str, password: str, location: str, logs: Path, encoding: str = "utf-8"
) -> Sip2:
    sip = Sip2Client()
    sip.hostName, sip.hostPort = "127.0.0.1", port
    sip.tlsEnable = False  # its default tries TLS first on a plain socket
    sip.hostEncoding = encoding
    sip.institutionId, sip.scLocation = "MAIN", location
    sip.logfile_path = str(logs)
    sip.connect()
    answer = sip.sip_login_response(sip.get_response(sip.sip_login_request(login, password)))
    assert answer["fixed"]["Ok"] == "1"
    return sip


def as_reader(sip: Sip2, barcode: str, pin: str) -> None:
    sip.patron, sip.patronpwd = barcode, pin


def screen(answer: dict[str, dict[str, list[str]]]) -> str:
    return " ".join(answer["variable"].get("AF", []))


def test_a_self_check_day(server: int, tmp_path: Path) -> None:
    kiosk = client(server, "kiosk", "kiosk-pw", "一楼自助借还机", tmp_path)
    desk = client(server, "desk", "desk-pw", "二楼借书处", tmp_path)

    status = kiosk.sip_sc_status_response(kiosk.get_response(kiosk.sip_sc_status_request()))
    assert status["fixed"]["OnlineStatus"] == "Y"
    assert status["variable"]["BX"] == ["Y" * 16]

    as_reader(kiosk, "P0001", "1234")
    info = kiosk.sip_patron_information_response(
        kiosk.get_response(kiosk.sip_patron_information_request("charged"))
    )
    assert info["variable"]["AE"] == ["张伟"] and info["variable"]["CQ"] == ["Y"]
    assert info["fixed"]["ChargedItemsCount"] == "0000"

    out = kiosk.sip_checkout_response(kiosk.get_response(kiosk.sip_checkout_request(SINGLE_COPY)))
    assert out["fixed"]["Ok"] == "1", screen(out)
    assert out["variable"]["AH"][0].strip()

    # Another reader reserves the title from the same kiosk.
    as_reader(kiosk, "P0002", "2345")
    hold = kiosk.sip_hold_response(
        kiosk.get_response(kiosk.sip_hold_request("+", "", 2, SINGLE_COPY, "", "N", ""))
    )
    assert hold["fixed"]["Ok"] == "1", screen(hold)
    assert hold["variable"]["BR"] == ["1"]

    # R5: the first reader's renewal is refused because of the hold.
    as_reader(kiosk, "P0001", "1234")
    renew = kiosk.sip_renew_response(kiosk.get_response(kiosk.sip_renew_request(SINGLE_COPY)))
    assert renew["fixed"]["Ok"] == "0" and "预约" in screen(renew)
    renew_all = kiosk.sip_renew_all_response(kiosk.get_response(kiosk.sip_renew_all_request()))
    assert renew_all["variable"]["BN"] == [SINGLE_COPY]

    # R7: the self-check machine will not take the book back; it sends the reader to the desk.
    back = kiosk.sip_checkin_response(kiosk.get_response(kiosk.sip_checkin_request(SINGLE_COPY)))
    assert back["fixed"]["Ok"] == "0" and back["fixed"]["Alert"] == "Y"
    assert "服务台" in screen(back)

    # R6: at the desk the return traps the copy for the hold's reader.
    trapped = desk.sip_checkin_response(desk.get_response(desk.sip_checkin_request(SINGLE_COPY)))
    assert trapped["fixed"]["Ok"] == "1" and trapped["fixed"]["Alert"] == "Y"
    assert trapped["variable"]["CV"] == ["01"] and trapped["variable"]["CY"] == ["P0002"]
    item = kiosk.sip_item_information_response(
        kiosk.get_response(kiosk.sip_item_information_request(SINGLE_COPY))
    )
    assert item["fixed"]["CirculationStatus"] == "08"

    # R14: only the hold's reader may take it; then the hold is fulfilled.
    refused = kiosk.sip_checkout_response(
        kiosk.get_response(kiosk.sip_checkout_request(SINGLE_COPY))
    )
    assert refused["fixed"]["Ok"] == "0"
    as_reader(kiosk, "P0002", "2345")
    pickup = kiosk.sip_checkout_response(
        kiosk.get_response(kiosk.sip_checkout_request(SINGLE_COPY))
    )
    assert pickup["fixed"]["Ok"] == "1", screen(pickup)

    ended = kiosk.sip_end_patron_session_response(
        kiosk.get_response(kiosk.sip_end_patron_session_request())
    )
    assert ended["fixed"]["EndSession"] == "Y"
    kiosk.disconnect()
    desk.disconnect()


def test_the_client_without_error_detection(server: int, tmp_path: Path) -> None:
    sip = Sip2Client()
    sip.hostName, sip.hostPort = "127.0.0.1", server
    sip.tlsEnable = False
    sip.withCrc = sip.withSeq = False
    sip.institutionId, sip.scLocation, sip.logfile_path = "MAIN", "x", str(tmp_path)
    sip.connect()
    login = sip.sip_login_response(sip.get_response(sip.sip_login_request("kiosk", "kiosk-pw")))
    assert login["fixed"]["Ok"] == "1"
    as_reader(sip, "P0003", "3456")
    status = sip.sip_patron_status_response(sip.get_response(sip.sip_patron_status_request()))
    assert status["variable"]["AE"] == ["王芳"] and status["variable"]["BL"] == ["Y"]
    sip.disconnect()


def test_a_tls_hello_on_the_plain_port_is_refused_cleanly(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(14, 46)) + b"\r")
        assert raw.recv(100) == b"96AZFEF6\r"
        raw.sendall(b"9300CNkiosk|COkiosk-pw|\r")
        assert raw.recv(100) == b"941\r"


# The client builds its context with ssl.PROTOCOL_SSLv23, which Python deprecates: its warning.
@pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning")
def test_the_client_over_tls(
    server: int,
    tls_port: int,
    tls_files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The client verifies the server against the default trust store: trust our certificate.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[1]))
    sip = Sip2Client()
    sip.hostName, sip.hostPort = "127.0.0.1", tls_port
    sip.tlsEnable = True
    sip.institutionId, sip.scLocation, sip.logfile_path = "MAIN", "tls-kiosk", str(tmp_path)
    sip.connect()
    login = sip.sip_login_response(sip.get_response(sip.sip_login_request("kiosk", "kiosk-pw")))
    assert login["fixed"]["Ok"] == "1"
    as_reader(sip, "P0004", "4567")
    info = sip.sip_patron_information_response(
        sip.get_response(sip.sip_patron_information_request("hold"))
    )
    assert info["variable"]["AE"] == ["佐藤花子"] and info["variable"]["CQ"] == ["Y"]
    sip.disconnect()


# --- a desk whose location is Chinese, from both kinds of client ------------------------------

DESK_ACCOUNTS = [("desk-cn", "utf-8"), ("desk-gb", "gb18030")]


@pytest.mark.parametrize(("login", "encoding"), DESK_ACCOUNTS)
def test_the_pypi_client_at_a_desk_whose_location_is_chinese(
    server: int, tmp_path: Path, login: str, encoding: str
) -> None:
    # The client sums characters: CP一楼借书处 and AA读者甲 make its AZ differ from the byte sum.
    desk = client(server, login, "desk-pw", DESK_LOCATION, tmp_path, encoding)
    as_reader(desk, "读者甲", "6789")

    status = desk.sip_patron_status_response(desk.get_response(desk.sip_patron_status_request()))
    assert status["variable"]["AA"] == ["读者甲"] and status["variable"]["AE"] == ["赵敏"]
    assert status["variable"]["BL"] == ["Y"] and status["variable"]["CQ"] == ["Y"]
    info = desk.sip_patron_information_response(
        desk.get_response(desk.sip_patron_information_request("charged"))
    )
    assert info["variable"]["AE"] == ["赵敏"] and info["fixed"]["ChargedItemsCount"] == "0000"

    unknown = desk.sip_item_information_response(
        desk.get_response(desk.sip_item_information_request("图书一号"))
    )
    assert unknown["variable"]["AB"] == ["图书一号"]

    out = desk.sip_checkout_response(desk.get_response(desk.sip_checkout_request(LOANED_BY_PYPI)))
    assert out["fixed"]["Ok"] == "1", screen(out)
    assert out["variable"]["AA"] == ["读者甲"]
    item = desk.sip_item_information_response(
        desk.get_response(desk.sip_item_information_request(LOANED_BY_PYPI))
    )
    assert item["fixed"]["CirculationStatus"] == "04"
    # Its checkin sends the desk's location as AP.
    back = desk.sip_checkin_response(desk.get_response(desk.sip_checkin_request(LOANED_BY_PYPI)))
    assert back["fixed"]["Ok"] == "1", screen(back)
    desk.disconnect()


def now() -> str:
    return datetime.now().strftime("%Y%m%d    %H%M%S")


@pytest.mark.parametrize(("login", "encoding"), DESK_ACCOUNTS)
def test_a_byte_summing_client_at_a_desk_whose_location_is_chinese(
    server: int, login: str, encoding: str
) -> None:
    desk = ByteSummingClient(server, encoding)
    try:
        assert desk.exchange(f"9300CN{login}|COdesk-pw|CP{DESK_LOCATION}|") == "941"

        status = desk.exchange(f"23019{now()}AOMAIN|AA读者乙|AC|AD7890|")
        fields = variable_fields(status, 14 + 3 + 18)
        assert status[:2] == "24" and fields["AA"] == ["读者乙"] and fields["AE"] == ["钱多多"]
        assert fields["BL"] == ["Y"] and fields["CQ"] == ["Y"]
        info = variable_fields(
            desk.exchange(f"63019{now()}{'  Y       '}AOMAIN|AA读者乙|AD7890|BP1|BQ5|"),
            14 + 3 + 18 + 6 * 4,
        )
        assert info["AE"] == ["钱多多"]

        unknown = desk.exchange(f"17{now()}AOMAIN|AB图书一号|")
        assert unknown[:2] == "18" and variable_fields(unknown, 24)["AB"] == ["图书一号"]

        out = desk.exchange(f"11NN{now()}{' ' * 18}AOMAIN|AA读者乙|AB{LOANED_BY_BYTES}|AC|AD7890|")
        assert out[:3] == "121", out
        assert variable_fields(out, 22)["AA"] == ["读者乙"]
        back = desk.exchange(f"09N{now()}{now()}AP{DESK_LOCATION}|AOMAIN|AB{LOANED_BY_BYTES}|AC|")
        assert back[:3] == "101", back
    finally:
        desk.close()
