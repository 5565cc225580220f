"""`libgate union search [--json] [--targets NAME,...] [--timeout S] QUERY`: one search across
the configured partner catalogues, each target's state, and the merged results with every
library that holds them. The JSON's `targets` and `records` fields are a contract.

`libgate union request --reader BARCODE [--lenders NAME,...] [--pick N] … QUERY`: the same
search, then an interlibrary loan request for work N, pre-filled from its record, to the
libraries holding it (in the order given) that are [ill] partners and show a copy that offers
ILL (the engine's decision, asked per copy); the engine files it as any request."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gateway.catalogue.query import QueryError
from gateway.circulation.clock import SystemClock
from gateway.circulation.engine import Engine
from gateway.circulation.ill import InterlibraryLoan
from gateway.circulation.ill_partner_copies import PartnerCopy, offers_ill
from gateway.circulation.policy import Policy
from gateway.cli.errors import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, CliError
from gateway.cli.ill import request_dict
from gateway.config import Settings, UnionTarget
from gateway.cql.free_text import read_query
from gateway.store import open_existing_store
from union.fanout import TargetStatus, UnionSearch
from union.merge import SORTS, MergedRecord, facets
from union.request import Rota, form_from, lender_rota
from union.sru_client import SruClient
from union.targets import clients
from union.z3950_pool import Z3950Pool


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
    pool = Z3950Pool.from_settings(settings.union, reactor)
    found: list[UnionSearch] = []

    def start() -> None:
        profiles = {p.name: p for p in settings.holdings_profiles}
        search = UnionSearch(
            targets, query, text, clients(reactor, sru, pool), reactor, timeout, profiles
        )
        found.append(search)
        done = search.done.addBoth(lambda _: sru.close())
        # The command owns the pool: its associations get their Close before the process ends.
        done.addBoth(lambda _: pool.close()).addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    return found[0]


def copy_dict(copy: PartnerCopy, policy: Policy | None) -> dict[str, Any]:
    """A partner's copy; with a policy, whether it offers an ILL request (the engine's
    decision) and why not."""
    shown: dict[str, Any] = {
        "location": copy.location,
        "call_number": copy.call_number,
        "item_id": copy.item_id,
        "available_now": copy.available_now,
        "status": copy.status,
        "item_type": copy.item_type,
        "restrictions": copy.restrictions,
        "due_date": copy.due_date,
    }
    if policy is not None:
        why = offers_ill(copy, policy)
        shown["ill"] = why is None
        shown["ill_refused"] = None if why is None else {"code": why.code, "en": why.en}
    return shown


def record_dict(record: MergedRecord, policy: Policy | None = None) -> dict[str, Any]:
    bib = record.bib
    sources = []
    for s in record.sources:
        source: dict[str, Any] = {"target": s.target, "record_id": s.record_id}
        if s.holdings_known:
            source["holdings"] = [copy_dict(c, policy) for c in s.copies]
        sources.append(source)
    return {
        "title": bib.display_title,
        "author": bib.main_author,
        "year": bib.year,
        "isbn": bib.isbns[0] if bib.isbns else "",
        "publisher": bib.publisher,
        "languages": list(bib.languages),
        "score": round(record.score, 3),
        "sources": sources,
    }


def status_dict(status: TargetStatus) -> dict[str, Any]:
    return {
        "name": status.name,
        "status": status.state.value,
        "hits": status.hits,
        "error": status.error,
        "ms": status.ms,
        "rejected": status.rejected,
    }


def searched(args: argparse.Namespace, settings: Settings, command: str) -> UnionSearch | None:
    """The command's search of its targets (`--targets`, `--timeout`); None, said on stderr,
    when the query cannot be read."""
    targets = chosen_targets(settings, args.targets)
    timeout = args.timeout if args.timeout is not None else settings.union.timeout
    try:
        return run_search(settings, args.query, targets, timeout)
    except QueryError as error:
        print(f"libgate union {command}: {error}", file=sys.stderr)
        return None


def cmd_union_search(args: argparse.Namespace, settings: Settings) -> int:
    search = searched(args, settings, "search")
    if search is None:
        return EXIT_USAGE
    merged = search.merged(args.sort)
    shown = merged[: args.limit]
    statuses = list(search.statuses.values())
    policy = Policy.from_settings(settings)
    if args.json:
        found = facets(merged)
        print(
            json.dumps(
                {
                    "query": args.query,
                    "targets": [status_dict(s) for s in statuses],
                    "total": len(merged),
                    "records": [record_dict(r, policy) for r in shown],
                    "facets": {
                        "libraries": found["library"],
                        "years": found["year"],
                        "languages": found["language"],
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
        for source in record.sources:
            for copy in source.copies:
                why = offers_ill(copy, policy)
                state = "ILL" if why is None else why.message(settings.circulation.language)
                where = " ".join(v for v in (copy.location, copy.call_number, copy.item_id) if v)
                print(f"        {source.target}: {where} ({state})")
    return EXIT_OK


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _rota_dict(rota: Rota) -> dict[str, Any]:
    return {
        "lenders": [
            {"target": x.target, "agency_id": x.agency_id, "lendable_copies": x.lendable_copies}
            for x in rota.lenders
        ],
        "passed": [{"target": x.target, "why": x.why} for x in rota.passed],
    }


def cmd_union_request(args: argparse.Namespace, settings: Settings) -> int:
    """Search, pick work N, pre-fill the form, build the rota, and file the request."""
    search = searched(args, settings, "request")
    if search is None:
        return EXIT_USAGE
    merged = search.merged(args.sort)
    if not 1 <= args.pick <= len(merged):
        raise CliError(
            f"no work {args.pick}: the search found {len(merged)}"
            f" (targets: {', '.join(f'{s.name} {s.state.value}' for s in search.statuses.values())})"
        )
    record = merged[args.pick - 1]
    policy = Policy.from_settings(settings)
    rota = lender_rota(record, settings, policy, _names(args.lenders))
    language = args.lang or settings.circulation.language
    data: dict[str, Any] = {
        "work": record_dict(record, policy),
        **_rota_dict(rota),
        "ok": False,
        "reasons": [],
        "request": None,
    }
    if not rota.lenders:
        why = "; ".join(f"{p.target}: {p.why}" for p in rota.passed) or "no library holds it"
        message = f"no library that holds work {args.pick} can lend it ({why})"
        if args.json:
            print(json.dumps({**data, "error": message}, ensure_ascii=False, indent=2))
        else:
            print(f"libgate union request: {message}", file=sys.stderr)
        return EXIT_REFUSED
    form = form_from(
        record,
        rota.agency_ids,
        recipient=args.recipient,
        email=args.email,
        phone=args.phone,
        delivery=args.delivery,
        reference=args.reference,
        note=args.note,
    )
    store = open_existing_store(settings.storage)  # its readers must be there already
    with store:
        engine = Engine(store, policy, SystemClock())
        result = InterlibraryLoan(engine, settings.ill).request(args.reader, form)
    data["ok"] = result.ok
    data["reasons"] = [r.as_dict() for r in result.reasons]
    data["request"] = request_dict(result.request) if result.request else None
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return EXIT_OK if result.ok else EXIT_REFUSED
    print(f"{form.title}  /  {form.author or '-'}")
    print(f"  lenders: {', '.join(f'{x.target} ({x.agency_id})' for x in rota.lenders)}")
    for passed in rota.passed:
        print(f"  not asked: {passed.target}: {passed.why}")
    if not result.ok or result.request is None:
        print("REFUSED: union request")
        for r in result.reasons:
            print(f"  [{r.rule or '-'} {r.code}] {r.message(language)}")
        return EXIT_REFUSED
    print(f"OK: {result.request.number} sent to {result.request.partner}")
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

    request = actions.add_parser(
        "request",
        help="search, then request work N through interlibrary loan from the libraries holding it",
    )
    request.add_argument("query", help='words, "a phrase", or CQL')
    request.add_argument("--reader", required=True, metavar="BARCODE", help="the reader's barcode")
    request.add_argument(
        "--pick", type=int, default=1, metavar="N", help="the work to request (1-based, default 1)"
    )
    request.add_argument(
        "--lenders",
        metavar="NAME,...",
        help="the libraries to ask, in this order (target names or agency ids);"
        " default: every holding library, in the order they answered",
    )
    request.add_argument("--targets", help="only search these targets: NAME,NAME,...")
    request.add_argument("--timeout", type=float, help="seconds the search may take")
    request.add_argument("--sort", choices=SORTS, default="relevance")
    for flag in ("recipient", "email", "phone", "delivery", "reference", "note"):
        request.add_argument(f"--{flag}", default="")
    request.add_argument("--lang", choices=("zh", "en"), help="language of the reasons")
    request.add_argument("--json", action="store_true", help="machine-readable output")
    request.set_defaults(handler=cmd_union_request)


__all__ = [
    "add_commands",
    "chosen_targets",
    "cmd_union_request",
    "cmd_union_search",
    "copy_dict",
    "record_dict",
    "run_search",
]
