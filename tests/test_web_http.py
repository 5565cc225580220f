"""The portal over real HTTP from `libgate serve`: the headers every page carries, cookie
flags (Secure under TLS), versioned static files, wrong methods, oversized forms, the
connection caps, and logs that never hold a PIN or a session token."""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.conftest import FIXTURES
from tests.serve_support import free_port, running_gateway
from tests.tls_support import self_signed_certificate


def libgate(config: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
        check=True,
        capture_output=True,
    )


class Portal:
    def __init__(self, port: int, tls_port: int, log: Path) -> None:
        self.port = port
        self.tls_port = tls_port
        self.log = log

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        tls: bool = False,
    ) -> http.client.HTTPResponse:
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.tls_port, timeout=10, context=context
            )
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        response.read()
        connection.close()
        return response


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    home = tmp_path_factory.mktemp("web-http")
    key, cert = self_signed_certificate(home)
    port, tls_port = free_port(), free_port()
    config = home / "libgate.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{home / "library.db"}"

[service]
workers = 1

[sip2]
listen = []
[sru]
listen = []
[z3950]
listen = []

[notices]
enabled = false

[web]
listen = [
    "tcp:{port}:interface=127.0.0.1",
    "ssl:{tls_port}:interface=127.0.0.1:privateKey={key}:certKey={cert}",
]
max_request_bytes = 2048
max_connections_per_address = 8
""",
        encoding="utf-8",
    )
    libgate(config, "init")
    libgate(config, "load", "--database", "main", str(FIXTURES / "marc/demo_main.iso"))
    libgate(config, "patrons", "import", str(FIXTURES / "patrons/demo_patrons.csv"))
    with running_gateway(config, [port, tls_port]):
        yield Portal(port, tls_port, config.with_suffix(".log"))


def test_pages_carry_a_strict_policy_and_are_never_cached(portal: Portal) -> None:
    response = portal.request("GET", "/search?q=%E6%98%8E%E4%BB%A3")
    assert response.status == 200
    assert response.getheader("content-type") == "text/html; charset=utf-8"
    policy = response.getheader("content-security-policy") or ""
    assert "default-src 'none'" in policy and "script-src 'self';" in policy
    assert "unsafe" not in policy  # no inline script or style, no eval
    assert "frame-ancestors 'none'" in policy
    assert response.getheader("cache-control") == "no-store"
    assert response.getheader("x-content-type-options") == "nosniff"


def test_static_files_are_versioned_and_cached(portal: Portal) -> None:
    page = http.client.HTTPConnection("127.0.0.1", portal.port, timeout=10)
    page.request("GET", "/")
    html = page.getresponse().read().decode()
    page.close()
    stylesheet = re.search(r'href="(/static/[0-9a-f]{12}/portal\.css)"', html)
    assert stylesheet, html
    response = portal.request("GET", stylesheet.group(1))
    assert response.status == 200
    assert response.getheader("content-type") == "text/css; charset=utf-8"
    assert "immutable" in (response.getheader("cache-control") or "")
    assert portal.request("GET", "/static/000000000000/portal.css").status == 404


def test_login_cookies_are_httponly_lax_and_secure_under_tls(portal: Portal) -> None:
    for tls in (False, True):
        form = portal.request("GET", "/login", tls=tls)
        cookie = form.getheader("set-cookie") or ""
        token = re.search(r"libgate_login=([^;]+)", cookie)
        assert token, cookie
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert ("Secure" in cookie) is tls
        body = urlencode(
            {"card": "P0001", "pin": "1234", "login_token": token.group(1), "next": "/my"}
        ).encode()
        response = portal.request(
            "POST",
            "/login",
            body=body,
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "cookie": f"libgate_login={token.group(1)}",
            },
            tls=tls,
        )
        assert response.status == 303 and response.getheader("location") == "/my"
        cookies = response.getheader("set-cookie") or ""
        session = re.search(r"libgate_session=[^;]+;[^,]*", cookies)
        assert session, cookies
        assert "HttpOnly" in session.group(0) and "SameSite=lax" in session.group(0)
        assert ("Secure" in session.group(0)) is tls


def test_wrong_methods_and_oversized_forms_are_refused(portal: Portal) -> None:
    assert portal.request("DELETE", "/my").status == 405
    assert portal.request("PUT", "/").status == 405
    big = b"card=" + b"x" * 4096
    response = portal.request(
        "POST", "/login", body=big, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 413
    assert portal.request("GET", "/").status == 200  # and the portal still answers


def test_head_answers_without_a_body(portal: Portal) -> None:
    response = portal.request("HEAD", "/advanced")
    assert response.status == 200


def test_connections_past_the_per_address_cap_are_closed(portal: Portal) -> None:
    held = [socket.create_connection(("127.0.0.1", portal.port)) for _ in range(8)]
    try:
        extra = socket.create_connection(("127.0.0.1", portal.port))
        extra.settimeout(5)
        try:
            extra.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = extra.recv(100)
        except ConnectionResetError:
            answer = b""
        assert answer == b""  # closed before any answer
        extra.close()
    finally:
        for connection in held:
            connection.close()
    # The server counts the closes as it reads them: wait until it lets us in again.
    for _ in range(100):
        try:
            if portal.request("GET", "/").status == 200:
                break
        except ConnectionError:
            time.sleep(0.05)
    else:
        raise AssertionError("the portal did not take connections again after the cap")


def test_the_log_holds_no_pin_and_no_session_token(portal: Portal) -> None:
    form = portal.request("GET", "/login")
    token = re.search(r"libgate_login=([^;]+)", form.getheader("set-cookie") or "")
    assert token
    body = urlencode({"card": "P0002", "pin": "wrong-pin-7788", "login_token": token.group(1)})
    response = portal.request(
        "POST",
        "/login",
        body=body.encode(),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "cookie": f"libgate_login={token.group(1)}",
        },
    )
    assert response.status == 401
    log = portal.log.read_text("utf-8")
    assert "web login card='P0002'" in log and "outcome=wrong" in log
    assert "wrong-pin-7788" not in log and "1234" not in log
    assert token.group(1) not in log
    assert "libgate_session=" not in log
