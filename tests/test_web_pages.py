"""The readers' portal without a browser, on both storage engines: search, record pages,
login, the seed's hold story and each refusal, My Library, renewals, the ILL form, and the
security rules (CSRF, one's own account only, sessions that end)."""

from __future__ import annotations

import re

import pytest

from gateway.catalogue.loading.loader import Loader, LoadOptions
from gateway.catalogue.query import QueryTooComplex
from gateway.circulation.states import Channel
from gateway.config import BUILTIN_PROFILES, DatabaseSettings
from gateway.cql.free_text import words_in
from tests.support import cnmarc, iso
from tests.web_support import Client, Library, build_portal
from web.http import PageRequest, parse_cookies


@pytest.fixture
def library(store, tmp_path) -> Library:
    return build_portal(store, tmp_path)


def reader(library: Library, card: str) -> Client:
    client = Client(library.portal)
    page = client.log_in(card)
    assert page.status == 200, page.text
    return client


# --- search -------------------------------------------------------------------------------------


def test_free_text_search_lists_titles_with_live_availability(library: Library) -> None:
    client = Client(library.portal)
    page = client.get("/search", q="书名T-TWO", lang="en")
    assert page.status == 200
    assert "书名T-TWO" in page.text
    assert "2 of 2 available" in page.text
    library.engine.checkout("B", "W1")
    library.engine.checkout("D", "W2")
    page = client.get("/search", q="书名T-TWO")
    assert "2 of 2 available" not in page.text
    due = library.engine.item_info("W1").due_at
    assert due is not None
    assert re.search(r"On loan, due \d{4}-\d\d-\d\d", page.text), page.text


def test_library_use_only_title_says_so(library: Library) -> None:
    page = Client(library.portal).get("/search", q="书名T-READ", lang="en")
    assert "In library use only" in page.text


def test_a_query_that_cannot_run_gets_a_friendly_message(library: Library) -> None:
    client = Client(library.portal)
    page = client.get("/search", q="title=")
    assert page.status == 400
    assert "检索式有误" in page.text
    page = client.get("/search", q="title=", lang="en")
    assert "could not be read" in page.text
    assert "Traceback" not in page.text


def test_search_terms_are_escaped(library: Library) -> None:
    page = Client(library.portal).get("/search", q="<script>alert(1)</script>")
    assert "<script>alert" not in page.html
    assert "&lt;script&gt;" in page.html


def test_advanced_search_joins_fields_and_never_shows_cql(library: Library) -> None:
    client = Client(library.portal)
    page = client.get(
        "/advanced", f1="title", t1="书名", o2="not", f2="title", t2="T-ONE", lang="en"
    )
    assert page.status == 200
    assert "书名T-TWO" in page.text and "书名T-ONE" not in page.text
    assert "title=" not in page.text and " not " not in page.text.lower().replace("not found", "")


def test_sort_and_page_through_results(library: Library) -> None:
    client = Client(library.portal)
    first = client.get("/search", q="书名", sort="title", size="10", lang="en")
    titles = re.findall(r"书名T-[A-Z]+", first.text)
    assert titles[:5] == sorted(titles[:5])
    small = client.get("/search", q="书名", sort="title", size="2")
    assert small.status == 200
    # The page size is one of the offered ones; an odd one falls back to the default.
    assert "Page 1 of" in small.text or "第 1 页" in small.text


def test_browse_lists_titles_and_links_to_a_search(library: Library) -> None:
    page = Client(library.portal).get("/browse", list="title", **{"from": "书名T-O"})
    assert page.status == 200
    assert page.text.index("书名T-ONE") < page.text.index("书名T-READ")


def test_record_page_has_the_seed_holdings_columns(library: Library) -> None:
    library.engine.checkout("B", "M1")
    page = Client(library.portal).get("/record/main/T-MING")
    assert page.status == 200
    for column in ("馆址", "馆藏地", "索书号", "状态", "馆藏类型", "馆藏条码"):
        assert f">{column}</th>" in page.html
    assert "上海图书馆" in page.text  # 995 $b: the copy's library
    assert "M1" in page.text and "借出" in page.text and "应还日期" in page.text
    assert "在架可借" in page.text  # M2


