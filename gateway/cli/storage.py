"""The store's own care: `backup PATH`, `restore PATH [--force]` and `migrate-store --to URL`.

Each prints what it did and the counts an operator checks (records, copies, readers, loans,
holds, fees, notices, ILL requests, batches); any failure is one line and exit 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.cli.errors import EXIT_OK, CliError
from gateway.config import Settings
from gateway.store import open_existing_store, open_migrated_store, open_store
from gateway.store.backup import backup, restore, sqlite_in_use
from gateway.store.migrate import latest_version
from gateway.store.move import move
from gateway.store.sqlite import sqlite_path
from gateway.store.tables import format_counts, summary_counts


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    done = backup(settings.storage, Path(args.path))
    print(
        f"backup written: {done.path} ({done.size} bytes, schema version {done.schema_version},"
        " checked)"
    )
    print(format_counts(done.counts))
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.catalogue.textindex import WriterBusy, index_for

    version = restore(settings.storage, Path(args.path), force=args.force)
    with open_migrated_store(settings.storage) as store:
        latest = latest_version(store.dialect)
        # The search index is derived from the store and now describes other data.
        try:
            indexed = index_for(store).rebuild(store)
            index_note = f"search index rebuilt ({indexed} records)"
        except WriterBusy:
            index_note = "search index busy: run `libgate reindex` (serve also catches it up)"
        with store.read() as tx:
            counts = summary_counts(tx)
    upgraded = f", upgraded to {latest}" if version < latest else ""
    print(f"restored {args.path} (schema version {version}{upgraded}); {index_note}")
    print(format_counts(counts))
    return EXIT_OK


def cmd_migrate_store(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store.postgres import redact  # psycopg: imported only when it is used

    target_url = args.to
    if not target_url.startswith(("postgresql:", "postgres:")):
        raise CliError("migrate-store --to takes a postgresql://... URL")
    if not settings.storage.url.startswith("sqlite:"):
        raise CliError("migrate-store moves a SQLite store; the configured store is not SQLite")
    source_path = Path(sqlite_path(settings.storage.url))
    if not args.force and sqlite_in_use(source_path):
        # What the gateway writes after the copy's snapshot would stay behind in SQLite.
        raise CliError(
            f"{source_path} is open in another process (a running `libgate serve`?); stop it"
            " first, or move with --force"
        )
    with open_existing_store(settings.storage) as source, open_store(target_url) as target:
        moved = move(source, target)
    width = max(len(m.table) for m in moved)
    print(f"{'table':<{width}}  {'SQLite':>9}  {'PostgreSQL':>10}")
    for m in moved:
        print(f"{m.table:<{width}}  {m.source_rows:>9}  {m.target_rows:>10}")
    print(f"moved {len(moved)} tables, {sum(m.target_rows for m in moved)} rows; counts match")
    print("now set in the config, then restart the gateway (it builds its search index):")
    print(f'[storage]\nurl = "{redact(target_url)}"')
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup_cmd = commands.add_parser(
        "backup",
        help="write the whole store to PATH while the gateway serves (SQLite copy or pg_dump)",
    )
    backup_cmd.add_argument("path", metavar="PATH", help="the backup file to create")
    backup_cmd.set_defaults(handler=cmd_backup)

    restore_cmd = commands.add_parser(
        "restore", help="replace the store's data with a backup, upgrade it, rebuild the index"
    )
    restore_cmd.add_argument("path", metavar="PATH", help="a file `libgate backup` wrote")
    restore_cmd.add_argument(
        "--force", action="store_true", help="restore even while a gateway has the store open"
    )
    restore_cmd.set_defaults(handler=cmd_restore)

    move_cmd = commands.add_parser(
        "migrate-store", help="copy every table of the SQLite store into an empty PostgreSQL"
    )
    move_cmd.add_argument(
        "--to", required=True, metavar="URL", help="postgresql://... of an empty database/schema"
    )
    move_cmd.add_argument(
        "--force",
        action="store_true",
        help="move even while a gateway has the SQLite store open (its later writes stay behind)",
    )
    move_cmd.set_defaults(handler=cmd_migrate_store)
