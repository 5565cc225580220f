"""My Library (我的图书馆) and the reader's actions: log in and out, place a hold (with the
seed's confirmation step), cancel a hold, renew a loan. Every action is the engine's decision
on the `web` channel; a page only shows what the engine answered, in the reader's language.
A reader sees and changes only their own account: every action names the logged-in reader,
never a reader taken from the form.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from gateway.circulation.pin_guard import PinSource, PinVerdict
from gateway.circulation.reasons import Reason
from gateway.circulation.states import Channel
from gateway.circulation.views import FEE_KINDS
from gateway.circulation.web_sessions import open_session
from gateway.records.display import title_by_id
from web.http import LOGIN_COOKIE, SESSION_COOKIE, Cookie, Reply, local_path, same_token
from web.portal import Page

log = logging.getLogger("libgate.web")
CARD_LIMIT = 64  # characters of a card number or PIN read from the form


def reasons_text(page: Page, reasons: tuple[Reason, ...]) -> list[str]:
    return [r.message(page.language) for r in reasons]


def _login_first(page: Page) -> Reply:
    """To the login page, and back here after it: a page (GET) comes back to itself; a form
    (POST), whose action cannot be opened by a link, comes back to My Library. A session that
    has just ended says so."""
    target = page.request.path if page.request.method == "GET" else "/my"
    ended = "&ended=1" if page.session_ended else ""
    return page.redirect(f"/login?next={quote(target, safe='')}{ended}")


# --- log in and out ------------------------------------------------------------------------------


def login_form(page: Page) -> Reply:
    if page.session is not None:
        return page.redirect(local_path(page.request.arg("next"), "/my"), after_post=False)
    return page.render(
        "login.html",
        login_token=page.login_token(),
        next=local_path(page.request.arg("next"), "/my"),
        problem="",
        notice=(
            page._("logged_out")
            if page.request.arg("out") == "1"
            else page._("session_ended")
            if page.request.arg("ended") == "1"
            else ""
        ),
        card="",
    )


def login(page: Page) -> Reply:
    request = page.request
    target = local_path(request.arg("next"), "/my")
    card = request.arg("card").strip()[:CARD_LIMIT]
    pin = request.arg("pin")[:CARD_LIMIT]
    cookie_token = request.cookies.get(LOGIN_COOKIE, "")
    sent = request.arg("login_token")
    if not cookie_token or not same_token(sent, cookie_token):
        log.info("web login refused: form without its token address=%s", request.address)
        return page.render(
            "login.html",
            403,
            login_token=page.login_token(),
            next=target,
            problem=page._("form_expired"),
            notice="",
            card=card,
        )
    engine = page.portal.engine
    source = PinSource(request.address, f"web@{request.address}", Channel.WEB)
    checked = engine.check_patron_pin(card, pin, source) if card and pin else None
    if checked is None or checked.verdict is not PinVerdict.RIGHT:
        verdict = checked.verdict.value if checked is not None else "empty"
        log.info("web login card=%r address=%s outcome=%s", card, request.address, verdict)
        problem = (
            page._("login_wait", seconds=checked.wait_seconds)
            if checked is not None and checked.verdict is PinVerdict.BACKING_OFF
            else page._("login_failed")
        )
        return page.render(
            "login.html",
            401,
            login_token=page.login_token(),
            next=target,
            problem=problem,
            notice="",
            card=card,
        )
    if page.session_token:  # a new session at every login: an old token is never promoted
        page.portal.end_session(page.session_token)
    token, _session = open_session(page.portal.store, card, request.address, engine.clock.now())
    log.info("web login card=%r address=%s outcome=ok", card, request.address)
    reply = page.redirect(target)
    reply.cookies.append(Cookie(SESSION_COOKIE, token))
    reply.cookies.append(Cookie(LOGIN_COOKIE, "", max_age=0))
    return reply


def logout(page: Page) -> Reply:
    if page.session is None:
        return page.redirect("/login?out=1")
    if not page.csrf_ok() or not page.session_token:  # another site cannot log a reader out
        return page.render("error.html", 403, heading="server_error_heading", text="form_expired")
    page.portal.end_session(page.session_token)
    log.info("web logout card=%s", page.session.patron_barcode)
    reply = page.redirect("/login?out=1")
    reply.cookies.append(Cookie(SESSION_COOKIE, "", max_age=0))
    return reply


# --- My Library ---------------------------------------------------------------------------------


def my_library(page: Page, notice: str = "", problems: list[str] | None = None) -> Reply:
    if page.session is None:
        return _login_first(page)
    portal = page.portal
    barcode = page.session.patron_barcode
    summary = portal.engine.patron_summary(barcode)
    if summary is None:  # the reader was deleted while logged in
        return _login_first(page)
    ill_requests = portal.ill.requests_of(barcode) if portal.ill is not None else []
    return page.render(
        "my.html",
        summary=summary,
        notice=notice,
        problems=problems or [],
        ill_requests=ill_requests,
        pickup_desks=portal.engine.pickup_desks(barcode),
        fee_kinds=FEE_KINDS,
    )


def renew(page: Page) -> Reply:
    if page.session is None:
        return _login_first(page)
    if not page.csrf_ok():
        return page.render("error.html", 403, heading="server_error_heading", text="form_expired")
    item = page.request.arg("item")[:CARD_LIMIT]
    barcode = page.session.patron_barcode
    result = page.portal.engine.renew(barcode, item, Channel.WEB)
    title = result.record.title if result.record is not None else item
    log.info(
        "web renew card=%r item=%r outcome=%s %s",
        barcode,
        item,
        "ok" if result.ok else "refused",
        " ".join(f"{r.rule}:{r.code}" for r in result.reasons),
    )
    if result.ok:
        due = page.portal.local_date(result.due_at)
        return my_library(page, notice=page._("renewed", title=title, due=due))
    why = " ".join(reasons_text(page, result.reasons))
    return my_library(page, problems=[page._("renew_refused", title=title, why=why)])


def cancel_hold(page: Page, hold_id: str) -> Reply:
    if page.session is None:
        return _login_first(page)
    if not page.csrf_ok():
        return page.render("error.html", 403, heading="server_error_heading", text="form_expired")
    barcode = page.session.patron_barcode
    result = page.portal.engine.cancel_hold(barcode, hold_id=int(hold_id), channel=Channel.WEB)
    log.info(
        "web cancel_hold card=%r hold=%s outcome=%s",
        barcode,
        hold_id,
        "ok" if result.ok else "refused",
    )
    if result.ok:
        title = result.record.title if result.record is not None else ""
        return my_library(page, notice=page._("hold_cancelled", title=title))
    why = " ".join(reasons_text(page, result.reasons))
    return my_library(page, problems=[page._("cancel_refused", why=why)])


# --- placing a hold -----------------------------------------------------------------------------


def hold_form(page: Page, database: str, record_id: str) -> Reply:
    """预约申请: what placing the hold would do (or why it cannot), before the reader confirms."""
    if page.session is None:
        return _login_first(page)
    portal = page.portal
    title = title_by_id(portal.store, database, record_id) if portal.serves(database) else None
    if title is None:
        return page.render("error.html", 404, heading="not_found_heading", text="record_not_found")
    preview = portal.engine.hold_preview(
        page.session.patron_barcode, record=(database, record_id), channel=Channel.WEB
    )
    return page.render(
        "hold.html",
        database=database,
        title=title,
        preview=preview,
        refusals=reasons_text(page, preview.reasons),
        problem="",
        holds=portal.engine.policy.holds,
    )


def place_hold(page: Page, database: str, record_id: str) -> Reply:
    if page.session is None:
        return _login_first(page)
    if not page.csrf_ok():
        return page.render("error.html", 403, heading="server_error_heading", text="form_expired")
    portal = page.portal
    barcode = page.session.patron_barcode
    if not portal.serves(database):
        return page.render("error.html", 404, heading="not_found_heading", text="record_not_found")
    if page.request.arg("confirm") != "yes":  # the seed's hold box must be ticked
        title = title_by_id(portal.store, database, record_id)
        if title is None:
            return page.render(
                "error.html", 404, heading="not_found_heading", text="record_not_found"
            )
        preview = portal.engine.hold_preview(
            barcode, record=(database, record_id), channel=Channel.WEB
        )
        return page.render(
            "hold.html",
            400,
            database=database,
            title=title,
            preview=preview,
            refusals=reasons_text(page, preview.reasons),
            problem=page._("hold_tick_box"),
            holds=portal.engine.policy.holds,
        )
    result = portal.engine.place_hold(barcode, record=(database, record_id), channel=Channel.WEB)
    log.info(
        "web place_hold card=%r record=%r/%r outcome=%s %s",
        barcode,
        database,
        record_id,
        "ok" if result.ok else "refused",
        " ".join(f"{r.rule}:{r.code}" for r in result.reasons),
    )
    summary = portal.engine.patron_summary(barcode)
    email = summary.patron.email if summary is not None else ""
    return page.render(
        "hold_done.html",
        200 if result.ok else 409,
        database=database,
        record_id=record_id,
        result=result,
        refusals=reasons_text(page, result.reasons),
        email=email,
    )


__all__ = [
    "cancel_hold",
    "hold_form",
    "login",
    "login_form",
    "logout",
    "my_library",
    "place_hold",
    "renew",
]