def test_unknown_record_is_a_404_page(library: Library) -> None:
    page = Client(library.portal).get("/record/main/NOPE")
    assert page.status == 404
    assert "没有找到这条书目" in page.text


# --- login --------------------------------------------------------------------------------------


def test_login_with_a_wrong_pin_is_refused_without_a_session(library: Library) -> None:
    client = Client(library.portal)
    page = client.log_in("A", "9999")
    assert page.status == 401
    assert "读者证号或密码不正确" in page.text
    assert "libgate_session" not in client.cookies
    assert client.get("/my").reply.status == 200  # the login page again
    assert "登录我的图书馆" in client.get("/my").text


def test_login_without_the_form_token_is_refused(library: Library) -> None:
    client = Client(library.portal)
    page = client.post("/login", card="A", pin="0000", login_token="forged-token-123456789")
    assert page.status == 403
    page = client.post("/login", card="A", pin="0000", login_token="伪造的令牌")
    assert page.status == 403
    assert "libgate_session" not in client.cookies


def test_login_rotates_the_session_and_logout_ends_it(library: Library) -> None:
    client = Client(library.portal)
    client.log_in("A")
    first = client.cookies["libgate_session"]
    # Logging in again (the form posted from another tab) gets a new token; the old one ends.
    client.cookies["libgate_login"] = "t" * 24
    client.post("/login", card="A", pin="0000", login_token="t" * 24)
    second = client.cookies["libgate_session"]
    assert first != second
    stale = Client(library.portal, cookies={"libgate_session": first})
    assert "登录我的图书馆" in stale.get("/my").text
    refused = client.post("/logout", csrf="forged")
    assert refused.status == 403 and "libgate_session" in client.cookies
    csrf = client.csrf()
    out = client.post("/logout", csrf=csrf)
    assert "您已退出" in out.text
    assert "libgate_session" not in client.cookies
    replay = Client(library.portal, cookies={"libgate_session": second})
    assert "登录我的图书馆" in replay.get("/my").text


def test_an_idle_session_ends(library: Library) -> None:
    client = reader(library, "A")
    assert "证件信息" in client.get("/my").text
    library.clock.advance(minutes=31)
    page = client.get("/my")
    assert "登录我的图书馆" in page.text


def test_card_information_shows_maximum_holds(library: Library) -> None:
    page = reader(library, "A").get("/my", lang="en")
    assert "Card information" in page.text
    assert re.search(r"Maximum holds 2\b", page.text), page.text  # 本科生: max_holds 2
    assert re.search(r"Maximum loans 3\b", page.text)


# --- the seed's hold story ----------------------------------------------------------------------


def test_place_hold_confirm_see_it_and_cancel(library: Library) -> None:
    library.engine.checkout("B", "O1")
    client = reader(library, "A")
    page = client.get("/record/main/T-ONE/hold")
    assert "确认预约" in page.text
    assert "取书地：二楼借书处" in page.text  # R10, shown before confirming
    csrf = page.hidden("csrf")
    unticked = client.post("/record/main/T-ONE/hold", csrf=csrf)
    assert unticked.status == 400 and "请先在“预约框”里挑勾" in unticked.text
    done = client.post("/record/main/T-ONE/hold", csrf=csrf, confirm="yes")
    assert done.status == 200
    assert "预约成功" in done.text
    assert "a@example.cn" in done.text  # the email note
    my = client.get("/my")
    holds = my.html.split('id="holds"')[1].split('id="arrived"')[0]
    assert "书名T-ONE" in holds
    assert "二楼借书处" in holds  # R10: the desk it will be picked up at
    hold_id = re.search(r"/my/holds/(\d+)/cancel", holds).group(1)
    cancelled = client.post(f"/my/holds/{hold_id}/cancel", csrf=csrf)
    assert "已取消" in cancelled.text
    holds = cancelled.html.split('id="holds"')[1].split('id="arrived"')[0]
    assert "书名T-ONE" not in holds


