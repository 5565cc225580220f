"""The reader's interlibrary loan request (the seed's manual ILL form): the form, a
confirmation page, and a success page with the request number (ST…). The form checks are
the ILL engine's, run once on review (nothing written) and again when the request is filed.
"""

from __future__ import annotations

import logging

from gateway.circulation.ill_borrowing import IllForm
from gateway.records.display import title_by_id
from web.http import Reply
from web.portal import Page

log = logging.getLogger("libgate.web")
FIELDS = (
    "title",
    "author",
    "publisher",
    "year",
    "isbn",
    "issn",
    "language",
    "material_type",
    "lender",
    "holders",  # from a union search: the holding partners' agency ids, comma-separated
    "lenders",  # the reader's order of `holders` to ask (the rota), comma-separated
    "delivery",
    "recipient",
    "email",
    "phone",
    "reference",
    "note",
)
FIELD_LIMIT = 1000  # characters kept of any one field (the engine checks its own limits)
# ISO 18626 publicationType values (message keys material_<lower>), and delivery methods.
MATERIAL_TYPES = ("Book", "Journal", "Article", "Thesis")
DELIVERIES = ("Courier", "Mail", "Pickup")


def _guard(page: Page, post: bool) -> Reply | None:
    if page.session is None:
        return page.redirect("/login?next=/my/ill/new", after_post=False)
    if page.portal.ill is None:
        return page.render("error.html", 404, heading="not_found_heading", text="ill_not_offered")
    if post and not page.csrf_ok():
        return page.render("error.html", 403, heading="server_error_heading", text="form_expired")
    return None


def _split(listed: str) -> list[str]:
    return list(dict.fromkeys(x.strip() for x in listed.split(",") if x.strip()))


def _values(page: Page) -> dict[str, str]:
    values = {name: page.request.arg(name).strip()[:FIELD_LIMIT] for name in FIELDS}
    if "rota" in page.request.args:  # the form's choices, first to last; "" = do not ask
        holders = _split(values["holders"])
        chosen = [x.strip() for x in page.request.args["rota"]]
        values["lenders"] = ",".join(dict.fromkeys(x for x in chosen if x in holders))
    return values


def _rota_problem(page: Page, values: dict[str, str]) -> list[str]:
    """A rota of holding libraries with every one of them struck out asks nobody (an empty
    list would ask every partner)."""
    if values["holders"] and not _split(values["lenders"]):
        return [page._("ill_rota_empty")]
    return []


def _form_of(values: dict[str, str]) -> IllForm:
    """The engine's form: every field as typed, and the lenders: the rota chosen from the
    holding libraries, else the one lender chosen (none: any)."""
    lender = values["lender"]
    lenders = tuple(_split(values["lenders"])) if values["holders"] else (lender,) if lender else ()
    typed = {k: v for k, v in values.items() if k not in ("lender", "holders", "lenders")}
    return IllForm(**typed, lenders=lenders)


def _partner_name(page: Page, agency_id: str) -> str:
    ill = page.portal.ill
    partner = ill.settings.partner(agency_id) if ill is not None else None
    return (partner.name or partner.agency_id) if partner is not None else agency_id


def _render_form(page: Page, values: dict[str, str], problems: list[str], status: int) -> Reply:
    ill = page.portal.ill
    assert ill is not None
    holders = _split(values["holders"])
    order = _split(values["lenders"]) or holders
    return page.render(
        "ill_form.html",
        status,
        values=values,
        problems=problems,
        holders=[(x, _partner_name(page, x)) for x in holders],
        rota=order + [""] * (len(holders) - len(order)),
        partners=ill.settings.partners,
        material_types=MATERIAL_TYPES,
        deliveries=DELIVERIES,
    )


def new_request(page: Page) -> Reply:
    refused = _guard(page, post=False)
    if refused is not None:
        return refused
    assert page.session is not None
    portal = page.portal
    values = dict.fromkeys(FIELDS, "")
    summary = portal.engine.patron_summary(page.session.patron_barcode)
    if summary is not None:
        values["recipient"] = summary.patron.name
        values["email"] = summary.patron.email
        values["phone"] = summary.patron.phone
    values["delivery"] = "Courier"
    values["material_type"] = "Book"
    database, record_id = page.request.arg("db"), page.request.arg("id")
    if database and record_id:  # pre-filled from a catalogue record
        title = title_by_id(portal.store, portal.database(database).name, record_id)
        if title is not None:
            bib = title.bib
            values.update(
                title=bib.display_title,
                author=bib.main_author,
                publisher=bib.publisher,
                year=str(bib.year) if bib.year else bib.date,
                isbn=bib.isbns[0] if bib.isbns else "",
                issn=bib.issns[0] if bib.issns else "",
                language=bib.languages[0] if bib.languages else "",
            )
    elif page.request.arg("title"):  # pre-filled from a union search's work
        for name in ("title", "author", "publisher", "year", "isbn", "language"):
            values[name] = page.request.arg(name).strip()[:FIELD_LIMIT]
        ill = portal.ill
        assert ill is not None  # _guard
        known = [x for x in _split(page.request.arg("holders")) if ill.settings.partner(x)]
        values["holders"] = values["lenders"] = ",".join(known)
    return _render_form(page, values, [], 200)


def review(page: Page) -> Reply:
    refused = _guard(page, post=True)
    if refused is not None:
        return refused
    assert page.session is not None and page.portal.ill is not None
    values = _values(page)
    checked = page.portal.ill.check_request(page.session.patron_barcode, _form_of(values))
    problems = _rota_problem(page, values) + [r.message(page.language) for r in checked.reasons]
    if problems:
        return _render_form(page, values, problems, 400)
    ill = page.portal.ill
    asked = _form_of(values).lenders
    return page.render(
        "ill_confirm.html",
        values=values,
        fields=FIELDS,
        lender_name=" → ".join(_partner_name(page, x) for x in asked),
        fee=ill.settings.service_fee,
    )


def send(page: Page) -> Reply:
    refused = _guard(page, post=True)
    if refused is not None:
        return refused
    assert page.session is not None and page.portal.ill is not None
    values = _values(page)
    if page.request.arg("edit"):
        return _render_form(page, values, [], 200)
    if _rota_problem(page, values):
        return _render_form(page, values, _rota_problem(page, values), 400)
    barcode = page.session.patron_barcode
    result = page.portal.ill.request(barcode, _form_of(values))
    number = result.request.number if result.ok and result.request is not None else ""
    log.info(
        "web ill_request card=%r outcome=%s number=%s %s",
        barcode,
        "ok" if result.ok else "refused",
        number or "-",
        " ".join(f"{r.rule}:{r.code}" for r in result.reasons),
    )
    if not result.ok:
        problems = [r.message(page.language) for r in result.reasons]
        return _render_form(page, values, problems, 400)
    return page.render("ill_done.html", number=number)


__all__ = ["new_request", "review", "send"]
