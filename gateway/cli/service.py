"""The commands that run or set up the service: `libgate serve`, `libgate check-config` and
`libgate hash-password`."""

from __future__ import annotations

import argparse
import getpass
import signal
import sys

from gateway.circulation.pins import hash_pin
from gateway.cli.errors import EXIT_FATAL, EXIT_OK, CliError
from gateway.config import LOG_FORMATS, Settings
from gateway.listen_checks import format_problems, listen_problems
from gateway.workers import HELD_SIGNALS


def cmd_hash_password(args: argparse.Namespace, settings: Settings) -> int:
    """A salted scrypt hash for a `[[sip2.accounts]] password`; the password comes from the
    terminal or stdin, never the command line (shell history, `ps`)."""
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise CliError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("an empty password cannot be hashed")
    print(hash_pin(password))
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace, settings: Settings) -> int:
    """The config as `serve` reads it (a bad key or value stopped `main` already, in one line),
    then every listen string and TLS file, one line per problem."""
    problems = listen_problems(settings, at_start=False)
    for line in format_problems(problems):
        print(line, file=sys.stderr)
    if problems:
        return EXIT_FATAL
    print(f"config OK ({settings.source})")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    # Every listen string is checked before anything is bound or started: a bad one is a line,
    # not a traceback from inside the reactor's start (which left its threads running).
    problems = listen_problems(settings, at_start=True)
    if problems:
        for line in format_problems(problems):
            print(line, file=sys.stderr, flush=True)
        return EXIT_FATAL
    # The service tree (Twisted, every front-end) is imported only by the command that runs it,
    # and under a supervisor only by each worker after fork() (gateway/supervisor.py).
    settings = with_log_flags(settings, args)
    # SIGHUP (reload) and the index's signal wait until the process can handle them.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        workers = settings.service.worker_count()
        if workers > 1:
            from gateway.supervisor import serve_supervised

            return serve_supervised(settings, workers)
        from gateway.app import serve

        return serve(settings)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # as before, for a caller in-process


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hash_password = commands.add_parser(
        "hash-password", help="hash a SIP2 account password for the config (reads stdin)"
    )
    hash_password.set_defaults(handler=cmd_hash_password)

    check_config = commands.add_parser(
        "check-config",
        help="check the config as serve would (listen strings, TLS files); exit 1 on a problem",
    )
    check_config.set_defaults(handler=cmd_check_config)

    serve = commands.add_parser("serve", help="run the gateway in the foreground")
    serve.set_defaults(handler=cmd_serve)
    serve.add_argument(
        "--log-format", choices=LOG_FORMATS, help="text or json lines ([service] log_format)"
    )
    serve.add_argument(
        "--log-file",
        metavar="PATH",
        help="write the log here, rotated at [service] log_max_bytes, not to stderr",
    )


def with_log_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    """`settings` with `serve`'s --log-format and --log-file in place of the config's (kept
    by a reload, which reads the file again)."""
    keys: list[tuple[str, str]] = []
    if getattr(args, "log_format", None):
        keys.append(("log_format", args.log_format))
    if getattr(args, "log_file", None):
        keys.append(("log_file", args.log_file))
    return settings.with_command_line(tuple(keys))
