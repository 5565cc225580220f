"""The `libgate` command: one parser, its subcommands gathered from the modules that hold them.

- `catalogue`: init, load, items import, export, search, browse, reindex;
- `batches`: batches list, show and undo; records delete and items delete;
- `staff`: the service desk (circ …, holds process, notices list, patrons import);
- `ill`: interlibrary loan (request, ship, receive, return, unfill, process, readers, list,
  show, stats);
- `front_ends`: the front-ends' commands (union search);
- `service`: hash-password, check-config, serve;
- `storage`: backup, restore, migrate-store.

Every command shares the exit codes and `CliError` of `gateway.cli.errors` (see there).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from collections.abc import Sequence

from gateway.cli import batches, catalogue, front_ends, ill, service, staff, storage
from gateway.cli.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_FATAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_REJECTED,
    EXIT_USAGE,
    CliError,
)
from gateway.config import ConfigError, load_settings
from gateway.store import StoreError

__all__ = [
    "EXIT_FATAL",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_REJECTED",
    "EXIT_USAGE",
    "CliError",
    "build_parser",
    "main",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="libgate", description="libgate: a library protocol gateway (SIP2, SRU, Z39.50, MARC)."
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="TOML config (else $LIBGATE_CONFIG, else ./libgate.toml, else defaults)",
    )
    parser.add_argument("--version", action="version", version=f"libgate {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    catalogue.add_commands(commands)
    batches.add_commands(commands)
    staff.add_commands(commands)
    ill.add_commands(commands)
    front_ends.add_commands(commands)
    service.add_commands(commands)
    storage.add_commands(commands)
    return parser


def installed_version() -> str:
    """The version of the installed distribution (what pip and bug reports see)."""
    try:
        return importlib.metadata.version("libgate")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout never installed
        from gateway import __version__

        return f"{__version__} (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        code = int(args.handler(args, settings))
        sys.stdout.flush()  # a reader gone away shows here, where it is caught
        return code
    except (ConfigError, StoreError, CliError) as error:
        print(f"libgate: {error}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print("libgate: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`libgate search … | head`): stop quietly, as
        # Unix tools do, and keep Python from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
