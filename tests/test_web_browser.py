"""The readers' portal in a real browser (issue 15): Debian's chromium, driven by Playwright,
against a real `libgate serve` with the demo catalogue and readers. Controls are found by the
accessible names the issue fixes, so these tests also check that screen readers can find them.

One gateway serves the whole module (the seed's story also runs on PostgreSQL); each test uses
its own titles and a fresh browser context, so the tests do not depend on their order. Desk
actions (lending the copies a hold needs, the checkin that traps a copy) go through the staff
CLI against the same store."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser_support import (
    EN,
    P0001,
    P0001_EMAIL,
    P0002,
    P0003,
    P0004,
    ZH,
    Gateway,
    Words,
    demo_gateway,
    launch,
    log_in,
    no_horizontal_scroll,
    search,
    section,
)
from tests.conftest import _with_search_path, postgres_base_url

# Waiting for a page element: generous, a loaded CI machine is slow, and nothing here is timed.
WAIT_MS = 15_000
PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        opened = launch(playwright)
        yield opened
        opened.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[Gateway]:
    """The module's gateway on SQLite."""
    home = tmp_path_factory.mktemp("portal")
    with demo_gateway(home, f"sqlite:///{home / 'library.db'}") as running:
        yield running


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def gateway_on_each_engine(request, tmp_path_factory) -> Iterator[Gateway]:
    """The module's SQLite gateway, and one on PostgreSQL (a fresh schema)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("gateway")
        return
    admin = request.getfixturevalue("postgres_admin")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin.execute(f'CREATE SCHEMA "{schema}"')
    base = postgres_base_url()
    assert base is not None
    url = _with_search_path(base, schema)
    try:
        with demo_gateway(tmp_path_factory.mktemp("portal_pg"), url) as running:
            yield running
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


# Console errors a test expects on its page (a refusal page answered 403).
EXPECTED_ERRORS: dict[Page, list[str]] = {}


def new_page(browser: Browser, **context: object) -> Iterator[Page]:
    """A page in a fresh context (no cookies). The console must stay free of errors: a
    stylesheet or script the Content-Security-Policy blocked would show there."""
    opened = browser.new_context(**context)  # type: ignore[arg-type]
    page = opened.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on(
        "console", lambda m: errors.append(f"{m.text} {m.location}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page
    finally:
        opened.close()
    expected = EXPECTED_ERRORS.pop(page, [])
    assert [e for e in errors if not any(text in e for text in expected)] == []


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    yield from new_page(browser)


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    yield from new_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)


def start(page: Page, gateway: Gateway, words: Words, path: str = "/") -> None:
    """Open `path`; English is chosen by the switch parameter and kept by its cookie."""
    separator = "&" if "?" in path else "?"
    page.goto(gateway.url + path + (f"{separator}lang=en" if words is EN else ""))


def seed_story(
    page: Page,
    gateway: Gateway,
    words: Words,
    terms: str,
    title: str,
    record: str,
    each_page: Callable[[Page], None] = lambda page: None,
    **where: str,
) -> None:
    """The seed's reservation guide step by step: log in to My Library (card information
    shows the maximum holds), search, open the record, 预约申请 (the pickup desk is shown
    before confirming), tick the hold box, confirm, read the email note, find the hold under
    预约信息, cancel it, and it is gone; then log out. `each_page` checks every page on the
    way."""
    start(page, gateway, words, where.get("home", "/"))
    each_page(page)
    log_in(page, words, P0001)
    each_page(page)
    card = section(page, "card")
    expect(card.get_by_role("heading", name=words.card_heading)).to_be_visible()
    expect(card).to_contain_text(words.max_holds)

    page.get_by_role("link", name=words.search_link, exact=True).click()
    if "tab" in where:
        page.get_by_role("navigation", name=where["tab_list"]).get_by_role(
            "link", name=where["tab"]
        ).click()
    search(page, words, terms)
    each_page(page)
    page.get_by_role("link", name=title).first.click()
    expect(page).to_have_url(re.compile(re.escape(f"/record/{record}") + "$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(title)
    each_page(page)
    page.get_by_role("button", name=words.place_hold, exact=True).click()

    expect(page.get_by_role("main")).to_contain_text(words.pickup)
    each_page(page)
    page.get_by_label(words.hold_box).check()
    page.get_by_role("button", name=words.confirm_hold, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(words.hold_placed)
    note = page.get_by_role("status")
    expect(note).to_contain_text(words.email_note)
    expect(note).to_contain_text(P0001_EMAIL)
    each_page(page)

    page.get_by_role("link", name=words.my_library, exact=True).click()
    holds = section(page, "holds")
    expect(holds.get_by_role("heading", name=words.holds_heading, exact=True)).to_be_visible()
    row = holds.get_by_role("row").filter(has_text=title)
    expect(row).to_have_count(1)
    each_page(page)
    row.get_by_role("button", name=words.cancel_hold, exact=True).click()
    expect(page.get_by_role("status")).to_contain_text(words.cancelled)
    expect(section(page, "holds")).not_to_contain_text(title)

    page.get_by_role("button", name=words.log_out, exact=True).click()
    page.get_by_role("link", name=words.my_library, exact=True).click()
    expect(page.get_by_role("button", name=words.log_in, exact=True)).to_be_visible()


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is (the full report of
    any is printed, so a failing run shows what to fix)."""
    results = Axe().run(page)
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] in ("serious", "critical"):
            targets = "; ".join(", ".join(node["target"]) for node in violation["nodes"])
            found.append(f"{page.url}: {violation['id']} ({violation['impact']}): {targets}")
    if found:
        print(results.generate_report())
    return found


