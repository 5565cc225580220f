"""The catalogue commands of `libgate`: init, load, items import, export, search, browse,
reindex."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from gateway.catalogue import repository
from gateway.catalogue.explain import explain, explain_lines
from gateway.catalogue.items_import import ItemsFileError, import_items
from gateway.catalogue.query import QueryError, SortKey
from gateway.catalogue.search import browse, search
from gateway.circulation.copy_status import CopyWords
from gateway.circulation.policy import Policy
from gateway.cli.batches import add_items_delete, dry_run_lines
from gateway.cli.errors import (
    EXIT_FATAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    CliError,
)
from gateway.cli.progress import progress_for
from gateway.config import Settings
from gateway.cql.free_text import read_query
from gateway.cql.parser import CQLSyntaxError
from gateway.store import open_configured_store, open_existing_store, open_migrated_store
from gateway.store.migrate import migrate
from marc.holdings_export import LostValue


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    store = open_configured_store(settings.storage)
    with store:
        applied = migrate(store)
    if applied:
        print(f"{store.url}: applied schema versions {', '.join(map(str, applied))}")
    else:
        print(f"{store.url}: schema is up to date")
    return EXIT_OK


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here, not at the top (as in cmd_export): the load pipeline and the MARC
    # writers bring pymarc and multiprocessing, which every other `libgate` command would
    # pay for at start-up (python -X importtime, gateway.cli: 0.26 s, 0.37 s with these two
    # commands' imports at the top).
    from gateway.catalogue.loading.loader import Loader, LoadOptions, RejectsWriter
    from gateway.catalogue.loading.matching import parse_match
    from gateway.catalogue.loading.parallel import default_workers
    from marc.charset import normalise_encoding_name

    database = settings.database(args.database)
    if args.format:
        database = replace(database, format=args.format)
    profile = settings.profile(args.profile or database.profile)
    try:
        encoding = normalise_encoding_name(args.encoding)
    except ValueError as error:
        raise CliError(f"--encoding: {error}") from None
    paths = []
    file_profiles = {}
    for argument in args.files:
        path, own_profile = _file_and_profile(argument)
        if not path.is_file():
            raise CliError(f"{path}: no such file")
        paths.append(path)
        if own_profile:
            file_profiles[path] = settings.profile(own_profile)
    try:
        match = parse_match(args.match) if args.match else None
    except ValueError as error:
        raise CliError(f"--match: {error}") from None
    options = LoadOptions(
        database=database,
        profile=profile,
        file_profiles=file_profiles,
        known_profiles=settings.holdings_profiles,
        encoding=encoding,
        match=match.spec if match else None,
        on_match=args.on_match,
        on_new=args.on_new,
        on_duplicate=args.on_duplicate,
        dry_run=args.dry_run,
        run_by=args.by or "",
        batch_size=settings.loader.batch_size,
        batch_target_ms=settings.loader.batch_target_ms,
        bulk_first_load=settings.loader.bulk_first_load,
        workers=(default_workers() if settings.loader.workers < 0 else settings.loader.workers),
        on_shelf_status=settings.circulation.on_shelf_status,
        copy_words=CopyWords.from_settings(settings),
    )
    rejects_handle = open(args.rejects, "wb") if args.rejects else None  # noqa: SIM115
    try:
        with open_migrated_store(settings.storage) as store:
            rejects = RejectsWriter(rejects_handle) if rejects_handle else None
            with progress_for(paths) as progress:
                loader = Loader(
                    store,
                    options,
                    rejects,
                    on_progress=progress.advance,
                    on_file_start=progress.start_file,
                )
                with _stop_on_ctrl_c(loader.request_stop):
                    report = loader.load(paths, command="load " + " ".join(args.files))
                progress.complete = not report.interrupted
    finally:
        if rejects_handle:
            rejects_handle.close()
    if args.report:
        Path(args.report).write_text(report.to_json() + "\n", encoding="utf-8")
    # What was loaded on stdout; what went wrong, and what to do about it, on stderr.
    for line in report.summary_lines():
        print(line)
    if report.dry_run:
        for line in dry_run_lines(report.records or []):
            print(line)
    elif report.batch is not None:
        print(
            f"batch {report.batch}: libgate batches show {report.batch};"
            f" undo: libgate batches undo {report.batch}"
        )
    sys.stdout.flush()
    for line in report.problem_lines():
        print(line, file=sys.stderr)
    if report.interrupted:
        return EXIT_INTERRUPTED
    if any(f.error for f in report.files):
        return EXIT_FATAL
    return EXIT_OK if report.clean else EXIT_REJECTED


def _file_and_profile(argument: str) -> tuple[Path, str | None]:
    """`FILE` or `FILE:PROFILE` (that file's holdings profile). A file whose own name holds
    a colon is still the file."""
    path = Path(argument)
    if path.is_file() or ":" not in argument:
        return path, None
    name, _, profile = argument.rpartition(":")
    if profile and Path(name).is_file():
        return Path(name), profile
    return path, None


STOPPING = b"\nlibgate: stopping after the batch in hand (Ctrl-C again stops at once)\n"


@contextlib.contextmanager
def _stop_on_ctrl_c(request_stop: Callable[[], None]) -> Iterator[None]:
    """The first Ctrl-C asks the load to stop after the batch in hand (what is stored stays,
    the report says it was interrupted); a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers live in the main thread only
        return

    def stop(signum: int, frame: object) -> None:
        request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.write(2, STOPPING)  # not print: a handler may run in the middle of a print

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_items_import(args: argparse.Namespace, settings: Settings) -> int:
    databases = {d.name for d in settings.databases}
    with open_migrated_store(settings.storage) as store:
        try:
            report = import_items(
                store,
                Path(args.file),
                databases,
                CopyWords.from_settings(settings),
                settings.circulation.on_shelf_status,
            )
            if report.added or report.updated:
                store.analyze(repository.searched_tables(store.dialect))
        except ItemsFileError as error:
            raise CliError(str(error)) from None
    report.publish(args.report)
    return EXIT_REJECTED if report.errors else EXIT_OK


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    # See cmd_load: pymarc only for the commands using it.
    from marc.export import export_records, records_with_copies

    database = settings.database(args.database)
    profile = settings.profile(args.profile or database.profile)
    if args.with_items and not profile.item_tag:
        raise CliError(
            f"holdings profile {profile.name} has no holdings field to write copies in;"
            " choose one with --profile"
        )
    lost: list[LostValue] = []
    with open_existing_store(settings.storage) as store:
        with store.read() as tx:
            stored = repository.record_marc(tx, database.name)
            copies = repository.copies_by_record(tx, database.name) if args.with_items else {}
        wanted = set(args.record_id or ())
        if wanted:
            stored = [r for r in stored if r.record_id in wanted]
        rows: Iterable[tuple[str, str, bytes]] = stored
        if args.with_items:
            rows = records_with_copies(
                stored, copies, profile, settings.circulation.on_shelf_status, lost
            )
        out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
        try:
            count = export_records(rows, args.format, out)
        finally:
            if args.output:
                out.close()
    copies_note = ""
    if args.with_items:
        exported = sum(len(v) for k, v in copies.items() if not wanted or k in wanted)
        copies_note = f" with {exported} copies in {profile.item_tag} (profile {profile.name})"
    print(
        f"exported {count} records from {database.name} as {args.format}{copies_note}",
        file=sys.stderr,
    )
    if lost:
        for line in _lost_lines(lost, profile.name):
            print(line, file=sys.stderr)
        return EXIT_REJECTED
    return EXIT_OK


def _lost_lines(lost: list[LostValue], profile: str) -> list[str]:
    """What the export could not carry, by attribute, with the first copies and the fix."""
    by_attribute: dict[str, list[LostValue]] = {}
    for value in lost:
        by_attribute.setdefault(value.attribute, []).append(value)
    lines = []
    for attribute, values in by_attribute.items():
        shown = ", ".join(f"{v.barcode} {v.value!r}" for v in values[:3])
        more = f" and {len(values) - 3} more" if len(values) > 3 else ""
        copies = "1 copy" if len(values) == 1 else f"{len(values)} copies"
        lines.append(
            f"profile {profile} has no place for {attribute}: {copies} would not get it back"
            f" when loaded ({shown}{more})"
        )
    lines.append(
        "export with --profile libgate (995 carries every attribute), or give the profile a"
        " template for them ([[holdings_profiles]])"
    )
    return lines


def _parse_sort(text: str | None) -> tuple[SortKey, ...]:
    if not text:
        return ()
    keys = []
    for part in text.split(","):
        name, _, direction = part.strip().partition(":")
        descending = name.startswith("-") or direction.lower() in ("desc", "descending")
        keys.append(SortKey(name.lstrip("-").lower(), descending))
    return tuple(keys)


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    database = settings.database(args.database)
    try:
        reading = read_query(args.query)
        query = reading.query
        sort = _parse_sort(args.sort)
        if sort:
            query = replace(query, sort=sort)
        with open_existing_store(settings.storage) as store:
            result = search(
                store,
                query,
                database.name,
                availability=Policy.from_settings(settings).availability,
                limit=args.limit,
                offset=args.offset,
                available_only=args.available,
            )
    except (CQLSyntaxError, QueryError) as error:
        print(f"libgate search: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(
            json.dumps(
                {
                    "database": database.name,
                    "query": args.query,
                    "read_as": reading.syntax,
                    **({"explain": [t.as_dict() for t in explain(query)]} if args.explain else {}),
                    "total": result.total,
                    "offset": result.offset,
                    "hits": [
                        {
                            "id": h.record_id,
                            "title": h.title,
                            "author": h.author,
                            "year": h.year,
                            "copies": h.copies,
                            "available": h.available,
                        }
                        for h in result.hits
                    ],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return EXIT_OK
    if args.explain:
        for line in explain_lines(reading.syntax, query):
            print(line)
    print(f"{result.total} hits in {database.name}")
    for number, hit in enumerate(result.hits, start=result.offset + 1):
        year = hit.year if hit.year is not None else "-"
        print(
            f"{number:>4}. {hit.record_id}  {hit.title}  /  {hit.author or '-'}  {year}"
            f"  [{hit.available}/{hit.copies} available]"
        )
    return EXIT_OK


def cmd_browse(args: argparse.Namespace, settings: Settings) -> int:
    database = settings.database(args.database)
    try:
        with open_existing_store(settings.storage) as store:
            entries = browse(
                store,
                database.name,
                args.index,
                args.start,
                count=args.count,
                position=args.position,
            )
    except QueryError as error:
        print(f"libgate browse: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(
            json.dumps(
                [{"heading": e.heading, "count": e.count} for e in entries],
                ensure_ascii=False,
                indent=2,
            )
        )
        return EXIT_OK
    for entry in entries:
        print(f"{entry.count:>6}  {entry.heading}")
    return EXIT_OK


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.catalogue.textindex import WriterBusy, index_for

    with open_migrated_store(settings.storage) as store:
        repository.refresh_sort_keys(store.write, args.database)
        store.analyze(repository.searched_tables(store.dialect))
        try:
            # The search index holds every database: it is rebuilt whole, from the store.
            count = index_for(store).rebuild(store)
        except WriterBusy as error:
            raise CliError(f"search index: {error}; try again when it is done") from None
    print(f"reindexed {count} records")
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = commands.add_parser("init", help="create or upgrade the database schema")
    init.set_defaults(handler=cmd_init)

    load = commands.add_parser("load", help="batch-load ISO 2709 / MARCXML files into a catalogue")
    load.add_argument(
        "files",
        nargs="+",
        metavar="FILE[:PROFILE]",
        help="files to load; FILE:PROFILE loads that file with its own holdings profile",
    )
    load.add_argument(
        "--database", default="main", metavar="NAME", help="catalogue database (default main)"
    )
    load.add_argument(
        "--encoding",
        default="auto",
        metavar="NAME",
        help="auto (default: 100$a/26-29 or leader/09, confirmed by the bytes), utf-8, gb18030, marc-8, cp1251, ...",
    )
    load.add_argument(
        "--profile",
        metavar="NAME",
        help="holdings profile of files without their own :PROFILE (default: the database's)",
    )
    load.add_argument(
        "--format",
        choices=["auto", "unimarc", "marc21"],
        help="read every record as UNIMARC/CNMARC or MARC 21 (default: the database's format,"
        " auto = decided per record from its fields)",
    )
    load.add_argument(
        "--match",
        metavar="RULE",
        help="how to find the stored record a record overlays: 001, isbn (= isbn,001), none,"
        " or match points in order (001,isbn,issn,title+author+year); default: the"
        " database's `match` (001)",
    )
    load.add_argument(
        "--on-match",
        default="replace",
        choices=["replace", "ignore", "merge-copies"],
        help="a record that matches: replace the stored one (default), ignore it, or keep the"
        " stored one and add the file's new copies",
    )
    load.add_argument(
        "--on-new", default="add", choices=["add", "ignore"], help="a record that matches none"
    )
    load.add_argument(
        "--on-duplicate",
        default="reject",
        choices=["reject", "last"],
        help="a later record with a 001 the file already had: rejected (default), or it"
        " replaces the earlier one",
    )
    load.add_argument(
        "--dry-run",
        action="store_true",
        help="read, map and match, and report what a load would do; change nothing",
    )
    load.add_argument("--by", metavar="NAME", help="who loads (default: the OS user)")
    load.add_argument(
        "--rejects", metavar="PATH", help="write rejected records (raw ISO 2709) here"
    )
    load.add_argument("--report", metavar="PATH", help="write the JSON report here")
    load.set_defaults(handler=cmd_load)

    items = commands.add_parser("items", help="copies (items)")
    items_commands = items.add_subparsers(dest="items_command", required=True, metavar="ACTION")
    items_import = items_commands.add_parser("import", help="import copies from CSV")
    items_import.add_argument("file", metavar="FILE.csv")
    items_import.add_argument("--report", metavar="PATH", help="write the JSON report here")
    items_import.set_defaults(handler=cmd_items_import)
    add_items_delete(items_commands)

    export = commands.add_parser("export", help="write a catalogue as ISO 2709 or XML")
    export.add_argument("--database", default="main", metavar="NAME")
    export.add_argument(
        "--format", default="iso2709", choices=["iso2709", "marcxml", "marcxchange"]
    )
    export.add_argument("--output", "-o", metavar="PATH", help="file to write (default stdout)")
    export.add_argument(
        "--record-id", action="append", metavar="ID", help="only these records (repeatable)"
    )
    export.add_argument(
        "--with-items",
        action="store_true",
        help="write the current copies and their status into the holdings fields",
    )
    export.add_argument(
        "--profile",
        metavar="NAME",
        help="holdings profile the copies are written in (default: the database's)",
    )
    export.set_defaults(handler=cmd_export)

    search = commands.add_parser("search", help='search a catalogue: words, "a phrase", or CQL')
    search.add_argument(
        "query",
        metavar="QUERY",
        help='words and "quoted phrases" (剑桥 明代, mingdai, わがはい), or CQL '
        "(title=剑桥 and year>1990 sortBy title)",
    )
    search.add_argument("--database", default="main", metavar="NAME")
    search.add_argument(
        "--sort",
        metavar="KEY",
        help="relevance, title, author, date or record; -KEY or KEY:desc descending; comma-separated",
    )
    search.add_argument(
        "--limit", type=int, default=10, metavar="N", help="hits to show (default 10)"
    )
    search.add_argument("--offset", type=int, default=0, metavar="N", help="hits to skip")
    search.add_argument(
        "--available", action="store_true", help="only records with a copy on the shelf"
    )
    search.add_argument("--json", action="store_true", help="machine-readable output")
    search.add_argument(
        "--explain",
        action="store_true",
        help="show how the query was read: CQL or free text, fields, folded forms",
    )
    search.set_defaults(handler=cmd_search)

    browse = commands.add_parser(
        "browse", help="browse a heading list (title, author, subject, series)"
    )
    browse.add_argument("start", metavar="FROM", nargs="?", default="", help="starting term")
    browse.add_argument("--database", default="main", metavar="NAME")
    browse.add_argument(
        "--index", default="title", choices=["title", "author", "subject", "series"]
    )
    browse.add_argument("--count", type=int, default=20, metavar="N")
    browse.add_argument(
        "--position",
        type=int,
        default=1,
        metavar="P",
        help="where FROM falls in the list (1 = first)",
    )
    browse.add_argument("--json", action="store_true")
    browse.set_defaults(handler=cmd_browse)

    reindex = commands.add_parser("reindex", help="rebuild the search index from stored records")
    reindex.add_argument("--database", metavar="NAME", help="only this database")
    reindex.set_defaults(handler=cmd_reindex)
