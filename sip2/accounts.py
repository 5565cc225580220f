"""SC terminal accounts: who may log in (93), from where, and who may ask 99 before login."""

from __future__ import annotations

import hmac
from enum import StrEnum

from gateway.circulation.pins import check_pin, hash_pin
from gateway.config import Sip2Account, Sip2Settings
from gateway.networks import Networks

HASHED_PREFIX = "scrypt$"


class Sip2Role(StrEnum):
    """What stands behind an account (its `role` in the config): the values are the config's."""

    SELF_CHECK = "selfcheck"  # a kiosk: the engine refuses returns of copies a hold waits for
    DESK = "desk"  # staff at a circulation desk: the engine traps those returns for the hold


def role_of(account: Sip2Account) -> Sip2Role:
    return Sip2Role(account.role)


def password_matches(given: str, stored: str) -> bool:
    """A stored `scrypt$…` hash is checked as a hash; anything else is a development
    plain-text password, compared in constant time."""
    if stored.startswith(HASHED_PREFIX):
        return check_pin(given, stored)
    return hmac.compare_digest(given.encode("utf-8"), stored.encode("utf-8"))


def address_allowed(account: Sip2Account, peer_host: str) -> bool:
    # Not an IP peer (a UNIX socket): only accounts open to anywhere.
    return not account.allowed_addresses or peer_host in Networks(account.allowed_addresses)


class Accounts:
    """The accounts in force. A config reload (gateway/reload.py) hands new ones to `use`;
    every session holds this object and reads it per message, so a new account logs in at
    once and a removed one's sessions end at their next message (`Session.receive`)."""

    def __init__(self, settings: Sip2Settings) -> None:
        self.by_login = {account.login: account for account in settings.accounts}
        # An unknown login is checked against a real hash, so it costs what a known one
        # costs: the time of a refusal does not tell which logins exist.
        self._decoy = hash_pin("no account has this password")

    def use(self, accounts: tuple[Sip2Account, ...]) -> None:
        """These accounts from the next login and the next message on: one new table,
        swapped whole (the password checks in the auth threads read one or the other)."""
        self.by_login = {account.login: account for account in accounts}

    def still_valid(self, account: Sip2Account, peer_host: str) -> Sip2Account | None:
        """What a session logged in as `account` is now: the account in force under its login
        (its other settings changed or not), or None when a login like the session's would no
        longer pass (removed, another password, an address no longer allowed)."""
        current = self.by_login.get(account.login)
        if current is account or current == account:
            return current
        if current is None or current.password != account.password:
            return None
        return current if address_allowed(current, peer_host) else None

    def authenticate(self, login: str, password: str, peer_host: str) -> Sip2Account | None:
        account = self.by_login.get(login)
        if account is None:
            password_matches(password, self._decoy)
            return None
        if not password_matches(password, account.password):
            return None
        if not address_allowed(account, peer_host):
            return None
        return account

    def status_before_login(self, peer_host: str) -> Sip2Account | None:
        """The account whose terminal may poll 99 before logging in, if one matches the peer."""
        for account in self.by_login.values():
            if (
                account.status_before_login
                and account.allowed_addresses
                and address_allowed(account, peer_host)
            ):
                return account
        return None