# --- 1. the seed's story, in Chinese and in English, on both engines --------------------------


@pytest.mark.parametrize(
    ("words", "record", "copies", "terms", "title"),
    [
        # 红楼梦: both copies lent at the desk
        (ZH, "SHL000000003", ("54122100600021", "54122100600022"), "红楼梦", "红楼梦"),
        # 剑桥中国明代史: two copies lent, the third marked 借出 by the old system
        (
            EN,
            "SHL000000002",
            ("54122100600011", "54122100600013"),
            "剑桥中国明代史",
            "剑桥中国明代史",
        ),
    ],
    ids=["zh", "en"],
)
def test_seed_story_log_in_search_hold_see_it_and_cancel(
    page: Page,
    gateway_on_each_engine: Gateway,
    words: Words,
    record: str,
    copies: tuple[str, ...],
    terms: str,
    title: str,
) -> None:
    gateway = gateway_on_each_engine
    gateway.lend(P0004[0], *copies)
    seed_story(page, gateway, words, terms, title, f"main/{record}")
    assert [h for h in gateway.holds_of(P0001[0]) if h["title"].startswith(title)] == []


# --- 2. R2: a copy on the shelf ---------------------------------------------------------------


def test_hold_on_a_title_with_a_copy_on_the_shelf_is_refused(page: Page, gateway: Gateway) -> None:
    start(page, gateway, EN)
    log_in(page, EN, P0001)
    page.goto(gateway.url + "/record/main/SHL000000005")  # 万历十五年, both copies in
    page.get_by_role("button", name=EN.place_hold, exact=True).click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The hold cannot be placed")
    expect(alert).to_contain_text("A copy of this title is on the shelf: borrow it directly")
    expect(page.get_by_role("button", name=EN.confirm_hold)).to_have_count(0)
    expect(page.get_by_label(EN.hold_box)).to_have_count(0)
    assert not [h for h in gateway.holds_of(P0001[0]) if h["title"] == "万历十五年"]


# --- 3. a desk checkin traps the copy: 预约到书信息 with the deadline ----------------------------


