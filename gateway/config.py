"""One TOML file → frozen, validated settings.

Where the file comes from: `--config PATH`, else `$LIBGATE_CONFIG`, else `./libgate.toml`, else
the built-in defaults below. Every key is checked at start: an unknown key or a bad value stops
the gateway with one line naming it (`ConfigError`). Sections are dataclasses; the validator
reads their field types, so adding a setting is adding a field.
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import re
import tomllib
import types
import typing
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.circulation.states import STATUS_STATES
from gateway.networks import parse_network
from marc.holdings import HoldingsProfile

DEFAULT_CONFIG_NAME = "libgate.toml"
# Match points of a load's match rule (`[[databases]] match`, `load --match`), tried in order:
# see gateway/catalogue/loading/matching.py.
MATCH_POINTS = ("001", "isbn", "issn", "title+author+year")
CONFIG_ENV = "LIBGATE_CONFIG"


class ConfigError(Exception):
    """A configuration problem; str(error) is the one line to show."""


@dataclass(frozen=True)
class StorageSettings:
    url: str = "sqlite:///var/libgate.db"
    busy_timeout_ms: int = 10000  # SQLite: how long a writer waits for the lock
    pool_size: int = 8  # PostgreSQL: connections per gateway process
    # The Tantivy search index (derived from the store): "" = next to the SQLite file
    # (`libgate.db.search/`), or `var/search/<hash of the URL>/` for PostgreSQL.
    search_index_dir: str = ""

    def validate(self, where: str) -> None:
        if not self.url.startswith(("sqlite:///", "postgresql:", "postgres:")):
            raise ConfigError(
                f"{where}.url: {self.url!r} is not sqlite:///path.db or postgresql://..."
            )
        _positive(self.busy_timeout_ms, f"{where}.busy_timeout_ms")
        _positive(self.pool_size, f"{where}.pool_size")


@dataclass(frozen=True)
class DatabaseSettings:
    """One catalogue database, e.g. `main` (中文书目) or `japanese` (日文书目)."""

    name: str
    title: str = ""
    title_en: str = ""
    profile: str = "libgate"  # holdings profile used when `load --profile` is not given
    format: str = "auto"  # auto | unimarc | marc21: how to read records loaded into it
    # The match rule of loads into this database when `load --match` is not given: match
    # points tried in order, the first that finds exactly one record matches (or "none").
    match: tuple[str, ...] = ("001",)

    def validate(self, where: str) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"{where}.name: {self.name!r} must be letters, digits, - or _")
        if self.format not in ("auto", "unimarc", "marc21"):
            raise ConfigError(f"{where}.format: {self.format!r} is not auto, unimarc or marc21")
        if self.match != ("none",):
            for index, point in enumerate(self.match):
                if point not in MATCH_POINTS:
                    raise ConfigError(
                        f"{where}.match[{index}]: {point!r} is not a match point"
                        f' ({", ".join(MATCH_POINTS)}, or ["none"])'
                    )
            if len(set(self.match)) != len(self.match):
                raise ConfigError(f"{where}.match: a match point is listed twice")


@dataclass(frozen=True)
class LoaderSettings:
    batch_size: int = 500  # records per committed transaction (at most, on SQLite)
    workers: int = -1  # processes preparing records: -1 = one per core (none on one core), 0 = none
    # SQLite: each batch is sized to hold the only write lock about this long, so a kiosk's
    # checkout during a load waits well under a second.
    batch_target_ms: int = 100
    # A first load into an empty catalogue (no kiosk can be checking out a copy yet) stores
    # batches of batch_size records from the first, whatever their lock time.
    bulk_first_load: bool = True

    def validate(self, where: str) -> None:
        _positive(self.batch_size, f"{where}.batch_size")
        _positive(self.batch_target_ms, f"{where}.batch_target_ms")
        if self.workers < -1 or self.workers > 64:
            raise ConfigError(f"{where}.workers: {self.workers} is not -1 (auto), 0 or 1..64")


LOG_FORMATS = ("text", "json")


MAX_STOP_TIMEOUT = 600.0  # a stop that may take longer is a hang by another name


@dataclass(frozen=True)
class ServiceSettings:
    log_level: str = "info"
    # New connections on every listener are refused when fewer descriptors than this are left
    # under the process's limit (which `serve` raises to the hard limit at start).
    descriptor_margin: int = 64
    # Processes serving the listeners, sharing their sockets (gateway/supervisor.py): -1 = one
    # per core; 1 = one process and no supervisor (as before issue 12).
    workers: int = -1
    # The log (gateway/log_output.py): text or json lines; stderr (journald) unless a file is
    # named, rotated at log_max_bytes (0: never) keeping log_backups old files.
    log_format: str = "text"
    log_file: str = ""
    log_max_bytes: int = 10_000_000
    log_backups: int = 5
    # SIGTERM/SIGINT (gateway/draining.py): seconds a process may take to finish what is in
    # flight, flush the notices and stop; then it exits anyway. Below the supervisor's wait
    # (stop_timeout + gateway.draining.STOP_MARGIN_SECONDS) and systemd's TimeoutStopSec.
    stop_timeout: float = 20.0

    def validate(self, where: str) -> None:
        _positive(self.descriptor_margin, f"{where}.descriptor_margin")
        if not 0 < self.stop_timeout <= MAX_STOP_TIMEOUT:
            raise ConfigError(
                f"{where}.stop_timeout: {self.stop_timeout} is not a number of seconds"
                f" above 0 and at most {MAX_STOP_TIMEOUT:.0f}"
            )
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"{where}.log_format: {self.log_format!r} is not text or json")
        if self.log_max_bytes < 0 or self.log_backups < 0:
            raise ConfigError(f"{where}.log_max_bytes and log_backups: must be 0 or more")
        if self.workers == 0 or self.workers < -1 or self.workers > 64:
            raise ConfigError(f"{where}.workers: {self.workers} is not -1 (one per core) or 1..64")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError(
                f"{where}.log_level: {self.log_level!r} is not debug/info/warning/error"
            )

    def worker_count(self) -> int:
        """How many processes `serve` runs: `workers`, or one per core for -1."""
        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class PatronCategory:
    """A reader category (读者类型) and its limits."""

    name: str
    max_loans: int = 10
    max_holds: int = 5  # 最大可预约图书: open holds a reader may have
    loan_days: int = 30
    renewals: int = 2  # renewals allowed per loan

    def validate(self, where: str) -> None:
        if not self.name:
            raise ConfigError(f"{where}.name: must not be empty")
        for key in ("max_loans", "max_holds", "loan_days"):
            _positive(getattr(self, key), f"{where}.{key}")
        if self.renewals < 0:
            raise ConfigError(f"{where}.renewals: must be 0 or more, got {self.renewals}")


@dataclass(frozen=True)
class ItemTypeSettings:
    """A holding type (馆藏类型): whether it circulates and is lent to other libraries."""

    name: str
    circulating: bool = True
    ill_lendable: bool = False
    # Other words for this type in files staff import (copy CSVs): 中文图书 for 普通外借资料.
    synonyms: tuple[str, ...] = ()

    def validate(self, where: str) -> None:
        if not self.name:
            raise ConfigError(f"{where}.name: must not be empty")
        if not all(self.synonyms):
            raise ConfigError(f"{where}.synonyms: must not contain an empty word")


@dataclass(frozen=True)
class LocationSettings:
    """A holding location (馆藏地) and the circulation desk (借书处) that serves it (the pickup place)."""

    name: str
    desk: str

    def validate(self, where: str) -> None:
        if not self.name or not self.desk:
            raise ConfigError(f"{where}: name and desk must not be empty")


@dataclass(frozen=True)
class HoldSettings:
    request_days: int = 60  # 预约记录的保留天数: a waiting hold expires after
    pickup_days: int = 7  # 预约到书的保留天数: a ready hold waits this long
    no_show_limit: int = 2  # more no-shows than this suspends holds
    suspension_days: int = 60  # how long that hold suspension lasts
    process_every_seconds: int = 300  # how often `serve` runs expiry processing

    def validate(self, where: str) -> None:
        for key in ("request_days", "pickup_days", "suspension_days", "process_every_seconds"):
            _positive(getattr(self, key), f"{where}.{key}")
        if self.no_show_limit < 0:
            raise ConfigError(f"{where}.no_show_limit: must be 0 or more")


# The on-shelf status word when the config names none; a copy loaded or imported without a
# status gets the configured word ([circulation] on_shelf_status), this one only by default.
DEFAULT_ON_SHELF_STATUS = "归还"
# Words other systems use for "on the shelf", read as the on-shelf word in imported files
# unless the config makes one of them a status word or a synonym of its own.
ON_SHELF_SYNONYMS = ("在架", "在架可借")


@dataclass(frozen=True)
class CirculationSettings:
    """Item status words (the library's own) and defaults for data the config does not name."""

    on_shelf_status: str = DEFAULT_ON_SHELF_STATUS
    on_loan_status: str = "借出"
    on_hold_shelf_status: str = "预约到书"
    default_category: str = "本科生"
    default_desk: str = "总服务台"
    unknown_item_types_circulate: bool = True  # copies whose type is not in [[item_types]]
    language: str = "zh"  # default language of reasons and notices: zh | en
    currency: str = "CNY"  # ISO 4217 code of new fees; amounts are minor units (fen)
    fee_limit: int = 0  # fen: owing this much or more refuses checkout; 0 = no limit
    overdue_limit: int = 0  # this many overdue loans or more refuses checkout; 0 = no limit
    # Wrong reader PINs: failures older than this are forgiven (the back-off's threshold and
    # cap are [sip2] pin_failures_before_backoff and pin_backoff_max_seconds).
    pin_forgiveness_seconds: int = 3600
    # CIDR networks of the library's own terminals: a reader's right PIN from here is never
    # refused because of wrong PINs sent from other addresses (desk accounts always are).
    pin_trusted_networks: tuple[str, ...] = ()
    # Status words a copy may carry beyond the three above and the engine's own (丢失, 缺失,
    # 修补, …: STATUS_STATES): a copy with one is not available (SIP2 "other").
    other_status_words: tuple[str, ...] = ()
    # Words in imported files → our status words: { "在库" = "归还" }. 在架 and 在架可借 mean
    # the on-shelf word unless named here or made status words.
    status_synonyms: dict[str, str] = field(default_factory=dict)

    def status_words(self) -> tuple[str, ...]:
        """Every status word a copy may carry, the configured ones first."""
        configured = (self.on_shelf_status, self.on_loan_status, self.on_hold_shelf_status)
        words = [*configured, *self.other_status_words]
        return tuple(words + [w for w in STATUS_STATES if w not in words])

    def validate(self, where: str) -> None:
        words = (self.on_shelf_status, self.on_loan_status, self.on_hold_shelf_status)
        if len(set(words)) != 3 or not all(words):
            raise ConfigError(f"{where}: the three status words must be different and not empty")
        for index, word in enumerate(self.other_status_words):
            if not word.strip() or word in self.other_status_words[:index] or word in words:
                raise ConfigError(
                    f"{where}.other_status_words[{index}]: {word!r} is empty, given twice or"
                    " one of the three status words"
                )
        known = self.status_words()
        folded = {w.strip().lower() for w in known}
        for synonym, word in self.status_synonyms.items():
            if not synonym.strip() or synonym.strip().lower() in folded:
                raise ConfigError(
                    f"{where}.status_synonyms: {synonym!r} is empty or already a status word"
                )
            if word not in known:
                raise ConfigError(
                    f"{where}.status_synonyms.{synonym}: {word!r} is not a status word"
                    f" (known: {', '.join(known)})"
                )
        if self.language not in ("zh", "en"):
            raise ConfigError(f"{where}.language: {self.language!r} is not zh or en")
        code = self.currency
        if len(code) != 3 or not (code.isascii() and code.isalpha() and code.isupper()):
            raise ConfigError(f"{where}.currency: {self.currency!r} is not an ISO 4217 code")
        if self.fee_limit < 0:
            raise ConfigError(f"{where}.fee_limit: must be 0 (no limit) or more")
        if self.overdue_limit < 0:
            raise ConfigError(f"{where}.overdue_limit: must be 0 (no limit) or more")
        _positive(self.pin_forgiveness_seconds, f"{where}.pin_forgiveness_seconds")
        _check_networks(self.pin_trusted_networks, f"{where}.pin_trusted_networks")


# How long one SMTP attempt may take before the sender gives up on it (a silent server).
SMTP_ATTEMPT_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class NoticeSettings:
    """Sending notices: SMTP through Twisted's mail client, retried with backoff."""

    enabled: bool = True
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    from_address: str = "library@example.org"
    username: str = ""
    password: str = ""
    require_tls: bool = False  # STARTTLS required before sending credentials or mail
    send_every_seconds: int = 30
    max_attempts: int = 8  # then the notice is `failed` and listed for staff
    first_retry_seconds: int = 60  # doubles each attempt, at most six hours
    # A sender claims each notice before sending it; another process may take over a claim
    # this old (its sender crashed). Longer than one SMTP attempt may take, so a slow but live
    # sender is never overtaken.
    claim_lease_seconds: int = 300

    def validate(self, where: str) -> None:
        if not 0 < self.smtp_port < 65536:
            raise ConfigError(f"{where}.smtp_port: {self.smtp_port} is not a TCP port")
        if "@" not in self.from_address:
            raise ConfigError(f"{where}.from_address: {self.from_address!r} is not an address")
        for key in ("send_every_seconds", "max_attempts", "first_retry_seconds"):
            _positive(getattr(self, key), f"{where}.{key}")
        if self.claim_lease_seconds <= SMTP_ATTEMPT_TIMEOUT_SECONDS:
            raise ConfigError(
                f"{where}.claim_lease_seconds: must be more than one SMTP attempt's"
                f" {SMTP_ATTEMPT_TIMEOUT_SECONDS} s, or a slow send could be sent twice"
            )


DEFAULT_CATEGORIES: tuple[PatronCategory, ...] = (
    PatronCategory(name="本科生", max_loans=10, max_holds=3, loan_days=30, renewals=1),
    PatronCategory(name="研究生", max_loans=20, max_holds=5, loan_days=60, renewals=2),
    PatronCategory(name="教师", max_loans=40, max_holds=10, loan_days=90, renewals=3),
)
DEFAULT_ITEM_TYPES: tuple[ItemTypeSettings, ...] = (
    ItemTypeSettings(name="参考外借资料", circulating=True, ill_lendable=True),
    ItemTypeSettings(name="普通外借资料", circulating=True, ill_lendable=False),
    ItemTypeSettings(name="阅览资料", circulating=False, ill_lendable=False),
)
DEFAULT_LOCATIONS: tuple[LocationSettings, ...] = (
    LocationSettings(name="综合阅览室-1楼", desk="一楼借书处"),
    LocationSettings(name="中文书库", desk="二楼借书处"),
    LocationSettings(name="外国文学书库", desk="三楼借书处"),
    LocationSettings(name="参考工具书阅览室", desk="一楼借书处"),
    LocationSettings(name="日文书库", desk="三楼借书处"),
)


BUILTIN_PROFILES: tuple[HoldingsProfile, ...] = (
    HoldingsProfile(
        name="libgate",
        item_tag="995",
        barcode=("{$f}",),
        library=("{$b}",),
        location=("{$e}",),
        call_number=("{$k}",),
        item_type=("{$r}",),
        status=("{$s}",),
        description="libgate's own layout (995: $b library, $e location, $k call number,"
        " $r item type, $s status, $f barcode); used by the demo and generated files",
    ),
    HoldingsProfile(
        name="bnu",
        item_tag="906",
        barcode=("{$b}",),
        library=("{905$a}",),
        call_number=("{905$s}", "{$d}/{$e}"),
        description="Beijing Normal University (Aleph) CNMARC: one 906 per copy, $b barcode;"
        " 905$a library, 905$s call number",
    ),
    HoldingsProfile(
        name="marc21-852",
        item_tag="852",
        barcode=("{$p}",),
        library=("{$a}",),
        location=("{$b}",),
        call_number=("{$h}{$i}", "{$k}{$h}"),
        description="MARC21 852 location with $p barcode (partners' MARC21 exports)",
    ),
    HoldingsProfile(name="none", description="records only; copies come from items import"),
)


# --- SIP2 (self-check machines) -----------------------------------------------------------

SIP2_ROLES = ("selfcheck", "desk")
SIP2_ERROR_DETECTION = ("auto", "required", "off")
SIP2_TERMINATORS = ("CR", "CRLF")


@dataclass(frozen=True)
class Sip2Account:
    """One SC terminal login (93 CN/CO) and how libgate talks to it."""

    login: str
    password: str  # "scrypt$…" (libgate hash-password) or plain text for development
    institution: str = "MAIN"  # AO
    location: str = ""  # where the terminal stands (AP/CP); desk of the checkin
    role: str = "selfcheck"  # selfcheck: held returns refused; desk: trapped for the hold
    encoding: str = "utf-8"  # checksums are computed over bytes in this encoding
    terminator: str = "CR"
    error_detection: str = "auto"  # auto: checked when the SC sends AY/AZ
    language: str = "zh"  # screen messages: zh or en
    allowed_addresses: tuple[str, ...] = ()  # CIDR networks; empty = anywhere
    status_before_login: bool = False  # answer 99 from this account's addresses before 93
    send_hold_patron: bool = True  # desk checkin that traps names the hold patron (CY/DA)
    verify_patron_pin: bool = True  # checkout/renew/hold need the reader's PIN (AD) if sent
    # Every reader request must carry the PIN (AD): without it nothing about the reader is
    # told and nothing is done, as with a wrong PIN (for SCs that always ask for one).
    require_patron_pin: bool = False

    def validate(self, where: str) -> None:
        if not self.login:
            raise ConfigError(f"{where}.login: must not be empty")
        if self.role not in SIP2_ROLES:
            raise ConfigError(f"{where}.role: {self.role!r} is not one of {SIP2_ROLES}")
        if self.error_detection not in SIP2_ERROR_DETECTION:
            raise ConfigError(
                f"{where}.error_detection: {self.error_detection!r} is not one of"
                f" {SIP2_ERROR_DETECTION}"
            )
        if self.terminator not in SIP2_TERMINATORS:
            raise ConfigError(f"{where}.terminator: {self.terminator!r} is not CR or CRLF")
        if self.language not in ("zh", "en"):
            raise ConfigError(f"{where}.language: {self.language!r} is not zh or en")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigError(f"{where}.encoding: unknown encoding {self.encoding!r}") from None
        _check_networks(self.allowed_addresses, f"{where}.allowed_addresses")


@dataclass(frozen=True)
class Sip2Settings:
    listen: tuple[str, ...] = ("tcp:6001:interface=127.0.0.1",)  # Twisted endpoint strings
    idle_timeout: int = 900  # seconds without a message; kiosks poll 99 every 5-7 minutes
    login_timeout: int = 60  # seconds to send a good 93
    max_connections: int = 256  # sockets at once, logged in or not
    max_connections_per_address: int = 32  # sockets at once from one address
    # Sockets that have not logged in yet: a small budget, globally and per address, so
    # silent sockets can never take the places of logged-in kiosks.
    max_unauthenticated: int = 32
    max_unauthenticated_per_address: int = 4
    # Kiosk networks (CIDR): exempt from the per-address and pre-login caps, their logins
    # never wait behind other addresses' and are never delayed by failures from elsewhere.
    trusted_networks: tuple[str, ...] = ()
    auth_threads: int = 2  # terminal-password checks (scrypt) run in this separate pool
    max_queued_logins: int = 16  # waiting password checks; a login beyond gets 940 at once
    max_queued_logins_per_address: int = 2
    max_queued_requests: int = 64  # waiting engine calls; a message beyond gets 96 at once
    login_failures_before_delay: int = 5  # per address and per account
    login_delay_max_seconds: int = 60  # the cap of the exponential delay
    max_frame_bytes: int = 8192  # a longer frame is not SIP2: 96, then the rest is skipped
    max_bad_logins: int = 3
    timezone: str = ""  # SIP2 dates are local time here; "" = the machine's zone
    threads: int = 16  # engine calls run in this many threads
    pin_failures_before_backoff: int = 3  # per reader and address, kept in the store
    pin_backoff_max_seconds: int = 900
    accounts: tuple[Sip2Account, ...] = ()

    def validate(self, where: str) -> None:
        for name in (
            "idle_timeout",
            "login_timeout",
            "max_connections",
            "max_bad_logins",
            "max_connections_per_address",
            "max_unauthenticated",
            "max_unauthenticated_per_address",
            "auth_threads",
            "max_queued_logins",
            "max_queued_logins_per_address",
            "max_queued_requests",
            "login_failures_before_delay",
            "login_delay_max_seconds",
        ):
            _positive(getattr(self, name), f"{where}.{name}")
        _check_networks(self.trusted_networks, f"{where}.trusted_networks")
        _positive(self.threads, f"{where}.threads")
        _positive(self.pin_backoff_max_seconds, f"{where}.pin_backoff_max_seconds")
        if self.max_frame_bytes < 256:
            raise ConfigError(f"{where}.max_frame_bytes: at least 256, got {self.max_frame_bytes}")
        if self.timezone:
            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ConfigError(f"{where}.timezone: unknown zone {self.timezone!r}") from None
        _check_unique([a.login for a in self.accounts], f"{where}.accounts", "login")


# --- SRU (partner libraries) --------------------------------------------------------------


@dataclass(frozen=True)
class SruSettings:
    """The SRU server (sru/): one base path per catalogue database, e.g. /main, /japanese."""

    listen: tuple[str, ...] = ("tcp:8080:interface=127.0.0.1",)  # Twisted endpoint strings
    default_records: int = 10  # maximumRecords when the request does not say
    max_records: int = 100  # more is capped, with a diagnostic saying so
    # recordSchema when the request does not say: "auto" sends each record in the MARC schema
    # that labels it truly (MARC 21 → marcxml, CNMARC → marcxchange); or a schema name.
    default_schema: str = "auto"
    # Order of hits when the query has no sortBy: relevance (ranked) or record (catalogue
    # order, as Zebra answers unsorted queries; much cheaper on common words).
    default_sort: str = "relevance"
    default_terms: int = 20  # scan: maximumTerms when the request does not say
    max_terms: int = 100  # scan: more is capped, with a diagnostic saying so
    result_set_ttl: int = 300  # seconds: the longest resultSetTTL granted; 0 = no result sets
    result_sets: int = 1000  # result sets kept in memory at once (least recently used go)
    # Record ids kept per result set (later pages search again): 1000 sets x 1000 ids is 8 MB.
    result_set_max_records: int = 1000
    max_request_bytes: int = 16384  # URL query or POST body; larger requests are refused
    record_cache: int = 10000  # built records kept (MARCXML, DC; never holdings); 0 = none
    threads: int = 8  # search and record building run in this many threads
    # Requests waiting for a thread beyond those running; past it: HTTP 503, diagnostic 2.
    max_queued: int = 32
    max_connections: int = 256  # open at once; more are closed at once (one log line a burst)
    max_connections_per_address: int = 32  # from one IPv4 address or IPv6 /64
    uncapped_networks: tuple[str, ...] = ()  # CIDR networks the per-address cap skips
    header_timeout: int = 10  # seconds for the request line and headers, however they trickle
    body_timeout: int = 30  # seconds for a POST body after the headers
    keepalive_timeout: int = 15  # seconds a kept-alive connection may wait for its next request

    def validate(self, where: str) -> None:
        _positive(self.max_queued, f"{where}.max_queued")
        _check_http_listener(self, where)
        for name in (
            "default_records",
            "max_records",
            "default_terms",
            "max_terms",
            "result_sets",
            "result_set_max_records",
            "threads",
        ):
            _positive(getattr(self, name), f"{where}.{name}")
        if self.default_records > self.max_records:
            raise ConfigError(f"{where}.default_records: more than max_records")
        if self.default_terms > self.max_terms:
            raise ConfigError(f"{where}.default_terms: more than max_terms")
        if self.max_records > 1000:  # the catalogue's largest page
            raise ConfigError(f"{where}.max_records: at most 1000, got {self.max_records}")
        if self.max_terms > 1000:
            raise ConfigError(f"{where}.max_terms: at most 1000, got {self.max_terms}")
        if self.result_set_ttl < 0:
            raise ConfigError(f"{where}.result_set_ttl: must be 0 or more")
        if self.default_sort not in ("relevance", "record"):
            raise ConfigError(
                f"{where}.default_sort: {self.default_sort!r} is not relevance or record"
            )
        if self.record_cache < 0:
            raise ConfigError(f"{where}.record_cache: must be 0 or more")
        # default_schema is checked against the schema table by sru/ when the listener is
        # built: gateway/ does not import protocol packages.


# --- Z39.50 (partner libraries) -------------------------------------------------------------


@dataclass(frozen=True)
class Z3950Settings:
    """The Z39.50 target (z3950/): databases are the catalogue databases by name."""

    # Twisted endpoint strings. Twisted's accept queue is 50 by default: under a flood of
    # connects a full queue drops a partner's SYN, and its connect waits for the 1 s resend.
    listen: tuple[str, ...] = ("tcp:2100:interface=127.0.0.1:backlog=1024",)
    idle_timeout: int = 600  # seconds without an APDU before Close (lackOfActivity)
    init_timeout: int = 30  # seconds from connecting to a complete Init APDU, else Close
    max_sessions: int = 100  # associations at once; more are sent Close (resources)
    # Connections at once from one IPv4 address or IPv6 /64 (the rest: Close).
    max_sessions_per_peer: int = 20
    # Connections without an accepted Init yet: a small budget, globally and per address, so
    # silent sockets can never take the places of working sessions.
    max_uninitialised: int = 32
    max_uninitialised_per_peer: int = 8
    # Partner networks (CIDR), e.g. a union catalogue's fan-out: exempt from the per-address
    # and pre-Init caps, never from max_sessions.
    trusted_networks: tuple[str, ...] = ()
    # APDUs waiting for a search thread (beyond those running), all sessions together; one
    # more is answered with Close (resources) at once instead of waiting.
    max_queued_requests: int = 32
    max_result_sets: int = 10  # result sets per session; past it the least recently used goes
    result_set_max_records: int = 100  # record ids kept per set; later pages search again
    preferred_message_size: int = 1048576  # the most we agree to in Init, bytes
    exceptional_record_size: int = 4194304  # the largest single record we send, bytes
    max_request_bytes: int = 65536  # an incoming APDU longer than this is a protocol error
    max_present: int = 1000  # records in one Present or piggy-backed Search response
    max_scan_terms: int = 100  # terms in one Scan response
    # Order of hits when no term asks for ranking (Bib-1 relation 102) and no Sort was done:
    # record (catalogue order, as Zebra and the Bib-1 semantics) or relevance (always rank).
    default_sort: str = "record"
    legacy_encoding: str = "gb18030"  # terms that are not UTF-8 are read as this
    threads: int = 4  # searches and record building run in this many threads

    def validate(self, where: str) -> None:
        for name in (
            "idle_timeout",
            "init_timeout",
            "max_sessions",
            "max_sessions_per_peer",
            "max_uninitialised",
            "max_uninitialised_per_peer",
            "max_queued_requests",
            "max_result_sets",
            "result_set_max_records",
            "max_present",
            "max_scan_terms",
            "threads",
        ):
            _positive(getattr(self, name), f"{where}.{name}")
        _check_networks(self.trusted_networks, f"{where}.trusted_networks")
        if self.preferred_message_size < 4096:
            raise ConfigError(f"{where}.preferred_message_size: at least 4096")
        if self.exceptional_record_size < self.preferred_message_size:
            raise ConfigError(f"{where}.exceptional_record_size: less than preferred_message_size")
        if self.max_request_bytes < 1024:
            raise ConfigError(f"{where}.max_request_bytes: at least 1024")
        if self.max_present > 1000 or self.max_scan_terms > 1000:
            raise ConfigError(f"{where}.max_present and max_scan_terms: at most 1000")
        if self.result_set_max_records > 100000:
            raise ConfigError(f"{where}.result_set_max_records: at most 100000")
        if self.default_sort not in ("relevance", "record"):
            raise ConfigError(
                f"{where}.default_sort: {self.default_sort!r} is not relevance or record"
            )
        try:
            codecs.lookup(self.legacy_encoding)
        except LookupError:
            raise ConfigError(
                f"{where}.legacy_encoding: unknown encoding {self.legacy_encoding!r}"
            ) from None


# --- Interlibrary loan (ISO 18626) ---------------------------------------------------------

AGENCY_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]*:\S+$")  # TYPE:VALUE, e.g. ISIL:CN-SHL


