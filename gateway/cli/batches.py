"""The catalogers' batch commands of `libgate`: `batches list|show|undo`, `records delete`,
`items delete`, and what `load --dry-run` prints (what each record would become).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gateway.catalogue.batches import storage
from gateway.catalogue.batches.deletion import DeletionResult, delete_items, delete_records
from gateway.catalogue.batches.undo import UndoRefused, effective_state, undo_batch
from gateway.catalogue.batches.who import runner
from gateway.circulation.clock import SystemClock
from gateway.circulation.engine import Engine
from gateway.circulation.policy import Policy
from gateway.cli.errors import EXIT_OK, EXIT_REFUSED, CliError
from gateway.config import Settings
from gateway.store import open_existing_store, open_migrated_store

# The order outcomes are listed in, and their names on the terminal.
OUTCOME_ORDER = (
    "new",
    "overlay",
    "merged",
    "unchanged",
    "ignored",
    "duplicate",
    "reject",
    "deleted",
    "refused",
    "missing",
)
IDS_PER_LINE = 10


# --- batches list / show / undo ----------------------------------------------------------------


def cmd_batches_list(args: argparse.Namespace, settings: Settings) -> int:
    with open_existing_store(settings.storage) as store, store.read() as tx:
        batches = storage.list_batches(tx, args.limit)
    if args.json:
        print(
            json.dumps(
                [{**b.as_dict(), "state": effective_state(b)} for b in batches],
                ensure_ascii=False,
                indent=2,
            )
        )
        return EXIT_OK
    if not batches:
        print("no batches yet")
        return EXIT_OK
    print(f"{'batch':>5}  {'kind':<6} {'state':<11} {'started':<25} {'by':<12} what")
    for batch in batches:
        print(
            f"{batch.id:>5}  {batch.kind:<6} {effective_state(batch):<11}"
            f" {batch.started_at:<25} {batch.run_by or '-':<12} {_what(batch)}"
        )
    return EXIT_OK


def _what(batch: storage.BatchSummary) -> str:
    counts = ", ".join(f"{n} {name}" for name, n in _ordered(batch.counts) if n)
    target = batch.database
    if batch.files:
        target += ": " + ", ".join(Path(f).name for f in batch.files)
    return f"{target}  ({counts})" if counts else target


def _ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
    rank = {name: i for i, name in enumerate(OUTCOME_ORDER)}
    return sorted(counts.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def cmd_batches_show(args: argparse.Namespace, settings: Settings) -> int:
    with open_existing_store(settings.storage) as store, store.read() as tx:
        batch = storage.batch_by_id(tx, args.batch)
        if batch is None:
            raise CliError(f"there is no batch {args.batch}")
        rows = storage.outcomes(tx, args.batch)
        copies = storage.item_changes(tx, args.batch)
        report = storage.report_of(tx, args.batch) if batch.kind == "delete" else None
    if args.json:
        print(
            json.dumps(
                {
                    **batch.as_dict(),
                    "state": effective_state(batch),
                    "records": [r.as_dict() for r in rows],
                    "copies": [c.as_dict() for c in copies],
                    **({"deletion": report} if report else {}),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return EXIT_OK
    for line in _header(batch):
        print(line)
    if not batch.detailed:
        print("  (recorded before batches kept per-record outcomes)")
    for row in rows:
        where = f"{row.file_no + 1}:{row.record_no}" if row.record_no is not None else "-"
        shown = row.record_id or "(no id)"
        if row.matched_id and row.matched_id != row.record_id:
            shown += f" → {row.matched_id}"
        extra = f" by {row.matched_by}" if row.matched_by and row.outcome != "new" else ""
        copies_note = f", {row.copies_created} copies created" if row.copies_created else ""
        line = f"  {where:>8}  {row.outcome:<9} {shown}{extra}{copies_note}"
        if row.replaced_by is not None:
            line += f" (replaced by record {row.replaced_by} of the same file)"
        print(line)
        if row.reason:
            print(f"            {row.reason}")
        for change in row.changes or []:
            print(f"            {_change_line(change)}")
    created = [c.barcode for c in copies if c.action == "created"]
    for action, barcodes in (
        ("created", created),
        ("re-described", [c.barcode for c in copies if c.action == "updated"]),
        ("deleted", [c.barcode for c in copies if c.action == "deleted"]),
    ):
        if barcodes:
            print(f"  copies {action} ({len(barcodes)}):")
            for line in _wrapped(barcodes):
                print(f"    {line}")
    if report:
        for refused in report.get("refused", []):
            print(f"  refused: {refused['what']}")
            for why in refused["reasons"]:
                print(f"    {why['en']}" + (f" ({why['rule']})" if why["rule"] else ""))
        for effect in report.get("effects", []):
            print(f"  {effect['en']}")
    return EXIT_OK


def _header(batch: storage.BatchSummary) -> list[str]:
    lines = [
        f"batch {batch.id}: {batch.kind} {'from' if batch.kind == 'delete' else 'into'}"
        f" {batch.database}, {effective_state(batch)}",
        f"  by {batch.run_by or '-'} on {batch.host or '-'}; started {batch.started_at},"
        f" ended {batch.finished_at or '-'}",
    ]
    if batch.files:
        lines.append("  files: " + ", ".join(batch.files))
    if batch.options:
        lines.append(
            "  options: " + ", ".join(f"{k} {v}" for k, v in sorted(batch.options.items()))
        )
    if batch.counts:
        lines.append("  " + ", ".join(f"{n} {name}" for name, n in _ordered(batch.counts)))
    if batch.undone_at:
        lines.append(f"  undone {batch.undone_at} by {batch.undone_by or '-'}")
        for kept in (batch.undo_report or {}).get("kept", []):
            lines.append(f"    kept {kept['what']}: {kept['why']}")
    return lines


def _wrapped(values: list[str]) -> Iterable[str]:
    for start in range(0, len(values), IDS_PER_LINE):
        yield " ".join(values[start : start + IDS_PER_LINE])


def cmd_batches_undo(args: argparse.Namespace, settings: Settings) -> int:
    with open_migrated_store(settings.storage) as store:
        try:
            result = undo_batch(store, args.batch, runner(args.by))
        except UndoRefused as refused:
            if args.json:
                print(
                    json.dumps({"batch": args.batch, "refused": str(refused)}, ensure_ascii=False)
                )
            else:
                print(f"libgate batches undo: {refused}")
            return EXIT_REFUSED
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return EXIT_OK
    print(f"batch {result.batch} undone:")
    for label, values in (
        ("records removed", result.removed_records),
        ("records restored", result.restored_records),
        ("copies removed", result.removed_copies),
        ("copies restored", result.restored_copies),
    ):
        if values:
            print(f"  {label} ({len(values)}):")
            for line in _wrapped(values):
                print(f"    {line}")
    for kept in result.kept:
        print(f"  kept {kept['what']}: {kept['why']}")
    if not result.index_current:
        print("  the search index is being written by another process; it will catch up")
    return EXIT_OK


# --- records delete / items delete -------------------------------------------------------------


def _names(args: argparse.Namespace, what: str) -> list[str]:
    names = list(args.names)
    if args.from_file:
        try:
            text = Path(args.from_file).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise CliError(f"{args.from_file}: cannot read: {error}") from None
        names += [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise CliError(f"name at least one {what}, or give --from FILE")
    return names


def _engine(store: Any, settings: Settings) -> Engine:
    return Engine(store, Policy.from_settings(settings), SystemClock())


def cmd_records_delete(args: argparse.Namespace, settings: Settings) -> int:
    database = settings.database(args.database)
    ids = _names(args, "record id")
    with open_migrated_store(settings.storage) as store:
        result = delete_records(
            store,
            _engine(store, settings),
            database.name,
            ids,
            force=args.force,
            by=runner(args.by),
            command="records delete " + " ".join(ids[:20]) + (" ..." if len(ids) > 20 else ""),
        )
    return _print_deletion(result, args)


def cmd_items_delete(args: argparse.Namespace, settings: Settings) -> int:
    barcodes = _names(args, "barcode")
    with open_migrated_store(settings.storage) as store:
        result = delete_items(
            store,
            _engine(store, settings),
            barcodes,
            force=args.force,
            by=runner(args.by),
            command="items delete "
            + " ".join(barcodes[:20])
            + (" ..." if len(barcodes) > 20 else ""),
        )
    return _print_deletion(result, args)


def _print_deletion(result: DeletionResult, args: argparse.Namespace) -> int:
    language = getattr(args, "language", "en")
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        if result.deleted_records:
            print(f"deleted {len(result.deleted_records)} records:")
            for line in _wrapped(result.deleted_records):
                print(f"  {line}")
        if result.deleted_copies:
            print(f"deleted {len(result.deleted_copies)} copies:")
            for line in _wrapped(result.deleted_copies):
                print(f"  {line}")
        for effect in result.effects:
            print(f"  {effect.message(language)}")
        for what, reasons in result.refused:
            print(f"not deleted: {what}")
            for why in reasons:
                rule = f" ({why.rule})" if why.rule else ""
                print(f"  {why.message(language)}{rule}")
        for missing in result.missing:
            print(f"not found: {missing}")
        if result.batch is not None:
            print(f"batch {result.batch}; undo with: libgate batches undo {result.batch}")
        else:
            print("nothing deleted")
    return EXIT_REFUSED if result.refused or result.missing else EXIT_OK


# --- load --dry-run ---------------------------------------------------------------------------


def dry_run_lines(records: list[storage.OutcomeRow]) -> list[str]:
    """What a dry run found: the record ids of each outcome, the fields each overlay changes,
    and why records would be rejected or ignored."""
    lines = ["dry run: nothing was changed. The load would do this:"]
    by_outcome: dict[str, list[storage.OutcomeRow]] = {}
    for row in records:
        by_outcome.setdefault(row.outcome, []).append(row)
    for outcome in OUTCOME_ORDER:
        rows = by_outcome.get(outcome, [])
        if not rows:
            continue
        lines.append(f"  {outcome} ({len(rows)}):")
        if outcome in ("new", "unchanged", "merged"):
            for line in _wrapped([r.record_id or f"#{r.record_no}" for r in rows]):
                lines.append(f"    {line}")
            continue
        for row in rows:
            shown = row.record_id or "(no id)"
            if row.matched_id and row.matched_id != row.record_id:
                shown += f" → {row.matched_id} (by {row.matched_by})"
            lines.append(f"    record {row.record_no}: {shown}")
            if row.reason:
                lines.append(f"      {row.reason}")
            for change in row.changes or []:
                lines.append(f"      {_change_line(change)}")
    return lines


def _change_line(change: dict[str, Any]) -> str:
    # Imported here: the MARC reader it uses brings pymarc, which other commands need not load.
    from gateway.catalogue.loading.changes import change_line

    return change_line(change)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    batches = commands.add_parser(
        "batches", help="loads and deletions: list, show what each did, undo one"
    )
    actions = batches.add_subparsers(dest="batches_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every batch, newest first")
    listing.add_argument("--limit", type=int, metavar="N", help="only the newest N")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_batches_list)
    show = actions.add_parser("show", help="one batch: the outcome of each record")
    show.add_argument("batch", type=int, metavar="N")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_batches_show)
    undo = actions.add_parser("undo", help="take a batch back (one transaction)")
    undo.add_argument("batch", type=int, metavar="N")
    undo.add_argument("--by", metavar="NAME", help="who undoes it (default: the OS user)")
    undo.add_argument("--json", action="store_true")
    undo.set_defaults(handler=cmd_batches_undo)

    records = commands.add_parser("records", help="bibliographic records")
    record_actions = records.add_subparsers(dest="records_command", required=True, metavar="ACTION")
    delete = record_actions.add_parser(
        "delete", help="delete records with their copies (a batch: undoable)"
    )
    delete.add_argument("names", nargs="*", metavar="ID")
    delete.add_argument("--database", default="main", metavar="NAME")
    _deletion_options(delete, "record ids")
    delete.set_defaults(handler=cmd_records_delete)


def add_items_delete(
    items_commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """`libgate items delete`, under the `items` command of catalogue.py."""
    delete = items_commands.add_parser("delete", help="delete copies (a batch: undoable)")
    delete.add_argument("names", nargs="*", metavar="BARCODE")
    _deletion_options(delete, "barcodes")
    delete.set_defaults(handler=cmd_items_delete)


def _deletion_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--from", dest="from_file", metavar="FILE", help=f"{what}, one a line")
    parser.add_argument(
        "--force",
        action="store_true",
        help="delete copies on loan, trapped or with holds too (loans ended, holds settled)",
    )
    parser.add_argument("--by", metavar="NAME", help="who deletes (default: the OS user)")
    parser.add_argument("--language", choices=["zh", "en"], default="en")
    parser.add_argument("--json", action="store_true")
