"""The catalogue's pages: basic search and results, advanced search, browse lists and the
record page with its holdings table. Anyone may use them; placing a hold needs a login
(web/account_pages.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway.catalogue.query import EmptyTerm, Query, QueryError, QueryTooComplex
from gateway.catalogue.search import SearchResult, browse, search
from gateway.circulation.availability import ShelfState, shelf_state_label
from gateway.circulation.results import CopyAvailability
from gateway.cql.free_text import QuerySyntaxError
from gateway.records.display import (
    Availability,
    AvailabilitySummary,
    TitleDisplay,
    summarise,
    title_by_id,
    titles_for_display,
)
from web.http import Reply, with_query
from web.messages import Translator
from web.portal import Page
from web.query_form import (
    ADVANCED_ROWS,
    BROWSE_LISTS,
    OPERATORS,
    PAGE_SIZES,
    SEARCH_FIELDS,
    SORTS,
    AdvancedRow,
    advanced_query,
    basic_query,
    sorted_by,
)

LANGUAGE_TAGS = {"chi": "zh", "jpn": "ja", "eng": "en", "kor": "ko"}


@dataclass(frozen=True)
class ResultLine:
    number: int
    title: TitleDisplay
    availability: AvailabilitySummary
    lang: str  # the record's language tag, so CJK text gets the right glyphs


@dataclass(frozen=True)
class HoldingRow:
    library: str
    location: str
    call_number: str
    status: str
    item_type: str
    barcode: str
    available: bool


KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
HAN = re.compile("[\u3400-\u9fff\uf900-\ufaff]")


def language_tag(title: TitleDisplay) -> str:
    """The HTML lang of a record's text, so Japanese titles get Japanese glyph forms and CJK
    text is never marked as the English of the page: the record's language code, else its
    title's script (kana: Japanese; Han alone: Chinese)."""
    for code in title.bib.languages:
        if code in LANGUAGE_TAGS:
            return LANGUAGE_TAGS[code]
    text = title.bib.display_title
    if KANA.search(text):
        return "ja"
    if HAN.search(text):
        return "zh"
    return ""


def availability_text(_: Translator, summary: AvailabilitySummary, due: str) -> str:
    """ "2 of 3 available", "on loan, due 2026-12-20", "in library use only"."""
    if summary.state is Availability.AVAILABLE:
        return _("availability_available", available=summary.available, copies=summary.copies)
    if summary.state is Availability.ON_LOAN:
        return _("availability_on_loan", due=due)
    return _(f"availability_{summary.state.value}")


def query_problem(_: Translator, error: QueryError) -> str:
    """A query that cannot be run, told in the reader's language."""
    if isinstance(error, EmptyTerm):
        return _("query_error_empty")
    if isinstance(error, QueryTooComplex):
        return _("query_error_too_complex")
    if _.language == "en":
        return _("query_error", detail=str(error))
    if isinstance(error, QuerySyntaxError):
        return _("query_error_syntax")
    return _("query_error", detail=str(error))


def _database_arg(page: Page) -> str:
    return page.portal.database(page.request.arg("db", page.portal.databases[0].name)).name


