"""The one access line every front-end writes per request (issue 18, "Logs").

Every protocol's line has the same fields in the same order: channel, account (a SIP2 login)
or peer, command, query (searches only), outcome, ms. The text form keeps the `key=value`
shape the SIP2 and Z39.50 lines always had (`sip2 account=kiosk peer=… command=23
outcome=ok ms=1.2`), so a grep written for them still matches; the JSON form
(`--log-format json`, gateway/log_output.py) gets the same fields from the record's `access`
attribute, typed, without parsing the text.

What may go in a field is decided here, once: a front-end passes the login, the address, the
command name and the search text, never a request's raw fields, so a PIN (SIP2 AD), a password
(CO) or a session cookie has no way into the line.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

# The LogRecord attribute that carries the fields to a structured formatter.
ACCESS_ATTRIBUTE = "access"
# A query longer than this is cut: a partner's 8 KB CQL should not make an 8 KB log line.
QUERY_LIMIT = 500


@dataclass(frozen=True)
class Access:
    """One request as the access log records it."""

    channel: str  # sip2 | sru | z3950 | ill | web
    command: str  # SIP2 "23", SRU "searchRetrieve", Z39.50 "searchRequest", "GET /search"
    outcome: str  # ok | bad_pin | diagnostic 114 | http 503 | …
    ms: float
    account: str = ""  # who logged in (SIP2 account), when the protocol has logins
    peer: str = ""  # the client's address
    query: str | None = None  # the search as asked (CQL, RPN in PQF, the portal's words)

    def fields(self) -> dict[str, object]:
        """The fields in their order; account and query only where the protocol has them."""
        fields: dict[str, object] = {"channel": self.channel}
        if self.account:
            fields["account"] = self.account
        fields["peer"] = self.peer or "-"
        fields["command"] = self.command
        if self.query is not None:
            fields["query"] = _cut(self.query)
        fields["outcome"] = self.outcome
        fields["ms"] = round(self.ms, 1)
        return fields

    def text(self) -> str:
        fields = self.fields()
        channel = fields.pop("channel")
        fields["ms"] = f"{self.ms:.1f}"
        return " ".join([str(channel), *(f"{k}={_value(v)}" for k, v in fields.items())])


def log_access(logger: logging.Logger, access: Access) -> None:
    """Write `access` as one INFO line of `logger` (the front-end's own logger)."""
    if logger.isEnabledFor(logging.INFO):
        logger.info("%s", access.text(), extra=record_extra(access))


def record_extra(access: Access) -> dict[str, object]:
    """The `extra` that puts `access`'s fields on a LogRecord for the JSON formatter."""
    return {ACCESS_ATTRIBUTE: access.fields()}


def _cut(query: str) -> str:
    return query if len(query) <= QUERY_LIMIT else query[:QUERY_LIMIT] + "…"


def _value(value: object) -> str:
    """A bare word when it reads unambiguously, else a JSON string (spaces, quotes, `=`,
    newlines: a query can hold any of them, and one request must stay one line)."""
    text = str(value)
    if text and not any(c.isspace() or c in '"=\\' for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)
