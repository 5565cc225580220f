"""The union search tab in a real browser (Debian's chromium driven by Playwright) against a
real `libgate serve` whose partners are its own Z39.50 and SRU targets, a library that accepts
the connection and never answers, and a closed port. With script, each library's state and the
merged works appear as the libraries answer, while the silent one is still awaited; without
script, the page waits for the whole answer. The console must stay free of errors: a script or
event stream the Content-Security-Policy blocked would show there."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.browser_support import launch
from tests.serve_support import free_port
from tests.union_site_support import union_site

WAIT_MS = 15_000  # waiting for an element: generous for a loaded machine; nothing is timed
SILENT_SECONDS = 6  # the silent library's own deadline: the page must show results before it


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        opened = launch(playwright)
        yield opened
        opened.close()


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    closed = free_port()
    # A library that accepts connections (the kernel completes them) and never says a word.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    site = union_site(
        tmp_path_factory.mktemp("union-browser"),
        30,
        lambda site: (
            f"""
[[union.targets]]
name = "北京大学 Z39.50"
url = "z3950:127.0.0.1:{site.z3950}/main"
[[union.targets]]
name = "上海图书馆 SRU"
url = "http://127.0.0.1:{site.sru}/main"
[[union.targets]]
name = "不回答的馆"
url = "z3950:127.0.0.1:{silent.getsockname()[1]}/main"
timeout = {SILENT_SECONDS}
[[union.targets]]
name = "关闭的馆"
url = "z3950:127.0.0.1:{closed}/main"
"""
        ),
    )
    try:
        with site.serving():
            yield site.portal
    finally:
        silent.close()


def new_page(browser: Browser, **context: object) -> Iterator[Page]:
    opened = browser.new_context(**context)  # type: ignore[arg-type]
    page = opened.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page
    finally:
        opened.close()
    assert errors == []


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    yield from new_page(browser)


@pytest.fixture
def page_without_script(browser: Browser) -> Iterator[Page]:
    yield from new_page(browser, java_script_enabled=False)


def library(page: Page, name: str) -> Locator:
    return page.locator("#union-libraries li", has_text=name)


def test_results_appear_while_a_silent_library_is_still_awaited(page: Page, portal: str) -> None:
    page.goto(portal + "/union?lang=en")
    page.get_by_label("Search terms").fill("明代")
    page.get_by_role("button", name="Search").click()
    works = page.locator("#union-works")
    # The merged work is on the page while the silent library is still being waited for.
    expect(works.get_by_role("heading", name="剑桥中国明代史")).to_be_visible()
    expect(library(page, "北京大学 Z39.50")).to_contain_text("hits")
    expect(library(page, "不回答的馆")).to_contain_text("Connecting…")
    expect(page.get_by_role("status")).to_contain_text("Searching: 3 of 4 libraries")
    holders = works.locator("li", has_text="剑桥中国明代史").locator(".holders")
    expect(holders).to_contain_text("北京大学 Z39.50")
    expect(holders).to_contain_text("上海图书馆 SRU")
    expect(library(page, "关闭的馆")).to_contain_text("Failed")
    # Then its deadline passes and the search ends.
    expect(library(page, "不回答的馆")).to_contain_text(
        "No answer in time", timeout=SILENT_SECONDS * 1000 + WAIT_MS
    )
    expect(page.get_by_role("status")).to_contain_text("2 libraries answered; 2 did not")
    expect(page.locator("#union-live")).to_have_attribute("aria-busy", "false")


def test_a_facet_narrows_the_live_results(page: Page, portal: str) -> None:
    page.goto(portal + "/union?lang=en&q=明代")
    facets = page.get_by_role("complementary", name="Narrow the results")
    year = facets.locator("a[href*='year=']").first
    expect(year).to_be_visible()
    chosen = year.inner_text()
    year.click()
    expect(page.locator("#union-works")).to_contain_text("match the filters chosen")
    for line in page.locator("ol.works > li > p:first-of-type").all_inner_texts():
        assert chosen in line
    expect(facets.locator("a[aria-current='true']")).to_contain_text(chosen)


def test_without_script_the_page_waits_for_the_whole_answer(
    page_without_script: Page, portal: str
) -> None:
    page = page_without_script
    page.goto(portal + "/union?lang=en&q=明代")
    # The page's <noscript> refresh asks again with wait=1: the answer comes when it ends.
    expect(page).to_have_url(re.compile(r"[?&]wait=1"), timeout=WAIT_MS)
    expect(library(page, "不回答的馆")).to_contain_text(
        "No answer in time", timeout=SILENT_SECONDS * 1000 + WAIT_MS
    )
    expect(page.locator("#union-works")).to_contain_text("剑桥中国明代史")