def test_a_reader_without_email_is_told_to_look_in_my_library(library: Library) -> None:
    library.engine.checkout("B", "O1")
    with library.store.write() as tx:
        tx.execute("UPDATE patrons SET email = '' WHERE barcode = 'A'")
    client = reader(library, "A")
    csrf = client.csrf()
    done = client.post("/record/main/T-ONE/hold", csrf=csrf, confirm="yes", lang="en")
    assert "no email address on file" in done.text


@pytest.mark.parametrize(
    ("setup", "record", "expected"),
    [
        ("none", "T-TWO", "A copy of this title is on the shelf"),  # R2
        ("own_loan", "T-ONE", "You already have a copy of this title on loan"),  # R3
        ("none", "T-READ", "no copy that circulates"),  # R1
        ("suspended", "T-ONE", "you can place holds again after"),  # R15
        ("limit", "T-X", "the most your card allows"),  # R4
    ],
)
def test_hold_refusals_are_explained_before_and_after_confirming(
    library: Library, setup: str, record: str, expected: str
) -> None:
    engine = library.engine
    if setup == "own_loan":
        engine.checkout("A", "O1")
    elif setup == "suspended":
        engine.checkout("B", "O1")
        with library.store.write() as tx:
            tx.execute(
                "UPDATE patrons SET hold_suspended_until = '2099-01-01T00:00:00Z' WHERE barcode = 'A'"
            )
    elif setup == "limit":
        engine.checkout("B", "O1")
        engine.checkout("B", "X1")
        engine.checkout("D", "M1")
        engine.checkout("D", "M2")
        assert engine.place_hold("A", record=("main", "T-ONE")).ok
        assert engine.place_hold("A", record=("main", "T-MING")).ok
    client = reader(library, "A")
    page = client.get(f"/record/main/{record}/hold", lang="en")
    assert "The hold cannot be placed" in page.text
    assert expected in page.text
    assert "Confirm hold" not in page.text
    # Posting anyway (an old form, a crafted request) is refused by the engine the same way.
    done = client.post(f"/record/main/{record}/hold", csrf=client.csrf(), confirm="yes")
    assert done.status == 409
    assert expected in done.text


def test_hold_needs_login_and_comes_back_after_it(library: Library) -> None:
    library.engine.checkout("B", "O1")
    client = Client(library.portal)
    page = client.get("/record/main/T-ONE/hold")
    assert "登录我的图书馆" in page.text
    assert page.hidden("next") == "/record/main/T-ONE/hold"
    after = client.post(
        "/login",
        card="A",
        pin="0000",
        login_token=page.hidden("login_token"),
        next=page.hidden("next"),
    )
    assert "确认预约" in after.text


@pytest.mark.parametrize(
    "target", ["//evil.example/", "/\t/evil.example", "/\\evil.example", "https://evil.example/"]
)
def test_login_next_never_leaves_the_site(library: Library, target: str) -> None:
    client = Client(library.portal)
    form = client.get("/login")
    reply = library.portal.dispatch(
        PageRequest(
            "POST",
            "/login",
            {
                "card": ["A"],
                "pin": ["0000"],
                "login_token": [form.hidden("login_token")],
                "next": [target],
            },
            dict(client.cookies),
            "192.0.2.10",
        )
    )
    assert reply.location == "/my"


# --- security -----------------------------------------------------------------------------------


def test_a_form_without_the_csrf_token_changes_nothing(library: Library) -> None:
    library.engine.checkout("B", "O1")
    client = reader(library, "A")
    page = client.post("/record/main/T-ONE/hold", confirm="yes")
    assert page.status == 403
    page = client.post("/record/main/T-ONE/hold", confirm="yes", csrf="wrong")
    assert page.status == 403
    page = client.post("/record/main/T-ONE/hold", confirm="yes", csrf="令牌")  # not ASCII
    assert page.status == 403
    assert library.engine.patron_summary("A").waiting_holds == ()


def test_another_readers_hold_cannot_be_cancelled(library: Library) -> None:
    library.engine.checkout("D", "O1")
    placed = library.engine.place_hold("B", record=("main", "T-ONE"))
    assert placed.ok and placed.hold_id is not None
    client = reader(library, "A")
    page = client.post(f"/my/holds/{placed.hold_id}/cancel", csrf=client.csrf())
    assert "不能取消" in page.text
    assert [h.id for h in library.engine.patron_summary("B").waiting_holds] == [placed.hold_id]


