"""`libgate union search [--json] [--targets NAME,...] [--timeout S] QUERY`: one search across
the configured partner catalogues, each target's state, and the merged results with every
library that holds them. The JSON's `targets` and `records` fields are a contract."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gateway.catalogue.query import QueryError
from gateway.cli.errors import EXIT_OK, EXIT_USAGE, CliError
from gateway.config import Settings, UnionTarget
from gateway.cql.free_text import read_query
from union.fanout import UnionSearch
from union.merge import SORTS, MergedRecord, facets
from union.sru_client import SruClient
from union.targets import clients


def chosen_targets(settings: Settings, names: str | None) -> list[UnionTarget]:
    """The enabled targets, or those named (a named target is searched even if disabled)."""
    configured = settings.union.targets
    if not configured:
        raise CliError("no partner catalogues: add [[union.targets]] to the config")
    if not names:
        return [t for t in configured if t.enabled]
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if settings.union.target(n) is None]
    if unknown:
        known = ", ".join(t.name for t in configured)
        raise CliError(f"unknown target {', '.join(unknown)}; configured: {known}")
    return [t for t in configured if t.name in wanted]


def run_search(
    settings: Settings, text: str, targets: list[UnionTarget], timeout: float
) -> UnionSearch:
    """The search on the process's reactor, run until it ends (a one-shot command)."""
    from twisted.internet import reactor

    query = read_query(text).query
    sru = SruClient(reactor)
    found: list[UnionSearch] = []

    def start() -> None:
        search = UnionSearch(targets, query, text, clients(reactor, sru), reactor, timeout)
        found.append(search)
        search.done.addBoth(lambda _: sru.close()).addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    return found[0]


def record_dict(record: MergedRecord) -> dict[str, Any]:
    bib = record.bib
    return {
        "title": bib.display_title,
        "author": bib.main_author,
        "year": bib.year,
        "isbn": bib.isbns[0] if bib.isbns else "",
        "publisher": bib.publisher,
        "languages": list(bib.languages),
        "score": round(record.score, 3),
        "sources": [{"target": s.target, "record_id": s.record_id} for s in record.sources],
    }


def cmd_union_search(args: argparse.Namespace, settings: Settings) -> int:
    targets = chosen_targets(settings, args.targets)
    timeout = args.timeout if args.timeout is not None else settings.union.timeout
    try:
        search = run_search(settings, args.query, targets, timeout)
    except QueryError as error:
        print(f"libgate union search: {error}", file=sys.stderr)
        return EXIT_USAGE
    merged = search.merged(args.sort)
    shown = merged[: args.limit]
    statuses = list(search.statuses.values())
    if args.json:
        found = facets(merged)
        print(
            json.dumps(
                {
                    "query": args.query,
                    "targets": [
                        {
                            "name": s.name,
                            "status": s.state.value,
                            "hits": s.hits,
                            "error": s.error,
                            "ms": s.ms,
                            "rejected": s.rejected,
                        }
                        for s in statuses
                    ],
                    "total": len(merged),
                    "records": [record_dict(r) for r in shown],
                    "facets": {
                        "libraries": found.libraries,
                        "years": found.years,
                        "languages": found.languages,
                    },
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return EXIT_OK
    for status in statuses:
        detail = f"{status.hits} hits" if status.state.value == "ok" else status.error
        print(f"  {status.name}: {status.state.value}, {detail} ({status.ms} ms)")
    print(f"{len(merged)} works from {sum(1 for s in statuses if s.records)} libraries")
    for number, record in enumerate(shown, start=1):
        bib = record.bib
        year = bib.year if bib.year is not None else "-"
        print(
            f"{number:>4}. {bib.display_title}  /  {bib.main_author or '-'}  {year}"
            f"  [{', '.join(record.targets)}]"
        )
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    union = commands.add_parser("union", help="union search across partner catalogues")
    actions = union.add_subparsers(dest="action", required=True, metavar="ACTION")
    search = actions.add_parser(
        "search", help="search every partner catalogue at once, merged by work"
    )
    search.add_argument("query", help='words, "a phrase", or CQL')
    search.add_argument("--json", action="store_true", help="machine-readable output")
    search.add_argument("--targets", help="only these targets: NAME,NAME,...")
    search.add_argument(
        "--timeout", type=float, help="seconds until the search returns what arrived"
    )
    search.add_argument("--sort", choices=SORTS, default="relevance")
    search.add_argument("--limit", type=int, default=20, help="works shown (default 20)")
    search.set_defaults(handler=cmd_union_search)


__all__ = ["add_commands", "chosen_targets", "cmd_union_search", "record_dict", "run_search"]
