"""Every page of the portal: (method, path pattern, page). One table, so a reader of the code
finds any URL here."""

from __future__ import annotations

from web import account_pages, catalogue_pages, ill_pages, union_pages
from web.portal import PageFunction

RECORD = r"/record/(?P<database>[^/]+)/(?P<record_id>[^/]+)"

ROUTES: list[tuple[str, str, PageFunction]] = [
    # the catalogue: anyone
    ("GET", r"/", catalogue_pages.home),
    ("GET", r"/search", catalogue_pages.home),
    ("GET", r"/advanced", catalogue_pages.advanced),
    ("GET", r"/browse", catalogue_pages.browse_page),
    ("GET", RECORD, catalogue_pages.record),
    ("GET", r"/m/?", catalogue_pages.mobile),
    # union search across the partner libraries (when [[union.targets]] are configured)
    ("GET", r"/union", union_pages.union_search),
    # holds: a logged-in reader
    ("GET", RECORD + r"/hold", account_pages.hold_form),
    ("POST", RECORD + r"/hold", account_pages.place_hold),
    # My Library
    ("GET", r"/login", account_pages.login_form),
    ("POST", r"/login", account_pages.login),
    ("POST", r"/logout", account_pages.logout),
    ("GET", r"/my", account_pages.my_library),
    ("POST", r"/my/renew", account_pages.renew),
    ("POST", r"/my/holds/(?P<hold_id>[0-9]{1,18})/cancel", account_pages.cancel_hold),
    # interlibrary loan requests
    ("GET", r"/my/ill/new", ill_pages.new_request),
    ("POST", r"/my/ill/review", ill_pages.review),
    ("POST", r"/my/ill/send", ill_pages.send),
]

__all__ = ["ROUTES"]