def test_another_readers_loan_cannot_be_renewed(library: Library) -> None:
    library.engine.checkout("B", "O1")
    due = library.engine.item_info("O1").due_at
    client = reader(library, "A")
    page = client.post("/my/renew", csrf=client.csrf(), item="O1")
    assert "不能续借" in page.text
    assert library.engine.item_info("O1").due_at == due


# --- My Library ---------------------------------------------------------------------------------


def test_renew_and_the_r5_refusal(library: Library) -> None:
    library.engine.checkout("A", "O1")
    library.clock.advance(days=10)
    client = reader(library, "A")
    page = client.post("/my/renew", csrf=client.csrf(), item="O1", lang="en")
    assert "is renewed: now due" in page.text
    library.engine.checkout("A", "X1")
    assert library.engine.place_hold("B", record=("main", "T-X")).ok
    page = client.post("/my/renew", csrf=client.csrf(), item="X1")
    assert "Another reader has reserved this book" in page.text


def test_a_trapped_copy_shows_under_arrived_holds_with_its_deadline(library: Library) -> None:
    library.engine.checkout("B", "O1")
    assert library.engine.place_hold("A", record=("main", "T-ONE")).ok
    returned = library.engine.checkin("O1", Channel.DESK)
    assert returned.trapped_for is not None and returned.pickup_deadline is not None
    page = reader(library, "A").get("/my")
    arrived = page.html.split('id="arrived"')[1].split('id="fees"')[0]
    assert "书名T-ONE" in arrived
    deadline = library.portal.local_datetime(returned.pickup_deadline)
    assert deadline in arrived
    assert "二楼借书处" in arrived


def test_fees_are_listed_with_the_total(library: Library) -> None:
    library.engine.add_fee("A", 150, "overdue", "超期 3 天")
    page = reader(library, "A").get("/my")
    fees = page.html.split('id="fees"')[1]
    assert "¥1.50" in fees and "超期罚款" in fees


# --- interlibrary loan --------------------------------------------------------------------------


def test_ill_form_confirmation_and_success_page(library: Library) -> None:
    assert library.ill is not None
    library.ill.confirm_reader("A")
    client = reader(library, "A")
    form = client.get("/my/ill/new?db=main&id=T-MING")
    assert form.hidden("csrf")
    assert 'value="书名T-MING"' in form.html  # pre-filled from the record
    csrf = form.hidden("csrf")
    fields = dict(
        csrf=csrf,
        title="",
        author="某人",
        recipient="甲",
        email="a@example.cn",
        delivery="Courier",
        material_type="Book",
        lender="ISIL:CN-PKU",
    )
    refused = client.post("/my/ill/review", **fields)
    assert refused.status == 400 and "申请还不能提交" in refused.text
    fields["title"] = "剑桥中国明代史"
    review = client.post("/my/ill/review", **fields)
    assert review.status == 200
    assert "核对馆际互借申请" in review.text and "北京大学图书馆" in review.text
    assert library.ill.requests_of("A") == []  # reviewing files nothing
    done = client.post("/my/ill/send", **{**fields, "csrf": review.hidden("csrf")})
    assert done.status == 200
    number = re.search(r"ST\d{8}", done.text)
    assert number, done.text
    my = client.get("/my")
    assert number.group(0) in my.text and "剑桥中国明代史" in my.text


def test_ill_for_a_reader_not_registered_is_refused_on_review(library: Library) -> None:
    client = reader(library, "B")
    page = client.post(
        "/my/ill/review",
        csrf=client.csrf(),
        title="剑桥中国明代史",
        recipient="乙",
        email="b@example.cn",
    )
    assert page.status == 400
    assert library.ill is not None and library.ill.requests_of("B") == []


def test_no_ill_form_where_ill_is_not_offered(store, tmp_path) -> None:
    library = build_portal(store, tmp_path, ill=False)
    client = reader(library, "A")
    assert "申请单查询" not in client.get("/my").text
    assert client.get("/my/ill/new").status == 404


# --- languages ----------------------------------------------------------------------------------


