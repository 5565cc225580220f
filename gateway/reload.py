"""SIGHUP: read the config file again and apply, in the running process, what may change
without dropping a connection; report what needs a restart.

`LIVE` below is the one table of what a reload applies. Every other key needs a restart: a
reload that finds one changed logs one line for it ("reload: [sip2] listen changed; restart
to apply") and keeps the value in force. The file is validated as `check-config` does (every
key, every listen string and TLS file); a file that does not pass is one log line, and the
process goes on with the settings in force, nothing applied.

Applying is in two steps so a reload is never half applied: each live part first *prepares*
from the settings to be in force (building a policy, say; this may fail, and then nothing is
applied), then every part *commits*, which only swaps an object in place. Who holds what at run
time, and its seam, is wired in gateway/app.py (the composition root):

- SIP2 accounts: `sip2.accounts.Accounts.use`; sessions read it per message.
- ILL partners and lending terms: `InterlibraryLoan.reconfigure`.
- union targets, [union] options, holdings profiles: `ReactorUnionSearcher.reconfigure`.
- circulation policies: `Engine.use_policy` (one Policy, swapped whole between transactions).
- the log level: the root logger's.

Under a supervisor (`[service] workers` > 1) the supervisor reads and checks the file first
(a bad one is reported once, and the workers are not disturbed), reports what needs a
restart, then forwards SIGHUP to every worker, and each applies the live parts itself.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config import SECTIONS, ConfigError, Settings, Sip2Account, load_settings
from gateway.listen_checks import listen_problems

log = logging.getLogger("libgate.reload")

NO_FILE = Settings().source  # the source of settings read from no file (built-in defaults)

# What a reload applies, by config key: a whole section ("union": every key of [union] and
# [[union.targets]]) or one key ("sip2.accounts"), and the part of the process it goes to.
# Anything not named here needs a restart (listeners, storage, thread pools, workers, caps...).
POLICIES = "policies"
LIVE: dict[str, str] = {
    "sip2.accounts": "sip2 accounts",
    "ill.partners": "ill partners",
    "ill.suspended": "ill partners",
    "ill.loan_days": "ill partners",
    "ill.renewals": "ill partners",
    "ill.service_fee": "ill partners",
    "union": "union targets",
    "holdings_profiles": "union targets",  # in a serving process, read by union search only
    # Whatever Policy.from_settings reads (gateway/circulation/policy.py).
    "patron_categories": POLICIES,
    "item_types": POLICIES,
    "locations": POLICIES,
    "circulation": POLICIES,
    "holds.request_days": POLICIES,
    "holds.pickup_days": POLICIES,
    "holds.no_show_limit": POLICIES,
    "holds.suspension_days": POLICIES,
    "sip2.pin_failures_before_backoff": POLICIES,
    "sip2.pin_backoff_max_seconds": POLICIES,
    "service.log_level": "log level",
}
# The order parts are applied and named in: the policy before the ILL context that holds it.
PART_ORDER = ("sip2 accounts", POLICIES, "ill partners", "union targets", "log level")

# A live part's first step: from the settings to be in force, the swap that applies them.
Prepare = Callable[[Settings], Callable[[], None]]


@dataclass(frozen=True)
class Change:
    """One key (or array of tables) whose value differs between the settings in force and
    the file."""

    key: str  # "sip2.listen", or "databases" for an array of tables
    part: str | None  # the LIVE part that applies it; None: needs a restart

    @property
    def where(self) -> str:
        """As the config file spells it: `[sip2] listen`, `[[databases]]`."""
        section, _, name = self.key.partition(".")
        return f"[{section}] {name}" if name else f"[[{section}]]"


def live_part(key: str) -> str | None:
    return LIVE.get(key) or LIVE.get(key.partition(".")[0])


def changes(old: Settings, new: Settings) -> list[Change]:
    """Every key whose value differs, in the config's order of sections."""
    found: list[Change] = []
    for section, (_cls, is_array) in SECTIONS.items():
        before, after = getattr(old, section), getattr(new, section)
        if before == after:
            continue
        if is_array:
            found.append(Change(section, live_part(section)))
            continue
        for field in dataclasses.fields(before):
            if getattr(before, field.name) != getattr(after, field.name):
                key = f"{section}.{field.name}"
                found.append(Change(key, live_part(key)))
    return found


