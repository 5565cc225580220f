"""The SIP 2.00 wire format as one declarative table, read by both the parser and the encoder.

Every message is a two-digit command, fixed-width fields in a fixed order, then variable fields
`XXvalue|` identified by two-letter codes, then optionally `AYn` `AZxxxx`, then CR. This module
holds every field id, every fixed-field width and every message layout; nothing else in
`sip2/` spells a width or a field id's meaning. Sources: the 3M SIP2 Developer's Guide 2.00
and the 3M SIP2 Extensions (CR, CS, CT, CV, CY, DA), as summarised in
`../shared/docs/research/sip2.md` §1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

DATE_WIDTH = 18  # YYYYMMDDZZZZHHMMSS
MAX_VALUE_BYTES = 255  # a variable field's value, encoded; clients keep 255-byte buffers


class Terminator(StrEnum):
    """What ends each frame we send (an account's `terminator`): CR as the spec says, or CRLF
    for Koha-style clients that expect a line end. What we read may end either way."""

    CR = "CR"
    CRLF = "CRLF"

    @property
    def wire(self) -> bytes:
        return b"\r\n" if self is Terminator.CRLF else b"\r"


class ErrorDetection(StrEnum):
    """When AY/AZ are checked (an account's `error_detection`)."""

    AUTO = "auto"  # checked, and echoed, when the SC sends them
    REQUIRED = "required"  # a request without AZ gets 96
    OFF = "off"  # never checked, never sent


@dataclass(frozen=True)
class Fixed:
    """A fixed-width field. `kind`: flag (one character), date, count (zero-padded digits),
    code (a zero-padded numeric code like language `000`), text (space-padded)."""

    name: str
    width: int
    kind: str = "text"
    pattern: str | None = None  # what a present value looks like (to notice a missing one)

    @property
    def fill(self) -> str:
        return "0" if self.kind in ("count", "code") else " "

    @cached_property
    def matcher(self) -> re.Pattern[str] | None:
        """`pattern`, compiled once."""
        return re.compile(self.pattern) if self.pattern is not None else None


@dataclass(frozen=True)
class Var:
    """A variable field: its two-letter id, whether the spec requires it, whether it repeats."""

    code: str
    required: bool = False
    repeat: bool = False


@dataclass(frozen=True)
class MessageSpec:
    command: str
    name: str
    fixed: tuple[Fixed, ...]
    fields: tuple[Var, ...]

    @property
    def fixed_width(self) -> int:
        return sum(f.width for f in self.fixed)

    def var(self, code: str) -> Var | None:
        return self.vars.get(code)

    @cached_property
    def vars(self) -> dict[str, Var]:
        """The variable fields by id (the first, if a layout named one twice)."""
        found: dict[str, Var] = {}
        for field in self.fields:
            found.setdefault(field.code, field)
        return found


# --- field ids (3M SIP2 2.00 and the 3M extensions) ---------------------------------------

FIELD_NAMES: dict[str, str] = {
    "AA": "patron identifier",
    "AB": "item identifier",
    "AC": "terminal password",
    "AD": "patron password",
    "AE": "personal name",
    "AF": "screen message",
    "AG": "print line",
    "AH": "due date",
    "AJ": "title identifier",
    "AL": "blocked card message",
    "AM": "library name",
    "AN": "terminal location",
    "AO": "institution id",
    "AP": "current location",
    "AQ": "permanent location",
    "AS": "hold items",
    "AT": "overdue items",
    "AU": "charged items",
    "AV": "fine items",
    "AY": "sequence number",
    "AZ": "checksum",
    "BD": "home address",
    "BE": "e-mail address",
    "BF": "home phone number",
    "BG": "owner",
    "BH": "currency type",
    "BI": "cancel",
    "BK": "transaction id",
    "BL": "valid patron",
    "BM": "renewed items",
    "BN": "unrenewed items",
    "BO": "fee acknowledged",
    "BP": "start item",
    "BQ": "end item",
    "BR": "queue position",
    "BS": "pickup location",
    "BT": "fee type",
    "BU": "recall items",
    "BV": "fee amount",
    "BW": "expiration date",
    "BX": "supported messages",
    "BY": "hold type",
    "BZ": "hold items limit",
    "CA": "overdue items limit",
    "CB": "charged items limit",
    "CC": "fee limit",
    "CD": "unavailable hold items",
    "CF": "hold queue length",
    "CG": "fee identifier",
    "CH": "item properties",
    "CI": "security inhibit",
    "CJ": "recall date",
    "CK": "media type",
    "CL": "sort bin",
    "CM": "hold pickup date",
    "CN": "login user id",
    "CO": "login password",
    "CP": "location code",
    "CQ": "valid patron password",
    # 3M extensions, sent by Koha and understood by sorters and kiosks
    "CR": "collection code",
    "CS": "call number",
    "CT": "destination location",
    "CV": "alert type",
    "CY": "hold patron id",
    "DA": "hold patron name",
}


def _f(name: str, width: int, kind: str = "text", pattern: str | None = None) -> Fixed:
    return Fixed(name, width, kind, pattern)


def _req(*codes: str) -> tuple[Var, ...]:
    return tuple(Var(code, required=True) for code in codes)


def _opt(*codes: str) -> tuple[Var, ...]:
    return tuple(Var(code) for code in codes)


def _many(*codes: str) -> tuple[Var, ...]:
    return tuple(Var(code, repeat=True) for code in codes)


TD = _f("transaction_date", DATE_WIDTH, "date")
PATRON_STATUS = _f("patron_status", 14)
LANGUAGE = _f("language", 3, "code")
SCREEN = _many("AF", "AG")  # screen messages and print lines end every response


def _loan_response(command: str, name: str) -> MessageSpec:
    """Checkout (12) and renew (30) answer with the same layout."""
    return MessageSpec(
        command,
        name,
        (
            _f("ok", 1, "flag"),
            _f("renewal_ok", 1, "flag"),
            _f("magnetic_media", 1, "flag"),
            _f("desensitize", 1, "flag"),
            TD,
        ),
        _req("AO", "AA", "AB", "AJ", "AH")
        + _opt("BT", "CI", "BH", "BV", "CK", "CH", "BK")
        + SCREEN,
    )


REQUESTS: tuple[MessageSpec, ...] = (
    MessageSpec(
        "93",
        "login",
        (_f("uid_algorithm", 1), _f("pwd_algorithm", 1)),
        _req("CN", "CO") + _opt("CP"),
    ),
    MessageSpec(
        "99",
        "sc status",
        (_f("status_code", 1), _f("max_print_width", 3, "count"), _f("protocol_version", 4)),
        (),
    ),
    MessageSpec("97", "request acs resend", (), ()),
    MessageSpec("23", "patron status", (LANGUAGE, TD), _req("AO", "AA", "AC", "AD")),
    MessageSpec(
        "11",
        "checkout",
        (
            _f("sc_renewal_policy", 1, "flag"),
            _f("no_block", 1, "flag"),
            TD,
            _f("nb_due_date", DATE_WIDTH, "date"),
        ),
        _req("AO", "AA", "AB", "AC") + _opt("CH", "AD", "BO", "BI"),
    ),
    MessageSpec(
        "09",
        "checkin",
        (_f("no_block", 1, "flag"), TD, _f("return_date", DATE_WIDTH, "date")),
        _req("AP", "AO", "AB", "AC") + _opt("CH", "BI"),
    ),
    MessageSpec(
        "01", "block patron", (_f("card_retained", 1, "flag"), TD), _req("AO", "AL", "AA", "AC")
    ),
    MessageSpec(
        "63",
        "patron information",
        (LANGUAGE, TD, _f("summary", 10)),
        _req("AO", "AA") + _opt("AC", "AD", "BP", "BQ"),
    ),
    MessageSpec("17", "item information", (TD,), _req("AO", "AB") + _opt("AC")),
    MessageSpec(
        "29",
        "renew",
        (
            _f("third_party_allowed", 1, "flag"),
            _f("no_block", 1, "flag"),
            TD,
            _f("nb_due_date", DATE_WIDTH, "date"),
        ),
        _req("AO", "AA") + _opt("AD", "AB", "AJ", "AC", "CH", "BO"),
    ),
    MessageSpec("65", "renew all", (TD,), _req("AO", "AA") + _opt("AD", "AC", "BO")),
    MessageSpec(
        "15",
        "hold",
        (_f("hold_mode", 1), TD),
        _opt("BW", "BS", "BY") + _req("AO", "AA") + _opt("AD", "AB", "AJ", "AC", "BO"),
    ),
    MessageSpec("35", "end patron session", (TD,), _req("AO", "AA") + _opt("AC", "AD")),
    MessageSpec(
        "37",
        "fee paid",
        (
            TD,
            _f("fee_type", 2, "code"),
            _f("payment_type", 2, "code"),
            _f("currency_type", 3, pattern=r"[A-Z]{3}|\s{3}"),
        ),
        _req("BV", "AO", "AA") + _opt("AC", "AD", "CG", "BK"),
    ),
    MessageSpec("19", "item status update", (TD,), _req("AO", "AB") + _opt("AC") + _req("CH")),
    MessageSpec("25", "patron enable", (TD,), _req("AO", "AA") + _opt("AC", "AD")),
)

RESPONSES: tuple[MessageSpec, ...] = (
    MessageSpec("94", "login response", (_f("ok", 1, "flag"),), ()),
    MessageSpec(
        "98",
        "acs status",
        (
            _f("online_status", 1, "flag"),
            _f("checkin_ok", 1, "flag"),
            _f("checkout_ok", 1, "flag"),
            _f("acs_renewal_policy", 1, "flag"),
            _f("status_update_ok", 1, "flag"),
            _f("offline_ok", 1, "flag"),
            _f("timeout_period", 3, "count"),
            _f("retries_allowed", 3, "count"),
            _f("date_time_sync", DATE_WIDTH, "date"),
            _f("protocol_version", 4),
        ),
        _req("AO") + _opt("AM") + _req("BX") + _opt("AN") + SCREEN,
    ),
    MessageSpec(
        "24",
        "patron status response",
        (PATRON_STATUS, LANGUAGE, TD),
        _req("AO", "AA", "AE") + _opt("BL", "CQ", "BH", "BV") + SCREEN,
    ),
    _loan_response("12", "checkout response"),
    MessageSpec(
        "10",
        "checkin response",
        (
            _f("ok", 1, "flag"),
            _f("resensitize", 1, "flag"),
            _f("magnetic_media", 1, "flag"),
            _f("alert", 1, "flag"),
            TD,
        ),
        _req("AO", "AB", "AQ")
        + _opt("AJ", "CL", "AA", "CK", "CH", "CR", "CS", "CT", "CV", "CY", "DA")
        + SCREEN,
    ),
    MessageSpec(
        "64",
        "patron information response",
        (
            PATRON_STATUS,
            LANGUAGE,
            TD,
            _f("hold_items_count", 4, "count"),
            _f("overdue_items_count", 4, "count"),
            _f("charged_items_count", 4, "count"),
            _f("fine_items_count", 4, "count"),
            _f("recall_items_count", 4, "count"),
            _f("unavailable_holds_count", 4, "count"),
        ),
        _req("AO", "AA", "AE")
        + _opt("BZ", "CA", "CB", "BL", "CQ", "BH", "BV", "CC")
        + _many("AS", "AT", "AU", "AV", "BU", "CD")
        + _opt("BD", "BE", "BF")
        + SCREEN,
    ),
    MessageSpec(
        "18",
        "item information response",
        (
            _f("circulation_status", 2, "code"),
            _f("security_marker", 2, "code"),
            _f("fee_type", 2, "code"),
            TD,
        ),
        _opt("CF", "AH", "CJ", "CM")
        + _req("AB", "AJ")
        + _opt("BG", "BH", "BV", "CK", "AQ", "AP", "CH", "CR", "CS")
        + SCREEN,
    ),
    _loan_response("30", "renew response"),
    MessageSpec(
        "66",
        "renew all response",
        (
            _f("ok", 1, "flag"),
            _f("renewed_count", 4, "count"),
            _f("unrenewed_count", 4, "count"),
            TD,
        ),
        _req("AO") + _many("BM", "BN") + SCREEN,
    ),
    MessageSpec(
        "16",
        "hold response",
        (_f("ok", 1, "flag"), _f("available", 1, "flag"), TD),
        _opt("BW", "BR", "BS") + _req("AO", "AA") + _opt("AB", "AJ") + SCREEN,
    ),
    MessageSpec(
        "36", "end session response", (_f("end_session", 1, "flag"), TD), _req("AO", "AA") + SCREEN
    ),
    MessageSpec(
        "38",
        "fee paid response",
        (_f("payment_accepted", 1, "flag"), TD),
        _req("AO", "AA") + _opt("BK") + SCREEN,
    ),
    MessageSpec(
        "20",
        "item status update response",
        (_f("item_properties_ok", 1, "flag"), TD),
        _req("AB") + _opt("AJ", "CH") + SCREEN,
    ),
    MessageSpec(
        "26",
        "patron enable response",
        (PATRON_STATUS, LANGUAGE, TD),
        _req("AO", "AA", "AE") + _opt("BL", "CQ") + SCREEN,
    ),
    MessageSpec("96", "request sc resend", (), ()),
)

REQUEST_SPECS: dict[str, MessageSpec] = {spec.command: spec for spec in REQUESTS}
RESPONSE_SPECS: dict[str, MessageSpec] = {spec.command: spec for spec in RESPONSES}
SPECS: dict[str, MessageSpec] = {**REQUEST_SPECS, **RESPONSE_SPECS}

# Each request and the command that answers it (01 Block Patron is answered by 24).
ANSWERED_BY: dict[str, str] = {
    "93": "94",
    "99": "98",
    "23": "24",
    "11": "12",
    "09": "10",
    "01": "24",
    "63": "64",
    "17": "18",
    "29": "30",
    "65": "66",
    "15": "16",
    "35": "36",
    "37": "38",
    "19": "20",
    "25": "26",
}

# The BX field of 98: one Y/N per message in this order (SIP2 2.00, "supported messages").
SUPPORTED_MESSAGES_ORDER: tuple[str, ...] = (
    "23",  # patron status request
    "11",  # checkout
    "09",  # checkin
    "01",  # block patron
    "99",  # SC/ACS status
    "97",  # request SC/ACS resend
    "93",  # login
    "63",  # patron information
    "35",  # end patron session
    "37",  # fee paid
    "17",  # item information
    "19",  # item status update
    "25",  # patron enable
    "15",  # hold
    "29",  # renew
    "65",  # renew all
)

# Patron status (24, 26, 64): 14 positions, `Y` or blank.
PATRON_STATUS_FLAGS: tuple[str, ...] = (
    "charge_privileges_denied",
    "renewal_privileges_denied",
    "recall_privileges_denied",
    "hold_privileges_denied",
    "card_reported_lost",
    "too_many_items_charged",
    "too_many_items_overdue",
    "too_many_renewals",
    "too_many_claims_of_items_returned",
    "too_many_items_lost",
    "excessive_outstanding_fines",
    "excessive_outstanding_fees",
    "recall_overdue",
    "too_many_items_billed",
)

# Summary (63): the position of the `Y` selects which item list 64 carries.
SUMMARY_LISTS: tuple[str, ...] = ("AS", "AT", "AU", "AV", "BU", "CD")

# Circulation status (18).
CIRCULATION_STATUS: dict[str, str] = {
    "other": "01",
    "on_order": "02",
    "available": "03",
    "on_loan": "04",
    "on_loan_not_recallable": "05",
    "in_process": "06",
    "recalled": "07",
    "on_hold_shelf": "08",
    "waiting_to_be_reshelved": "09",
    "in_transit": "10",
    "claimed_returned": "11",
    "lost": "12",
    "missing": "13",
}

PAYMENT_TYPES: dict[str, str] = {"00": "cash", "01": "visa", "02": "credit card"}

# Language (3 digits) ↔ the screen-message language we can speak.
LANGUAGES: dict[str, str] = {"001": "en", "019": "zh"}  # 019 is Chinese in JSIP2's table
LANGUAGE_CODES: dict[str, str] = {"en": "001", "zh": "019"}

# Alert type CV (3M extension).
ALERT_HOLD_HERE = "01"
