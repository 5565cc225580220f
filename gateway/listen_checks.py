"""What `libgate check-config` and `libgate serve` check of every listen string before anything
is bound: each parses as a Twisted endpoint, names a port that can exist, is served the way
`[service] workers` asks, and its TLS key and certificate files exist, are readable and load.

Each problem is one line naming the setting, so a bad config stops `serve` before any socket,
thread or worker exists (a failure inside the reactor's start left thread pools running, and
the process hung after its traceback). Nothing here binds a socket or imports the reactor:
the supervisor runs these checks before it forks.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from twisted.internet.endpoints import (
    AdoptedStreamServerEndpoint,
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    _parse,
    serverFromString,
)

from gateway.config import Settings

# The `ssl:` options that name files Twisted reads when it parses the string.
TLS_FILE_OPTIONS = ("privateKey", "certKey", "extraCertChain", "dhParameters")
HIGHEST_PORT = 65535


def configured_listeners(settings: Settings) -> list[tuple[str, str]]:
    """(where, listen string) of every configured listener, `where` as the config spells it
    (`sip2.listen[0]`), in config order."""
    sections = (
        ("sip2", settings.sip2.listen),
        ("sru", settings.sru.listen),
        ("z3950", settings.z3950.listen),
        ("ill", settings.ill.listen),
        ("web", settings.web.listen),
        ("ops", settings.ops.listen),
    )
    return [
        (f"{name}.listen[{index}]", listen)
        for name, listens in sections
        for index, listen in enumerate(listens)
    ]


def listen_problems(settings: Settings, *, at_start: bool) -> list[str]:
    """One line per problem among the configured listeners; none: every one can be bound as
    far as can be told without binding it (a port in use is found only by binding).
    `at_start`: `serve` is starting, so a `systemd:` socket must have been passed to us;
    `check-config` run by hand has none and does not count that against the config."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    shared_by_workers = settings.service.worker_count() > 1
    for where, listen in configured_listeners(settings):
        if listen in seen:
            problems.append(f"{where}: {listen!r} is already {seen[listen]}")
            continue
        seen[listen] = where
        problem = check_listen_string(listen, shared_by_workers, at_start=at_start)
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


def check_listen_string(listen: str, shared_by_workers: bool, *, at_start: bool) -> str | None:
    """What is wrong with one listen string, or None."""
    if listen.strip().isdigit():
        return f"{listen!r} needs an endpoint type: write 'tcp:{listen.strip()}'"
    try:
        args, options = _parse(listen)
    except ValueError as error:
        return f"{listen!r} does not parse: {error}"
    kind = str(args[0]) if args else ""
    if kind == "ssl":
        file_problem = _tls_file_problem(listen, options)
        if file_problem:
            return file_problem
    try:
        # Only parsed: the reactor is not used until `listen()`, so None stands in for it.
        endpoint = serverFromString(None, listen)
    except IndexError:
        if kind == "systemd":
            if not at_start:
                return None
            return (
                f"{listen!r}: systemd passed no socket at that index (start it by its .socket unit)"
            )
        return f"{listen!r} does not parse"
    except TypeError as error:
        return f"{listen!r}: {_unknown_option(error)}"
    except ValueError as error:
        return f"{listen!r} does not parse: {error}"
    except Exception as error:  # noqa: BLE001 - OpenSSL's errors, OSError: one line each
        return f"{listen!r}: {_describe(error)}"
    if isinstance(endpoint, TCP4ServerEndpoint | TCP6ServerEndpoint | SSL4ServerEndpoint):
        port = endpoint._port
        if not 0 <= port <= HIGHEST_PORT:
            return f"{listen!r}: port {port} is not 0..{HIGHEST_PORT}"
        return None
    if shared_by_workers and not isinstance(endpoint, AdoptedStreamServerEndpoint):
        return (
            f"{listen!r}: several workers share tcp:, tcp6:, ssl: and systemd: listeners only"
            " (set [service] workers = 1 for others)"
        )
    return None


def _tls_file_problem(listen: str, options: dict[str, object]) -> str | None:
    """A missing or unreadable key or certificate file, named as the option that names it."""
    names = dict(options)
    names.setdefault("privateKey", "server.pem")  # Twisted's defaults
    names.setdefault("certKey", names["privateKey"])
    for option in TLS_FILE_OPTIONS:
        path = names.get(option)
        if not isinstance(path, str):
            continue
        if not os.path.isfile(path):
            return f"{listen!r}: {option} file {path} does not exist"
        if not os.access(path, os.R_OK):
            return f"{listen!r}: {option} file {path} is not readable by this user"
    return None


def _unknown_option(error: TypeError) -> str:
    # Twisted passes the options as keywords: "_parseTCP() got an unexpected keyword argument
    # 'bogus'" is an option the endpoint type does not have.
    text = str(error)
    if "unexpected keyword argument" in text:
        return f"unknown option {text.rsplit(' ', 1)[-1]}"
    return text


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if type(error).__module__.startswith("OpenSSL"):
        return f"the TLS key or certificate does not load as PEM ({text})"
    return text


def format_problems(problems: Iterable[str]) -> list[str]:
    """The lines `serve` and `check-config` print, one per problem."""
    return [f"libgate: {problem}" for problem in problems]
