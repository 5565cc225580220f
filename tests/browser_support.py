"""The readers' portal in a real browser: a `libgate serve` over a small demo library (the
demo catalogue, Japanese tab included, its copies and the demo readers), Debian's chromium
driven by Playwright, the staff CLI for desk actions, and the words each language gives the
controls (the accessible names issue 15 fixes)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, Playwright

from tests.conftest import FIXTURES
from tests.ill_serve_support import ill_config, run
from tests.serve_support import free_port, running_gateway

CHROMIUM = Path("/usr/bin/chromium")
PARTNER = ("ISIL:CN-PKU", "北京大学图书馆")
# The demo readers (fixtures/patrons/demo_patrons.csv): card, PIN, email.
P0001 = ("P0001", "1234")  # 张伟, 本科生, zhangwei@example.edu.cn, registered for ILL
P0002 = ("P0002", "2345")  # 李娜, 研究生
P0003 = ("P0003", "3456")  # 王芳, 教师
P0004 = ("P0004", "4567")  # 佐藤花子, 研究生: borrows copies at the desk so titles can be held
P0001_EMAIL = "zhangwei@example.edu.cn"
LOADS = (
    ("main", "libgate", FIXTURES / "marc" / "demo_main.iso"),
    ("main", "bnu", FIXTURES / "marc" / "real" / "cnmarc" / "bnu_cnmarc_10_utf8.iso"),
    ("japanese", "libgate", FIXTURES / "marc" / "japanese" / "japanese_cnmarc.iso"),
    ("japanese", "libgate", FIXTURES / "marc" / "japanese" / "japanese_readings.iso"),
)


def launch(playwright: Playwright) -> Browser:
    """Debian's chromium. Missing, the browser tests fail (CI installs it; see .ci/run)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser tests need Debian's chromium at {CHROMIUM}:"
            " apt-get install -y --no-install-recommends chromium",
            pytrace=False,
        )
    return playwright.chromium.launch(executable_path=str(CHROMIUM))


@dataclass(frozen=True)
class Gateway:
    """A running `libgate serve`: its portal's address and its config for the staff CLI."""

    url: str
    config: Path

    def cli(self, *args: str) -> Any:
        """`libgate circ …` and friends with --json; the command must succeed."""
        code, text = run(self.config, *args, "--json")
        result = json.loads(text)
        assert code == 0, text
        return result

    def holds_of(self, card: str) -> list[dict[str, Any]]:
        return list(self.cli("circ", "status", card)["holds"])

    def loans_of(self, card: str) -> list[dict[str, Any]]:
        return list(self.cli("circ", "status", card)["loans"])

    def lend(self, card: str, *barcodes: str) -> None:
        """The desk lends these copies to `card` (a title with every copy out can be held)."""
        for barcode in barcodes:
            self.cli("circ", "checkout", card, barcode)


@contextmanager
def demo_gateway(home: Path, store_url: str) -> Iterator[Gateway]:
    """`libgate serve` with the portal and ILL (one partner, at a closed port: its messages wait
    in the outbox) over a library loaded the way `make demo` loads it."""
    web_port, ill_port = free_port(), free_port()
    config = ill_config(
        home,
        store_url=store_url,
        agency="ISIL:CN-SHL",
        ill_port=ill_port,
        partners=[(PARTNER[0], PARTNER[1], "http://127.0.0.1:9/iso18626")],  # discard: closed
    )
    text = config.read_text("utf-8")
    if not store_url.startswith("sqlite"):
        # PostgreSQL's search index would go to var/search/ in the working tree.
        index = (home / "search").as_posix()
        text = text.replace("[storage]\n", f'[storage]\nsearch_index_dir = "{index}"\n', 1)
    text += (
        f'\n[web]\nlisten = ["tcp:{web_port}:interface=127.0.0.1"]\ntimezone = "Asia/Shanghai"\n'
    )
    config.write_text(text, encoding="utf-8")
    steps: list[tuple[str, ...]] = [("init",)]
    steps += [("load", "--database", db, "--profile", p, str(path)) for db, p, path in LOADS]
    steps += [
        ("items", "import", str(FIXTURES / "items" / "demo_items.csv")),
        ("patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv")),
        ("ill", "readers", "confirm", P0001[0]),
    ]
    for step in steps:
        code, out = run(config, *step)
        assert code == 0, (step, out)
    with running_gateway(config, [web_port, ill_port]):
        yield Gateway(f"http://127.0.0.1:{web_port}", config)


# --- the words on the controls, in each language ------------------------------------------


@dataclass(frozen=True)
class Words:
    lang: str
    card: str
    pin: str
    log_in: str
    log_out: str
    my_library: str
    search_link: str
    search_terms: str
    search: str
    place_hold: str
    hold_box: str
    confirm_hold: str
    cancel_hold: str
    renew: str
    card_heading: str
    max_holds: str
    holds_heading: str
    arrived_heading: str
    pickup: str
    hold_placed: str
    email_note: str
    cancelled: str


ZH = Words(
    lang="zh",
    card="读者证号",
    pin="密码",
    log_in="登录",
    log_out="退出",
    my_library="我的图书馆",
    search_link="书目检索",
    search_terms="检索词",
    search="检索",
    place_hold="预约申请",
    hold_box="预约框：我要预约此书",
    confirm_hold="确认预约",
    cancel_hold="取消预约",
    renew="续借",
    card_heading="证件信息",
    max_holds="最大可预约图书",
    holds_heading="预约信息",
    arrived_heading="预约到书信息",
    pickup="取书地：",
    hold_placed="预约成功",
    email_note="我们将发邮件通知您",
    cancelled="已取消",
)
EN = Words(
    lang="en",
    card="Library card number",
    pin="PIN",
    log_in="Log in",
    log_out="Log out",
    my_library="My Library",
    search_link="Search",
    search_terms="Search terms",
    search="Search",
    place_hold="Place hold",
    hold_box="Hold box: I want to place a hold on this book",
    confirm_hold="Confirm hold",
    cancel_hold="Cancel hold",
    renew="Renew",
    card_heading="Card information",
    max_holds="Maximum holds",
    holds_heading="Holds",
    arrived_heading="Arrived holds",
    pickup="Pick up at",
    hold_placed="Hold placed",
    email_note="We will email you",
    cancelled="is cancelled",
)


def log_in(page: Page, words: Words, card: tuple[str, str]) -> None:
    """From any page: My Library, then the login form; ends on My Library."""
    page.get_by_role("link", name=words.my_library, exact=True).click()
    page.get_by_label(words.card, exact=True).fill(card[0])
    page.get_by_label(words.pin, exact=True).fill(card[1])
    page.get_by_role("button", name=words.log_in, exact=True).click()
    page.wait_for_url(re.compile(r"/my$"))


def search(page: Page, words: Words, terms: str) -> None:
    """The basic search form on the page (the home page has one)."""
    page.get_by_label(words.search_terms, exact=True).fill(terms)
    page.get_by_role("button", name=words.search, exact=True).click()
    page.wait_for_url(re.compile(r"/search\?"))


def section(page: Page, name: str) -> Locator:
    """A section of My Library by its id (card, loans, holds, arrived, fees, ill)."""
    return page.locator(f"section#{name}")


def no_horizontal_scroll(page: Page) -> bool:
    return bool(
        page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


__all__ = [
    "CHROMIUM",
    "EN",
    "P0001",
    "P0001_EMAIL",
    "P0002",
    "P0003",
    "P0004",
    "ZH",
    "Gateway",
    "Words",
    "demo_gateway",
    "launch",
    "log_in",
    "no_horizontal_scroll",
    "search",
    "section",
]