def test_desk_checkin_traps_the_copy_and_it_shows_under_arrived_holds(
    page: Page, gateway: Gateway
) -> None:
    gateway.lend(P0003[0], "54122100600051")  # 傲慢与偏见, its one copy
    start(page, gateway, ZH)
    log_in(page, ZH, P0001)
    page.goto(gateway.url + "/record/main/SHL000000006/hold")
    page.get_by_label(ZH.hold_box).check()
    page.get_by_role("button", name=ZH.confirm_hold, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(ZH.hold_placed)

    returned = gateway.cli("circ", "checkin", "54122100600051")
    assert returned["trapped_for"]["barcode"] == P0001[0], returned
    deadline = datetime.fromisoformat(returned["hold"]["pickup_deadline"].replace("Z", "+00:00"))
    shown = deadline.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")

    page.get_by_role("link", name=ZH.my_library, exact=True).click()
    arrived = section(page, "arrived")
    expect(arrived.get_by_role("heading", name=ZH.arrived_heading)).to_be_visible()
    row = arrived.get_by_role("row").filter(has_text="傲慢与偏见")
    expect(row).to_contain_text(shown)  # 保留截止
    expect(row).to_contain_text("三楼借书处")  # the copy's desk
    expect(row).to_contain_text("54122100600051")
    expect(section(page, "holds")).not_to_contain_text("傲慢与偏见")


# --- 4. renew, and R5 explained -----------------------------------------------------------------


def test_renew_and_the_refusal_when_another_reader_holds_the_title(
    page: Page, gateway: Gateway
) -> None:
    # The Cambridge history (its one copy) and 硝子戸の中, which 李娜 then reserves.
    gateway.lend(P0001[0], "54122100517423", "54130000000103")
    gateway.cli("circ", "hold", "--database", "japanese", P0002[0], "LGJR00000003")
    due = {loan["item"]: loan["due_at"] for loan in gateway.loans_of(P0001[0])}

    start(page, gateway, EN)
    log_in(page, EN, P0001)
    loans = section(page, "loans")
    loans.get_by_role("row").filter(has_text="Cambridge history").get_by_role(
        "button", name=EN.renew, exact=True
    ).click()
    expect(page.get_by_role("status")).to_contain_text("is renewed: now due")

    section(page, "loans").get_by_role("row").filter(has_text="硝子戸の中").get_by_role(
        "button", name=EN.renew, exact=True
    ).click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("硝子戸の中")
    expect(alert).to_contain_text("cannot be renewed")
    expect(alert).to_contain_text("Another reader has reserved this book")

    after = {loan["item"]: loan["due_at"] for loan in gateway.loans_of(P0001[0])}
    assert after["54122100517423"] > due["54122100517423"]
    assert after["54130000000103"] == due["54130000000103"]


# --- 5. the ILL form -----------------------------------------------------------------------------


def test_ill_form_review_send_and_see_the_number_in_my_library(
    page: Page, gateway: Gateway
) -> None:
    start(page, gateway, EN)
    log_in(page, EN, P0001)
    section(page, "ill").get_by_role("link", name="New interlibrary loan request").click()
    page.get_by_label("Title *").fill("明代政治史")
    page.get_by_label("Author", exact=True).fill("张显清")
    page.get_by_label("Lender").select_option("ISIL:CN-PKU")
    page.get_by_label("Recipient *").fill("张伟")
    page.get_by_label("Email *").fill(P0001_EMAIL)
    page.get_by_role("button", name="Next: review the request").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Review your request")
    expect(page.get_by_role("main")).to_contain_text("明代政治史")
    expect(page.get_by_role("main")).to_contain_text("北京大学图书馆")
    page.get_by_role("button", name="Send request").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Request sent")
    status = page.get_by_role("status")
    expect(status).to_contain_text(re.compile(r"ST\d{8}"))
    number = re.search(r"ST\d{8}", status.inner_text())
    assert number is not None

    page.get_by_role("link", name=EN.my_library, exact=True).click()
    row = section(page, "ill").get_by_role("row").filter(has_text=number.group(0))
    expect(row).to_contain_text("明代政治史")
    expect(row).to_contain_text("北京大学图书馆")


# --- 6. the language switch ----------------------------------------------------------------------


def test_language_switch_turns_english_and_stays(page: Page, gateway: Gateway) -> None:
    page.goto(gateway.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.get_by_role("heading", level=1)).to_have_text("书目检索")
    page.get_by_role("link", name="Switch to English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Search")
    # The next page, reached by a plain link, is English too: the choice is remembered.
    page.get_by_role("link", name="Advanced search", exact=True).click()
    assert "lang=" not in page.url
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Advanced search")
    page.get_by_role("link", name=EN.my_library, exact=True).click()
    expect(page.get_by_role("button", name=EN.log_in, exact=True)).to_be_visible()
    # And back.
    page.get_by_role("link", name="切换到中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    page.get_by_role("link", name=ZH.search_link, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("书目检索")


def test_japanese_tab_shows_japanese_titles_without_mojibake(page: Page, gateway: Gateway) -> None:
    page.goto(gateway.url + "/")
    page.get_by_role("navigation", name="书目库").get_by_role("link", name="日文书目").click()
    search(page, ZH, "吾輩は猫である")
    link = page.get_by_role("link", name="吾輩は猫である")
    expect(link).to_have_attribute("lang", "ja")
    expect(link).to_have_text("吾輩は猫である")
    assert "\ufffd" not in page.locator("main").inner_text()
    link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("吾輩は猫である")
    expect(page.get_by_role("heading", level=1)).to_have_attribute("lang", "ja")


# --- 7. a phone ----------------------------------------------------------------------------------


def test_phone_pages_have_no_horizontal_scrolling(phone: Page, gateway: Gateway) -> None:
    """Home, results, a record with its holdings table, and My Library at 360 px: nothing
    scrolls sideways, and axe-core finds nothing serious in the phone layout either."""
    found: list[str] = []
    phone.goto(gateway.url + "/m/")
    assert phone.url.rstrip("/") == gateway.url  # /m/ leads to the one responsive portal
    assert no_horizontal_scroll(phone), "home"
    search(phone, ZH, "明代")
    expect(phone.locator("ol.results > li").first).to_be_visible()
    assert no_horizontal_scroll(phone), "results"
    found += serious_violations(phone)
    phone.goto(gateway.url + "/record/main/SHL000000002")  # six holdings columns, three copies
    assert no_horizontal_scroll(phone), "record"
    found += serious_violations(phone)
    log_in(phone, ZH, P0001)
    assert no_horizontal_scroll(phone), "My Library"
    found += serious_violations(phone)
    phone.goto(gateway.url + "/my?lang=en")
    assert no_horizontal_scroll(phone), "My Library in English"
    assert found == [], "\n".join(found)


def fits_the_phone(page: Page) -> None:
    assert no_horizontal_scroll(page), f"{page.url} scrolls sideways at 360 px"


def test_phone_seed_story_through_m(phone: Page, gateway: Gateway) -> None:
    gateway.lend(P0004[0], "54130000000102")  # こころ, its one copy
    seed_story(
        phone,
        gateway,
        ZH,
        "こころ",
        "こころ",
        "japanese/LGJR00000002",
        fits_the_phone,
        home="/m/",
        tab_list="书目库",
        tab="日文书目",
    )


# --- 8. axe-core -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def busy_reader(gateway: Gateway) -> tuple[str, str]:
    """王芳 (P0003) with a loan, a hold and a fee; 羅生門 has its one copy out."""
    gateway.lend(P0003[0], "54130000000104")  # 坊っちゃん
    gateway.lend(P0004[0], "54130000000105", "54130000000109")  # 図書館情報学概論, 羅生門
    gateway.cli("circ", "hold", "--database", "japanese", P0003[0], "LGJR00000005")
    gateway.cli(
        "circ", "fee", "add", "--kind", "overdue", "--description", "超期", P0003[0], "2.50"
    )
    return P0003


@pytest.mark.parametrize("words", [ZH, EN], ids=["zh", "en"])
def test_axe_finds_no_serious_violations(
    page: Page, gateway: Gateway, busy_reader: tuple[str, str], words: Words
) -> None:
    reader = busy_reader
    found: list[str] = []
    start(page, gateway, words)
    found += serious_violations(page)  # home
    search(page, words, "明代")
    found += serious_violations(page)  # results
    page.goto(gateway.url + "/record/main/SHL000000002")
    found += serious_violations(page)  # record
    page.goto(gateway.url + "/login")
    found += serious_violations(page)  # login
    log_in(page, words, reader)
    for name in ("loans", "holds", "fees"):
        expect(section(page, name).get_by_role("table")).to_be_visible()
    found += serious_violations(page)  # My Library
    page.goto(gateway.url + "/record/japanese/LGJR00000009/hold")  # 羅生門, its copy lent
    expect(page.get_by_role("button", name=words.confirm_hold, exact=True)).to_be_visible()
    found += serious_violations(page)  # hold confirmation
    page.goto(gateway.url + "/my/ill/new")
    found += serious_violations(page)  # the ILL form
    page.goto(gateway.url + "/advanced")
    found += serious_violations(page)
    page.goto(gateway.url + "/browse")
    found += serious_violations(page)
    assert found == [], "\n".join(found)


# --- 9. CSRF -------------------------------------------------------------------------------------


def test_a_form_with_a_forged_csrf_value_is_refused_and_changes_nothing(
    page: Page, gateway: Gateway
) -> None:
    gateway.lend(P0004[0], "54130000000110")  # 雪国, its one copy
    start(page, gateway, EN)
    log_in(page, EN, P0002)
    page.goto(gateway.url + "/record/japanese/LGJR00000010/hold")
    page.get_by_label(EN.hold_box).check()
    page.evaluate(
        "document.querySelectorAll('main form input[name=csrf]')"
        ".forEach(input => { input.value = 'forged-' + input.value.slice(7); })"
    )
    EXPECTED_ERRORS[page] = ["status of 403"]
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name=EN.confirm_hold, exact=True).click()
    assert posted.value.status == 403
    expect(page.get_by_role("main")).to_contain_text("did not come from this site")
    assert not [h for h in gateway.holds_of(P0002[0]) if h["title"] == "雪国"]
    page.goto(gateway.url + "/my")
    expect(section(page, "holds")).not_to_contain_text("雪国")

    # The same form, untouched, is accepted: the refusal was the forged value alone.
    page.goto(gateway.url + "/record/japanese/LGJR00000010/hold")
    page.get_by_label(EN.hold_box).check()
    page.get_by_role("button", name=EN.confirm_hold, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(EN.hold_placed)
    assert [h for h in gateway.holds_of(P0002[0]) if h["title"] == "雪国"]


# --- 10. another reader's hold id ------------------------------------------------------------------


def test_cancelling_another_readers_hold_is_refused(page: Page, gateway: Gateway) -> None:
    gateway.lend(P0004[0], "54130000000111")  # 人間失格, its one copy
    placed = gateway.cli("circ", "hold", "--database", "japanese", P0002[0], "LGJR00000011")
    hold_id = placed["hold"]["id"]

    start(page, gateway, EN)
    log_in(page, EN, P0001)
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    assert csrf
    response = page.request.post(f"{gateway.url}/my/holds/{hold_id}/cancel", form={"csrf": csrf})
    assert response.ok  # the page answers, and says no
    assert "The hold cannot be cancelled" in response.text()
    assert "人間失格" not in response.text()  # the title of another reader's hold is not told

    held = [h for h in gateway.holds_of(P0002[0]) if h["id"] == hold_id]
    assert held and held[0]["state"] == "waiting"