def test_english_is_chosen_by_a_switch_and_remembered(library: Library) -> None:
    client = Client(library.portal)
    assert "书目检索" in client.get("/").text
    assert 'lang="en"' in client.get("/", lang="en").html
    page = client.get("/advanced")
    assert "Advanced search" in page.text
    assert 'lang="zh-Hans"' in client.get("/", lang="zh").html


def test_mobile_address_leads_to_the_portal(library: Library) -> None:
    page = Client(library.portal).get("/m/")
    assert page.status == 200 and "书目检索" in page.text


# --- what the review found ----------------------------------------------------------------------


def test_titles_outside_the_catalogues_are_not_shown(library: Library) -> None:
    """The engine keeps the copies borrowed through ILL in a database of its own: their
    records (request numbers, readers' titles) are nobody else's business."""
    with library.store.read() as tx:
        databases = {row[0] for row in tx.execute("SELECT DISTINCT database FROM bib_records")}
    assert databases == {"main"}
    client = reader(library, "B")
    assert client.get("/record/ill/ST00000001").status == 404
    assert client.get("/record/nowhere/T-ONE").status == 404
    page = client.post("/record/nowhere/T-ONE/hold", csrf=client.csrf(), confirm="yes")
    assert page.status == 404


def test_record_ids_with_slashes_and_cjk_open(store, tmp_path) -> None:
    library = build_portal(store, tmp_path)
    path = tmp_path / "odd.iso"
    path.write_bytes(iso(cnmarc("A/B 1", "斜杠题名"), cnmarc("书目一", "中文记录号")))
    profile = next(p for p in BUILTIN_PROFILES if p.name == "libgate")
    Loader(store, LoadOptions(database=DatabaseSettings(name="main"), profile=profile)).load([path])
    client = Client(library.portal)
    for query, title in (("斜杠题名", "斜杠题名"), ("中文记录号", "中文记录号")):
        results = client.get("/search", q=query)
        link = re.search(r'href="(/record/main/[^"]+)"', results.html)
        assert link, results.text
        assert "/" not in link.group(1)[len("/record/main/") :]
        assert title in client.get(link.group(1)).text


def test_a_bad_cookie_of_another_application_does_not_hide_ours() -> None:
    header = 'consent={"ads":false}; libgate_login=abc_DEF-123; pref=a b; libgate_lang=en'
    cookies = parse_cookies(header)
    assert cookies["libgate_login"] == "abc_DEF-123"
    assert cookies["libgate_lang"] == "en"


def test_a_very_long_search_is_refused_politely(library: Library) -> None:
    with pytest.raises(QueryTooComplex):
        words_in('"a" ' * 2000)
    page = Client(library.portal).get("/search", q='"a" ' * 2000)
    assert page.status == 400 and "检索式太复杂" in page.text


def test_a_form_sent_after_the_session_ended_comes_back_to_my_library(library: Library) -> None:
    library.engine.checkout("A", "O1")
    client = reader(library, "A")
    csrf = client.csrf()
    library.clock.advance(minutes=31)
    page = client.post("/my/renew", csrf=csrf, item="O1")
    assert "登录已超时" in page.text  # told why
    assert page.hidden("next") == "/my"
    after = client.post(
        "/login", card="A", pin="0000", login_token=page.hidden("login_token"), next="/my"
    )
    assert "证件信息" in after.text


def test_a_page_past_the_last_shows_the_last(library: Library) -> None:
    page = Client(library.portal).get("/search", q="书名", size="10", page="99", lang="en")
    assert page.status == 200 and "Page 1 of 1" in page.text and "书名T-ONE" in page.text


def test_cjk_titles_are_marked_as_cjk_in_the_english_interface(library: Library) -> None:
    page = Client(library.portal).get("/search", q="书名T-ONE", lang="en")
    assert 'lang="zh">书名T-ONE' in page.html


def test_catalogue_tabs_keep_the_search(library: Library) -> None:
    page = Client(library.portal).get("/search", q="书名", index="title")
    tab = re.search(r'href="(/search\?db=japanese[^"]*)"', page.html)
    assert tab, page.html
    assert "q=%E4%B9%A6%E5%90%8D" in tab.group(1) and "index=title" in tab.group(1)