def _run_search(page: Page, database: str, query: Query, form: dict[str, str]) -> Reply:
    """Search, then the results page (or the form again with a friendly message)."""
    request = page.request
    sort = request.arg("sort", "relevance")
    sort = sort if sort in SORTS else "relevance"
    size = request.arg_int("size", page.portal.web.page_size, 1, 100)
    size = size if size in PAGE_SIZES or size == page.portal.web.page_size else PAGE_SIZES[1]
    number = request.arg_int("page", 1, 1, 10_000)
    available_only = request.arg("available") == "1"
    portal = page.portal

    def page_of(number: int) -> SearchResult:
        return search(
            portal.store,
            sorted_by(query, sort),
            database,
            availability=portal.engine.policy.availability,
            limit=size,
            offset=(number - 1) * size,
            available_only=available_only,
        )

    try:
        result = page_of(number)
    except QueryError as error:
        return _form_page(page, database, form, error)
    if not result.hits and result.total > 0 and number > 1:  # past the last page: the last
        number = -(-result.total // size)
        result = page_of(number)
    pks = [hit.record_pk for hit in result.hits]
    titles = titles_for_display(portal.store, pks)
    availability = portal.engine.availability(pks)
    lines = []
    for position, hit in enumerate(result.hits, start=result.offset + 1):
        title = titles.get(hit.record_pk)
        if title is not None:
            summary = summarise(availability.get(hit.record_pk))
            lines.append(ResultLine(position, title, summary, language_tag(title)))
    pages = max(1, -(-result.total // size))
    here = {k: v for k, v in form.items() if k != "template"}

    def page_url(target: int) -> str:
        return with_query(
            request.path,
            **here,
            db=database,
            sort=sort,
            size=size,
            available="1" if available_only else "",
            page=target,
        )

    return page.render(
        "results.html",
        database=database,
        form=form,
        lines=lines,
        total=result.total,
        first=result.offset + 1 if lines else 0,
        last=result.offset + len(lines),
        page_number=number,
        pages=pages,
        page_url=page_url,
        sort=sort,
        size=size,
        available_only=available_only,
        availability_text=lambda s: availability_text(page._, s, portal.local_date(s.due_at)),
        **_form_choices(),
    )


def _form_page(
    page: Page, database: str, form: dict[str, str], error: QueryError | None = None
) -> Reply:
    """The search form (basic, or advanced when the form says so) as filled in, with the
    reason its query cannot run."""
    return page.render(
        form.get("template", "search.html"),
        200 if error is None else 400,
        database=database,
        form=form,
        problem=query_problem(page._, error) if error is not None else "",
        **_form_choices(),
    )


def _form_choices() -> dict[str, Any]:
    return {
        "search_fields": SEARCH_FIELDS,
        "browse_lists": BROWSE_LISTS,
        "operators": OPERATORS,
        "sorts": tuple(SORTS),
        "page_sizes": PAGE_SIZES,
        "advanced_rows": range(1, ADVANCED_ROWS + 1),
    }


def home(page: Page) -> Reply:
    """The search page: catalogue tabs, the search box, and results when a query is given."""
    request = page.request
    database = _database_arg(page)
    text = request.arg("q")
    field = request.arg("index", "any")
    form = {"q": text, "index": field if field in SEARCH_FIELDS else "any"}
    if not text.strip() and "q" not in request.args:
        return _form_page(page, database, form)
    try:
        query = basic_query(form["index"], text)
    except QueryError as error:
        return _form_page(page, database, form, error)
    return _run_search(page, database, query, form)


def advanced(page: Page) -> Reply:
    request = page.request
    database = _database_arg(page)
    form: dict[str, str] = {"template": "advanced.html"}
    rows = []
    for row in range(1, ADVANCED_ROWS + 1):
        field = request.arg(
            f"f{row}", ("title", "author", "subject")[row - 1] if row <= 3 else "any"
        )
        terms = request.arg(f"t{row}")
        op = request.arg(f"o{row}", "and")
        form[f"f{row}"], form[f"t{row}"], form[f"o{row}"] = field, terms, op
        rows.append(AdvancedRow(op, field, terms))
    form["year_from"] = request.arg("year_from")
    form["year_to"] = request.arg("year_to")
    asked = any(f"t{row}" in request.args for row in range(1, ADVANCED_ROWS + 1))
    if not asked:
        return _form_page(page, database, form)
    try:
        query = advanced_query(rows, form["year_from"], form["year_to"])
    except QueryError as error:
        return _form_page(page, database, form, error)
    return _run_search(page, database, query, form)


def browse_page(page: Page) -> Reply:
    request = page.request
    database = _database_arg(page)
    index = request.arg("list", "title")
    index = index if index in BROWSE_LISTS else "title"
    start = request.arg("from")
    entries = browse(page.portal.store, database, index, start, count=20, position=1)

    def search_url(heading: str) -> str:
        phrase = '"' + heading.replace('"', " ") + '"'
        return with_query("/", db=database, index=index, q=phrase)

    next_from = entries[-1].heading if len(entries) == 20 else ""
    return page.render(
        "browse.html",
        database=database,
        index=index,
        start=start,
        entries=entries,
        search_url=search_url,
        next_url=with_query("/browse", db=database, list=index, **{"from": next_from})
        if next_from
        else "",
        **_form_choices(),
    )


def holding_rows(page: Page, copies: tuple[CopyAvailability, ...]) -> list[HoldingRow]:
    """The seed's six columns: 馆址, 馆藏地, 索书号, 状态, 馆藏类型, 馆藏条码."""
    web = page.portal.web
    library = web.library_name_en if page.language == "en" else web.library_name
    rows = []
    for copy in copies:
        status = shelf_state_label(copy.state, page.language)
        if copy.state is ShelfState.ON_LOAN and copy.due_at:
            status += "，" if page.language == "zh" else ", "
            status += page._("status_due", due=page.portal.local_date(copy.due_at))
        rows.append(
            HoldingRow(
                library=copy.library or library,
                location=copy.location,
                call_number=copy.call_number,
                status=status,
                item_type=copy.item_type,
                barcode=copy.barcode,
                available=copy.state is ShelfState.AVAILABLE,
            )
        )
    return rows


def record(page: Page, database: str, record_id: str) -> Reply:
    portal = page.portal
    title = title_by_id(portal.store, database, record_id) if portal.serves(database) else None
    if title is None:
        return page.render("error.html", 404, heading="not_found_heading", text="record_not_found")
    availability = portal.engine.availability([title.pk]).get(title.pk)
    copies = availability.copies if availability is not None else ()
    return page.render(
        "record.html",
        database=database,
        title=title,
        lang_tag=language_tag(title),
        holdings=holding_rows(page, copies),
        summary=summarise(availability),
        availability_text=lambda s: availability_text(page._, s, portal.local_date(s.due_at)),
    )


def mobile(page: Page) -> Reply:
    """`/m/`, the seed's mobile OPAC address: the one responsive portal (`?lang=` kept)."""
    args = {k: v[0] for k, v in page.request.args.items()}
    return page.redirect(with_query("/", **args), after_post=False)


__all__ = [
    "HoldingRow",
    "ResultLine",
    "advanced",
    "availability_text",
    "browse_page",
    "holding_rows",
    "home",
    "language_tag",
    "mobile",
    "query_problem",
    "record",
]