@dataclass(frozen=True)
class IllPartner:
    """A partner library: only these may request from us, and we request from these."""

    agency_id: str  # TYPE:VALUE, e.g. "ISIL:CN-PKU"
    name: str = ""
    url: str = ""  # its ISO 18626 endpoint, e.g. http://ill.pku.example/iso18626

    def validate(self, where: str) -> None:
        if not AGENCY_ID.match(self.agency_id):
            raise ConfigError(f"{where}.agency_id: {self.agency_id!r} is not TYPE:VALUE")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.url: {self.url!r} is not an http(s) URL")


@dataclass(frozen=True)
class IllSettings:
    """Interlibrary loan over ISO 18626 (ill/), as lender and as borrower."""

    # Twisted endpoint strings; none by default: a site that lends or borrows says where.
    listen: tuple[str, ...] = ()
    agency_id: str = "ISIL:CN-SHL"  # ours, TYPE:VALUE
    request_prefix: str = "ST"  # our request numbers: ST00000001, ...
    suspended: bool = False  # requests are refused (Unfilled / PolicyProblem)
    loan_days: int = 45  # a loan to a partner
    renewals: int = 0  # renewals a partner may have per loan
    service_fee: int = 0  # fen charged to our reader per request we file as borrower
    partners: tuple[IllPartner, ...] = ()
    max_message_bytes: int = 102400  # a larger POST is answered BadlyFormedMessage
    max_connections: int = 64
    max_connections_per_address: int = 16
    header_timeout: int = 10  # seconds
    body_timeout: int = 30  # seconds
    threads: int = 4  # message handling runs in this many threads
    send_every_seconds: int = 10  # how often queued outgoing messages are tried
    send_timeout: int = 30  # seconds for one POST to a partner
    max_attempts: int = 0  # 0: retried until delivered (nothing is lost)
    first_retry_seconds: int = 30  # doubles each attempt, at most an hour

    def validate(self, where: str) -> None:
        if not AGENCY_ID.match(self.agency_id):
            raise ConfigError(f"{where}.agency_id: {self.agency_id!r} is not TYPE:VALUE")
        if not re.fullmatch(r"[A-Za-z]{1,8}", self.request_prefix):
            raise ConfigError(f"{where}.request_prefix: 1-8 letters, got {self.request_prefix!r}")
        for name in (
            "loan_days",
            "max_message_bytes",
            "max_connections",
            "max_connections_per_address",
            "header_timeout",
            "body_timeout",
            "threads",
            "send_every_seconds",
            "send_timeout",
            "first_retry_seconds",
        ):
            _positive(getattr(self, name), f"{where}.{name}")
        if self.renewals < 0 or self.service_fee < 0 or self.max_attempts < 0:
            raise ConfigError(f"{where}: renewals, service_fee and max_attempts are 0 or more")
        for i, partner in enumerate(self.partners):
            partner.validate(f"{where}.partners[{i}]")
        _check_unique([p.agency_id for p in self.partners], f"{where}.partners", "agency_id")

    def partner(self, agency_id: str) -> IllPartner | None:
        """The configured partner with this agency id (TYPE:VALUE, type case-insensitive)."""
        wanted = _agency_key(agency_id)
        return next((p for p in self.partners if _agency_key(p.agency_id) == wanted), None)