def in_force(old: Settings, new: Settings, found: list[Change]) -> Settings:
    """`old` with the live changes of `new` in place: what the process runs with after the
    reload (a key that needs a restart keeps its old value until then)."""
    settings = old
    for change in found:
        if change.part is None:
            continue
        section, _, name = change.key.partition(".")
        value = getattr(new, section)
        if name:
            value = dataclasses.replace(getattr(settings, section), **{name: getattr(value, name)})
        settings = dataclasses.replace(settings, **{section: value})
    return settings


def read_config(current: Settings) -> Settings:
    """The file `current` was read from, read and checked again as `serve` and `check-config`
    check it, with `serve`'s command-line settings kept; ConfigError says what is wrong."""
    if current.source == NO_FILE:
        raise ConfigError("serving the built-in defaults: there is no config file to read again")
    try:
        fresh = load_settings(current.source).with_command_line(current.command_line)
    except OSError as error:  # not FileNotFoundError, which load_settings words itself
        raise ConfigError(f"{current.source}: cannot be read ({error.strerror})") from None
    problems = listen_problems(fresh, at_start=False)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"{current.source}: {problems[0]}{more}")
    return fresh


def read_or_report(current: Settings, logger: logging.Logger = log) -> Settings | None:
    """`read_config`, or None when the file cannot be used (one line in `logger`: the
    process goes on with `current`)."""
    try:
        return read_config(current)
    except ConfigError as error:
        logger.error("reload: %s; still serving with the settings in force", error)
        return None


def account_changes(old: tuple[Sip2Account, ...], new: tuple[Sip2Account, ...]) -> str:
    """`+added -removed ~changed` SIP2 accounts, by login."""
    before = {a.login: a for a in old}
    after = {a.login: a for a in new}
    added = len(after.keys() - before.keys())
    removed = len(before.keys() - after.keys())
    changed = sum(1 for login in before.keys() & after.keys() if before[login] != after[login])
    return f"+{added} -{removed} ~{changed}"


def set_log_level(settings: Settings) -> Callable[[], None]:
    """The log level's part: the root logger's level, as install_logging set it at start."""
    level = settings.service.log_level.upper()  # a name the config checked
    return lambda: logging.getLogger().setLevel(level)


class Reloader:
    """The settings in force in this process and the parts a reload hands new ones to."""

    def __init__(self, settings: Settings, *, reports_restarts: bool = True) -> None:
        self.settings = settings
        # False in a worker: its supervisor has already reported what needs a restart.
        self.reports_restarts = reports_restarts
        self.parts: dict[str, list[Prepare]] = {"log level": [set_log_level]}

    def add(self, part: str, prepare: Prepare) -> None:
        """`prepare` takes part `part` (a LIVE value) of every reload."""
        assert part in PART_ORDER, part
        self.parts.setdefault(part, []).append(prepare)

    def reload(self) -> list[Change] | None:
        """Read the file again and apply its live changes; what changed, or None when the
        file could not be used (logged; nothing applied)."""
        fresh = read_or_report(self.settings)
        return None if fresh is None else self.apply(fresh)

    def apply(self, fresh: Settings) -> list[Change] | None:
        found = changes(self.settings, fresh)
        if not found:
            log.info("reload: %s unchanged", self.settings.source)
            return found
        target = in_force(self.settings, fresh, found)
        parts = [p for p in PART_ORDER if any(c.part == p for c in found)]
        try:
            commits = [prepare(target) for part in parts for prepare in self.parts.get(part, [])]
        except Exception as error:  # noqa: BLE001 - a part that cannot take them: none does
            log.error("reload: cannot apply the new settings (%s); nothing applied", error)
            return None
        for commit in commits:
            commit()
        restart = [c for c in found if c.part is None]
        if self.reports_restarts:
            report_restarts(restart)
        told = restart if self.reports_restarts else []  # else the supervisor's lines said it
        log.info("reload: %s", summary(self.settings, target, parts, told))
        self.settings = target
        return found


def report_restarts(restart: list[Change]) -> None:
    for change in restart:
        log.warning("reload: %s changed; restart to apply", change.where)


def summary(old: Settings, new: Settings, parts: list[str], restart: list[Change]) -> str:
    """The one line a reload ends with: what it applied, what waits for a restart."""
    named = [
        f"{p} ({account_changes(old.sip2.accounts, new.sip2.accounts)})"
        if p == "sip2 accounts"
        else p
        for p in parts
    ]
    line = f"applied {', '.join(named)}" if named else "applied nothing"
    if restart:
        line += f"; restart needed for: {', '.join(c.where for c in restart)}"
    return line
