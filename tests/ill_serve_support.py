"""What the ILL tests against a running `libgate serve` share: a config with [ill] (and SIP2,
SRU when asked), the staff CLI's JSON, waiting for a state with a deadline, and two libraries
(a lender and a borrower) for the union search tests."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gateway.cli import main as libgate
from tests.conftest import FIXTURES
from tests.serve_support import free_port, running_gateway

T = TypeVar("T")

WAIT_SECONDS = 20  # a message crosses in about a second (send_every_seconds = 1)
KIOSK = ("kiosk", "kiosk-pw", "一楼自助借还机")
DESK = ("desk", "desk-pw", "一楼借书处")


def ill_config(
    home: Path,
    *,
    store_url: str,
    agency: str,
    ill_port: int,
    partners: Sequence[tuple[str, str, str]],  # (agency id, name, url)
    sip2_port: int | None = None,
    sru_port: int | None = None,
    ill_extra: str = "",
    z3950_port: int | None = None,
) -> Path:
    """A config for one library: ILL on `ill_port`, one worker, messages sent every second and
    retried after a second, no notices; SIP2 (a kiosk and a desk account), SRU and Z39.50 when
    given."""
    config = home / "libgate.toml"
    sip2 = f'["tcp:{sip2_port}:interface=127.0.0.1"]' if sip2_port else "[]"
    sru = f'["tcp:{sru_port}:interface=127.0.0.1"]' if sru_port else "[]"
    z3950 = f'["tcp:{z3950_port}:interface=127.0.0.1"]' if z3950_port else "[]"
    text = f"""
[storage]
url = "{store_url}"

[service]
workers = 1

[notices]
enabled = false

[sru]
listen = {sru}

[z3950]
listen = {z3950}

[sip2]
listen = {sip2}

[[sip2.accounts]]
login = "{KIOSK[0]}"
password = "{KIOSK[1]}"
location = "{KIOSK[2]}"
role = "selfcheck"

[[sip2.accounts]]
login = "{DESK[0]}"
password = "{DESK[1]}"
location = "{DESK[2]}"
role = "desk"

[ill]
listen = ["tcp:{ill_port}:interface=127.0.0.1"]
agency_id = "{agency}"
send_every_seconds = 1
first_retry_seconds = 1
{ill_extra}
"""
    for agency_id, name, url in partners:
        text += f'\n[[ill.partners]]\nagency_id = "{agency_id}"\nname = "{name}"\nurl = "{url}"\n'
    config.write_text(text, encoding="utf-8")
    return config


def run(config: Path, *args: str) -> tuple[int, str]:
    """`libgate --config CONFIG ARGS…` in this process: its exit code and what it printed."""
    out = io.StringIO()
    with redirect_stdout(out):
        code = libgate(["--config", str(config), *args])
    return code, out.getvalue()


def run_json(config: Path, *args: str) -> tuple[int, Any]:
    code, text = run(config, *args, "--json")
    return code, json.loads(text)


def show(config: Path, number: str) -> dict[str, Any]:
    code, shown = run_json(config, "ill", "show", number)
    assert code == 0, shown
    return dict(shown)


def until(probe: Callable[[], T | None], what: str, seconds: float = WAIT_SECONDS) -> T:
    """Poll `probe` until it gives something true (not None, False or empty) or the deadline
    passes."""
    deadline = time.monotonic() + seconds
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what} (last: {last!r})")


def until_state(
    config: Path, number: str, state: str, seconds: float = WAIT_SECONDS
) -> dict[str, Any]:
    """The request `number` once its state is `state`."""

    def probe() -> dict[str, Any] | None:
        shown = show(config, number)
        return shown if shown["state"] == state else None

    try:
        return until(probe, f"{number} in state {state} at {config}", seconds)
    except AssertionError:
        shown = show(config, number)
        text = json.dumps(shown, ensure_ascii=False)
        raise AssertionError(f"{number} not {state} at {config}: {text}") from None


def history(shown: dict[str, Any]) -> list[tuple[str, str]]:
    """A request's messages as (direction, status or action)."""
    return [(m["direction"], m["status"] or m["action"] or m["kind"]) for m in shown["messages"]]


# --- two libraries: a lender with its catalogue, a borrower that searches it ------------------

SHL, PKU = "ISIL:CN-SHL", "ISIL:CN-PKU"


@dataclass
class LenderAndBorrower:
    """Shanghai Library (the lender: ILL, its catalogue over Z39.50 and SRU, demo readers) and
    北京大学图书馆 (the borrower: ILL, demo readers, P0001 confirmed for ILL). The borrower's
    config is left open for the test's own [web] and [union] sections."""

    lender: Path
    borrower: Path
    lender_ill: int
    borrower_ill: int
    lender_z3950: int
    lender_sru: int

    @contextmanager
    def serving(self, *borrower_ports: int) -> Iterator[None]:
        """Both gateways running; `borrower_ports` are the borrower's extra listeners to wait
        for (e.g. its portal)."""
        with (
            running_gateway(self.lender, [self.lender_ill, self.lender_z3950, self.lender_sru]),
            running_gateway(self.borrower, [self.borrower_ill, *borrower_ports]),
        ):
            yield


def lender_and_borrower(
    home: Path, more_borrower_partners: Sequence[tuple[str, str, str]] = ()
) -> LenderAndBorrower:
    """Both libraries' configs and stores in `home`, loaded and ready to serve."""
    (home / "shl").mkdir()
    (home / "pku").mkdir()
    shl_ill, pku_ill, shl_z3950, shl_sru = free_port(), free_port(), free_port(), free_port()
    lender = ill_config(
        home / "shl",
        store_url=f"sqlite:///{home / 'shl' / 'shl.db'}",
        agency=SHL,
        ill_port=shl_ill,
        partners=[(PKU, "北京大学图书馆", f"http://127.0.0.1:{pku_ill}/iso18626")],
        z3950_port=shl_z3950,
        sru_port=shl_sru,
    )
    borrower = ill_config(
        home / "pku",
        store_url=f"sqlite:///{home / 'pku' / 'pku.db'}",
        agency=PKU,
        ill_port=pku_ill,
        partners=[
            (SHL, "上海图书馆", f"http://127.0.0.1:{shl_ill}/iso18626"),
            *more_borrower_partners,
        ],
    )
    patrons = str(FIXTURES / "patrons" / "demo_patrons.csv")
    for args in (
        ["init"],
        ["load", "--database", "main", str(FIXTURES / "marc" / "demo_main.iso")],
        ["patrons", "import", patrons],
    ):
        assert run(lender, *args)[0] == 0
    for args in (["init"], ["patrons", "import", patrons], ["ill", "readers", "confirm", "P0001"]):
        assert run(borrower, *args)[0] == 0
    return LenderAndBorrower(lender, borrower, shl_ill, pku_ill, shl_z3950, shl_sru)


def lender_requests(config: Path) -> list[dict[str, Any]]:
    """The requests a library holds as lender."""
    code, found = run_json(config, "ill", "list", "--role", "lender")
    assert code == 0
    return list(found)