def _agency_key(agency_id: str) -> tuple[str, str]:
    kind, _, value = agency_id.partition(":")
    return kind.upper(), value


# --- Union search (partner catalogues over SRU and Z39.50) ---------------------------------

Z3950_URL = re.compile(r"^z3950:(?P<host>[^\s:/]+):(?P<port>[0-9]{1,5})/(?P<database>\S+)$")
SRU_URL = re.compile(r"^https?://[^\s/:]+(?::[0-9]{1,5})?(?:/\S*)?$")
UNION_SYNTAXES = ("unimarc", "usmarc", "xml", "opac")
SRU_VERSIONS = ("1.1", "1.2", "2.0")


@dataclass(frozen=True)
class UnionTarget:
    """A partner catalogue union search asks (`[[union.targets]]`; these keys are a contract)."""

    name: str
    url: str  # z3950:HOST:PORT/DATABASE, or an SRU base URL http://HOST:PORT/PATH
    timeout: float = 10.0  # seconds this target may take to answer a search
    agency_id: str = ""  # the partner's ILL id (TYPE:VALUE), to request what it holds
    sru_version: str = "1.2"  # SRU targets: the version asked for
    # The record syntax asked for: unimarc | usmarc | xml, or opac (the record with its
    # holdings and circulation data: Z39.50's OPAC syntax, SRU's opacxml schema), whose copies
    # the engine then judges for ILL.
    syntax: str = "unimarc"
    encoding: str = "utf-8"  # records and terms of a legacy Z39.50 target, e.g. gbk
    max_records: int = 20  # records fetched from this target per search
    enabled: bool = True
    # A [[holdings_profiles]] name: where this target's MARC records carry their copies (906,
    # 995, 852 …), read when it sends MARC; "" = its MARC records' copies are not read.
    holdings_profile: str = ""

    @property
    def protocol(self) -> str:
        return "z3950" if self.url.startswith("z3950:") else "sru"

    def validate(self, where: str) -> None:
        if not self.name.strip():
            raise ConfigError(f"{where}.name: must not be empty")
        if not (Z3950_URL.match(self.url) or SRU_URL.match(self.url)):
            raise ConfigError(
                f"{where}.url: {self.url!r} is neither z3950:HOST:PORT/DATABASE nor an"
                " http(s):// SRU base URL"
            )
        if not 0 < self.timeout <= 600:
            raise ConfigError(f"{where}.timeout: seconds, more than 0 and at most 600")
        if self.agency_id and not AGENCY_ID.match(self.agency_id):
            raise ConfigError(f"{where}.agency_id: {self.agency_id!r} is not TYPE:VALUE")
        if self.sru_version not in SRU_VERSIONS:
            raise ConfigError(f"{where}.sru_version: one of {', '.join(SRU_VERSIONS)}")
        if self.syntax not in UNION_SYNTAXES:
            raise ConfigError(f"{where}.syntax: one of {', '.join(UNION_SYNTAXES)}")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigError(f"{where}.encoding: unknown encoding {self.encoding!r}") from None
        if not 1 <= self.max_records <= 1000:
            raise ConfigError(f"{where}.max_records: 1 to 1000, got {self.max_records}")


