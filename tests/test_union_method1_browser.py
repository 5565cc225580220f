"""The seed's "method 1" in a real browser, end to end (issue 16's "done when"): a reader of
北京大学 (ISIL:CN-PKU) logs in to the portal, searches several catalogues at once on the union
tab, sees the merged work with the libraries holding it while a silent library is still being
awaited and a closed one has failed, requests it through ILL from the record, chooses the
lender, and sends it; the chosen lender, a real `libgate serve` (上海图书馆, ISIL:CN-SHL),
receives the ISO 18626 request pre-filled from the record and agrees to supply it.

Two real gateways: the lender serves its catalogue over Z39.50 (OPAC records: copies and their
circulation) and SRU, and takes ILL requests; the borrower runs the portal and union search.
Debian's chromium is driven by Playwright."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser_support import EN, P0001, P0001_EMAIL, launch, log_in
from tests.ill_serve_support import (
    PKU,
    SHL,
    lender_and_borrower,
    lender_requests,
    until,
    until_state,
)
from tests.serve_support import free_port

pytestmark = pytest.mark.slow

TJL = "ISIL:CN-TJL"
WORK = "剑桥中国明代史"
WAIT_MS = 15_000  # waiting for an element: generous for a loaded machine; nothing is timed
SILENT_SECONDS = 8


@dataclass
class Libraries:
    lender: Path
    borrower: Path
    portal: str


@pytest.fixture(scope="module")
def libraries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Libraries]:
    web, closed = free_port(), free_port()
    silent = socket.socket()  # accepts connections (the kernel does) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    two = lender_and_borrower(
        tmp_path_factory.mktemp("method1"),
        [(TJL, "天津图书馆", f"http://127.0.0.1:{closed}/iso18626")],
    )
    with two.borrower.open("a", encoding="utf-8") as text:
        # 天津图书馆 is the same catalogue read over SRU under another agency: two libraries
        # hold the work, and the reader chooses which to ask.
        text.write(
            f"""
[web]
listen = ["tcp:{web}:interface=127.0.0.1"]
timezone = "Asia/Shanghai"

[union]
timeout = 30

[[union.targets]]
name = "上海图书馆"
url = "z3950:127.0.0.1:{two.lender_z3950}/main"
agency_id = "{SHL}"
syntax = "opac"
holdings_profile = "libgate"

[[union.targets]]
name = "天津图书馆"
url = "http://127.0.0.1:{two.lender_sru}/main"
agency_id = "{TJL}"
syntax = "opac"

[[union.targets]]
name = "国家图书馆"
url = "z3950:127.0.0.1:{silent.getsockname()[1]}/main"
timeout = {SILENT_SECONDS}

[[union.targets]]
name = "停机的馆"
url = "z3950:127.0.0.1:{closed}/main"
"""
        )
    try:
        with two.serving(web):
            yield Libraries(two.lender, two.borrower, f"http://127.0.0.1:{web}")
    finally:
        silent.close()


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser: Browser = launch(playwright)
        opened = browser.new_context()
        page = opened.new_page()
        page.set_default_timeout(WAIT_MS)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page
        opened.close()
        browser.close()
    assert errors == []


def test_search_several_catalogues_then_request_from_the_chosen_lender(
    page: Page, libraries: Libraries
) -> None:
    page.goto(libraries.portal + "/?lang=en")
    log_in(page, EN, P0001)
    page.get_by_role("link", name="Union search").click()
    page.get_by_label("Search terms").fill("明代")
    page.get_by_role("button", name="Search").click()

    # Merged results with the holding libraries, while one library is still silent and a
    # dead one has failed: they do not spoil it.
    work = page.locator("ol.works > li", has_text=WORK)
    expect(work.locator(".holders")).to_contain_text("上海图书馆 (lends through ILL)")
    expect(work.locator(".holders")).to_contain_text("天津图书馆 (lends through ILL)")
    libraries_region = page.locator("#union-libraries")
    expect(libraries_region.locator("li", has_text="停机的馆")).to_contain_text("Failed")
    expect(libraries_region.locator("li", has_text="国家图书馆")).to_contain_text("Connecting…")

    # The request, pre-filled from the record; the reader asks 上海图书馆 only.
    work.get_by_role("link", name="Request through ILL").click()
    expect(page.get_by_label("Title *")).to_have_value(re.compile("^" + WORK))
    title = page.get_by_label("Title *").input_value()
    author = page.get_by_label("Author", exact=True).input_value()
    assert author
    page.get_by_label("Choice 1").select_option(label="上海图书馆")
    page.get_by_label("Choice 2").select_option(label="Do not ask")
    page.get_by_label("Recipient *").fill("张伟")
    page.get_by_label("Email *").fill(P0001_EMAIL)
    page.get_by_role("button", name="Next: review the request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Review your request")
    expect(page.get_by_role("main")).to_contain_text("上海图书馆")
    expect(page.get_by_role("main")).not_to_contain_text("天津图书馆")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Request sent")
    number = re.search(r"ST\d{8}", page.get_by_role("status").inner_text())
    assert number is not None

    # The chosen lender received it over ISO 18626, pre-filled from the record, and supplies.
    def received() -> dict[str, Any] | None:
        found = [r for r in lender_requests(libraries.lender) if r["partner"] == PKU]
        return found[0] if found else None

    arrived = until(received, "the request at 上海图书馆")
    assert arrived["requesting_agency_request_id"] == number.group(0)
    assert arrived["title"] == title and arrived["author"] == author
    supplied = until_state(libraries.borrower, number.group(0), "will_supply")
    assert supplied["status"] == "WillSupply" and supplied["rota"] == [SHL]

    # My Library shows the request with its lender and the lender's answer.
    page.get_by_role("link", name=EN.my_library, exact=True).click()
    row = page.locator("section#ill").get_by_role("row").filter(has_text=number.group(0))
    expect(row).to_contain_text("上海图书馆")
    expect(row).to_contain_text("The lender will supply it")