@dataclass(frozen=True)
class UnionSettings:
    """Union search across the partner catalogues (union/)."""

    targets: tuple[UnionTarget, ...] = ()
    timeout: float = 15.0  # seconds: a search returns what arrived by then
    # Z39.50 associations kept open between searches, per target (0: a new one per search),
    # and how long one is kept unused before it is closed (Close, then hang up).
    idle_connections_per_target: int = 2
    idle_seconds: float = 60.0

    def validate(self, where: str) -> None:
        if not 0 < self.timeout <= 600:
            raise ConfigError(f"{where}.timeout: seconds, more than 0 and at most 600")
        if not 0 <= self.idle_connections_per_target <= 100:
            raise ConfigError(
                f"{where}.idle_connections_per_target: 0 to 100,"
                f" got {self.idle_connections_per_target}"
            )
        if not 0 < self.idle_seconds <= 3600:
            raise ConfigError(f"{where}.idle_seconds: seconds, more than 0 and at most 3600")
        _check_unique([t.name for t in self.targets], f"{where}.targets", "name")

    def target(self, name: str) -> UnionTarget | None:
        return next((t for t in self.targets if t.name == name), None)


# --- The readers' portal (web OPAC and My Library) --------------------------------------------


@dataclass(frozen=True)
class WebSettings:
    """The readers' portal (web/): search, record pages, My Library, the ILL form."""

    # Twisted endpoint strings; none by default: a site that serves readers says where.
    listen: tuple[str, ...] = ()
    session_idle_minutes: int = 30  # a session unused this long ends (the reader logs in again)
    library_name: str = "本馆"  # 馆址 of a copy whose record gives no library
    library_name_en: str = "Our library"
    timezone: str = ""  # dates are shown in this zone; "" = the machine's zone
    page_size: int = 20  # results per page (10, 20 or 50 may be chosen)
    threads: int = 4  # page building runs in this many threads
    max_connections: int = 256
    max_connections_per_address: int = 32
    uncapped_networks: tuple[str, ...] = ()  # CIDR networks the per-address cap skips
    max_request_bytes: int = 16384  # a form or URL larger than this is refused (413/414)
    header_timeout: int = 10  # seconds
    body_timeout: int = 30  # seconds
    keepalive_timeout: int = 15  # seconds
    # Union searches followed live at once (each holds a connection to every partner searched);
    # more are told the system is busy. Searches without script wait in a page thread instead.
    max_union_searches: int = 16
    # ... and from one address (each opens a connection to every partner searched).
    max_union_searches_per_address: int = 2

    def validate(self, where: str) -> None:
        for name in (
            "session_idle_minutes",
            "page_size",
            "threads",
            "max_union_searches",
            "max_union_searches_per_address",
        ):
            _positive(getattr(self, name), f"{where}.{name}")
        _check_http_listener(self, where)
        if self.page_size > 100:
            raise ConfigError(f"{where}.page_size: at most 100, got {self.page_size}")
        if self.timezone:
            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ConfigError(f"{where}.timezone: unknown zone {self.timezone!r}") from None


# --- Operations: health, readiness and metrics --------------------------------------------


@dataclass(frozen=True)
class OpsSettings:
    """The ops listener (gateway/ops.py): /health, /ready and /metrics for monitoring."""

    # Twisted endpoint strings; none by default: keep it on a private interface.
    listen: tuple[str, ...] = ()
    # /ready fails when more notices than this wait to be sent (queued, not yet sent).
    max_notice_backlog: int = 1000
    # /ready fails a check that takes longer than this (a store that does not answer).
    check_timeout: float = 5.0
    max_connections: int = 16
    max_connections_per_address: int = 8
    uncapped_networks: tuple[str, ...] = ()
    max_request_bytes: int = 4096
    header_timeout: int = 10
    body_timeout: int = 10
    keepalive_timeout: int = 15

    def validate(self, where: str) -> None:
        if self.max_notice_backlog < 0:
            raise ConfigError(f"{where}.max_notice_backlog: must be 0 or more")
        if self.check_timeout <= 0:
            raise ConfigError(f"{where}.check_timeout: must be a positive number of seconds")
        _check_http_listener(self, where)
        for index, endpoint in enumerate(self.listen):
            _check_endpoint(endpoint, f"{where}.listen[{index}]")


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings = field(default_factory=StorageSettings)
    databases: tuple[DatabaseSettings, ...] = (
        DatabaseSettings(name="main", title="中文书目", title_en="Main catalogue"),
        DatabaseSettings(name="japanese", title="日文书目", title_en="Japanese catalogue"),
    )
    holdings_profiles: tuple[HoldingsProfile, ...] = BUILTIN_PROFILES
    loader: LoaderSettings = field(default_factory=LoaderSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    patron_categories: tuple[PatronCategory, ...] = DEFAULT_CATEGORIES
    item_types: tuple[ItemTypeSettings, ...] = DEFAULT_ITEM_TYPES
    locations: tuple[LocationSettings, ...] = DEFAULT_LOCATIONS
    holds: HoldSettings = field(default_factory=HoldSettings)
    circulation: CirculationSettings = field(default_factory=CirculationSettings)
    notices: NoticeSettings = field(default_factory=NoticeSettings)
    # A protocol listens only when its section is in the file (`[sip2]` alone listens on its
    # default port): without a config, or without the section, nothing is opened for it.
    sip2: Sip2Settings = field(default_factory=lambda: Sip2Settings(listen=()))
    sru: SruSettings = field(default_factory=lambda: SruSettings(listen=()))
    z3950: Z3950Settings = field(default_factory=lambda: Z3950Settings(listen=()))
    ill: IllSettings = field(default_factory=IllSettings)
    web: WebSettings = field(default_factory=WebSettings)
    union: UnionSettings = field(default_factory=UnionSettings)
    ops: OpsSettings = field(default_factory=OpsSettings)
    source: str = "built-in defaults"
    # `[service]` keys `serve`'s command line set in place of the file's (--log-format,
    # --log-file): a reload (gateway/reload.py) reads the file again and keeps these.
    command_line: tuple[tuple[str, str], ...] = ()

    def with_command_line(self, keys: tuple[tuple[str, str], ...]) -> Settings:
        """These settings with `[service]` keys set as `serve`'s command line set them."""
        if not keys:
            return self
        changed: dict[str, Any] = dict(keys)  # text keys only: log_format, log_file
        service = dataclasses.replace(self.service, **changed)
        return dataclasses.replace(self, service=service, command_line=keys)

    def database(self, name: str) -> DatabaseSettings:
        for database in self.databases:
            if database.name == name:
                return database
        known = ", ".join(d.name for d in self.databases)
        raise ConfigError(f"unknown database {name!r}; configured: {known}")

    def profile(self, name: str) -> HoldingsProfile:
        for profile in self.holdings_profiles:
            if profile.name == name:
                return profile
        known = ", ".join(p.name for p in self.holdings_profiles)
        raise ConfigError(f"unknown holdings profile {name!r}; known: {known}")


# Top-level keys and how to build them: (section class, is an array of tables).
SECTIONS: dict[str, tuple[type, bool]] = {
    "storage": (StorageSettings, False),
    "databases": (DatabaseSettings, True),
    "holdings_profiles": (HoldingsProfile, True),
    "loader": (LoaderSettings, False),
    "service": (ServiceSettings, False),
    "patron_categories": (PatronCategory, True),
    "item_types": (ItemTypeSettings, True),
    "locations": (LocationSettings, True),
    "holds": (HoldSettings, False),
    "circulation": (CirculationSettings, False),
    "notices": (NoticeSettings, False),
    "sip2": (Sip2Settings, False),
    "sru": (SruSettings, False),
    "z3950": (Z3950Settings, False),
    "ill": (IllSettings, False),
    "web": (WebSettings, False),
    "union": (UnionSettings, False),
    "ops": (OpsSettings, False),
}


def _positive(value: int, where: str) -> None:
    if value <= 0:
        raise ConfigError(f"{where}: must be a positive number, got {value}")


def _check_http_listener(section: Any, where: str) -> None:
    """The limits every HTTP listener section has ([sru], [web]): connection caps, phase
    deadlines, networks the per-address cap skips, and the largest request."""
    for name in (
        "max_connections",
        "max_connections_per_address",
        "header_timeout",
        "body_timeout",
        "keepalive_timeout",
    ):
        _positive(getattr(section, name), f"{where}.{name}")
    _check_networks(section.uncapped_networks, f"{where}.uncapped_networks")
    if section.max_request_bytes < 1024:
        raise ConfigError(f"{where}.max_request_bytes: at least 1024")


def _check_endpoint(endpoint: str, where: str) -> None:
    """A listen string Twisted can parse (the bind itself is tried at start)."""
    from twisted.internet import endpoints
    from twisted.internet.testing import MemoryReactor

    try:
        parsed = endpoints.serverFromString(MemoryReactor(), endpoint)
    except (ValueError, TypeError, KeyError, OverflowError) as error:
        raise ConfigError(f"{where}: {endpoint!r} is not a listen string ({error})") from None
    port = getattr(parsed, "_port", None)  # TCP and SSL endpoints; Twisted takes any number
    if isinstance(port, int) and not 0 <= port <= 65535:
        raise ConfigError(f"{where}: {endpoint!r}: port {port} is not between 0 and 65535")


def _check_networks(networks: tuple[str, ...], where: str) -> None:
    for index, network in enumerate(networks):
        try:
            parse_network(network)
        except ValueError:
            raise ConfigError(
                f"{where}[{index}]: {network!r} is not an address or network"
            ) from None


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected text, got {type(value).__name__} {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return value
    if annotation is float:  # seconds: 5 and 2.5 both read
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(annotation)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return build_section(annotation, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return {str(k): _coerce(v, str, f"{where}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, options[0], where)
    raise ConfigError(f"{where}: unsupported setting type {annotation!r}")  # our bug


def build_section(cls: type, data: Any, where: str) -> Any:
    """A settings dataclass from a TOML table; unknown keys and bad values raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")
    values = {}
    for name, spec in known.items():
        if name in data:
            values[name] = _coerce(data[name], hints[name], f"{where}.{name}")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {name!r}")
    section = cls(**values)
    validate = getattr(section, "validate", None)
    if validate is not None:
        validate(where)
    if isinstance(section, HoldingsProfile):
        # The profile lives with its template grammar in marc, which knows nothing of config
        # errors: it lists its problems and the first one is reported here.
        first = next(section.problems(), None)
        if first is not None:
            raise ConfigError(f"{where}.{first.attribute}: {first.why}")
    return section


def settings_from_dict(data: dict[str, Any], source: str = "<dict>") -> Settings:
    values: dict[str, Any] = {"source": source}
    for key, value in data.items():
        if key not in SECTIONS:
            raise ConfigError(
                f"{source}: unknown section or key {key!r} (known: {', '.join(SECTIONS)})"
            )
        cls, is_array = SECTIONS[key]
        if is_array:
            if not isinstance(value, list):
                raise ConfigError(f"{source}: [[{key}]] must be an array of tables")
            values[key] = tuple(
                build_section(cls, item, f"{key}[{i}]") for i, item in enumerate(value)
            )
        else:
            values[key] = build_section(cls, value, key)
    if "holdings_profiles" in values:
        # The file extends the built-in profiles; a profile of the same name replaces one.
        own = {p.name: p for p in values["holdings_profiles"]}
        merged = [own.pop(p.name, p) for p in BUILTIN_PROFILES]
        values["holdings_profiles"] = tuple(merged + list(own.values()))
    settings = Settings(**values)
    _check_unique([d.name for d in settings.databases], "databases", "name")
    _check_unique([p.name for p in settings.holdings_profiles], "holdings_profiles", "name")
    _check_unique([c.name for c in settings.patron_categories], "patron_categories", "name")
    _check_unique([t.name for t in settings.item_types], "item_types", "name")
    _check_item_type_synonyms(settings.item_types)
    _check_unique([loc.name for loc in settings.locations], "locations", "name")
    if settings.circulation.default_category not in {c.name for c in settings.patron_categories}:
        raise ConfigError(
            f"circulation.default_category: {settings.circulation.default_category!r} is not a"
            " [[patron_categories]] name"
        )
    if not settings.databases:
        raise ConfigError("databases: at least one [[databases]] entry is needed")
    names = {p.name for p in settings.holdings_profiles}
    for index, database in enumerate(settings.databases):
        if database.profile not in names:
            raise ConfigError(
                f"databases[{index}].profile: unknown holdings profile {database.profile!r}"
            )
    for index, target in enumerate(settings.union.targets):
        if target.holdings_profile and target.holdings_profile not in names:
            raise ConfigError(
                f"union.targets[{index}].holdings_profile: unknown holdings profile"
                f" {target.holdings_profile!r}"
            )
    return settings


def _check_item_type_synonyms(item_types: tuple[ItemTypeSettings, ...]) -> None:
    """A synonym names one type: it is no type's name and no other type's synonym."""
    owner = {t.name: t.name for t in item_types}
    for index, item_type in enumerate(item_types):
        for word in item_type.synonyms:
            if word in owner and owner[word] != item_type.name:
                raise ConfigError(
                    f"item_types[{index}].synonyms: {word!r} already names {owner[word]!r}"
                )
            owner[word] = item_type.name


def _check_unique(names: list[str], section: str, key: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise ConfigError(f"{section}[{index}].{key}: {name!r} is defined twice")
        seen.add(name)


def config_path(explicit: str | None) -> Path | None:
    """The file to read: explicit, then $LIBGATE_CONFIG, then ./libgate.toml, else None."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.exists() else None


def load_settings(explicit: str | None = None) -> Settings:
    path = config_path(explicit)
    if path is None:
        return Settings()
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    try:
        return settings_from_dict(data, str(path))
    except ConfigError as error:
        message = str(error)
        if not message.startswith(str(path)):
            message = f"{path}: {message}"
        raise ConfigError(message) from None
