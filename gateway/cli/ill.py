"""Interlibrary loan at the staff desk: `libgate ill …`.

As lender: ship, unfill, process (overdue). As borrower: request (for a reader), receive,
return, cancel, renew, and readers confirm/revoke (ILL registration). Both: list, show, stats.
Like the circulation desk, this module only parses arguments, calls the engine
(gateway.circulation.ill) and prints what it answers; a refusal exits with code 3.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from gateway.circulation.clock import SystemClock
from gateway.circulation.engine import Engine
from gateway.circulation.ill import IllForm, IllRequestView, IllResult, InterlibraryLoan
from gateway.circulation.ill_storage import IllRequest
from gateway.circulation.money import format_money
from gateway.circulation.policy import Policy
from gateway.cli.errors import EXIT_OK, EXIT_REFUSED, CliError
from gateway.config import Settings
from gateway.store import Store, open_existing_store, open_migrated_store


def _ill(settings: Settings, *, reads_only: bool = False) -> tuple[Store, InterlibraryLoan]:
    """The store and ILL service of a command; one that only reads opens an existing store."""
    store = (open_existing_store if reads_only else open_migrated_store)(settings.storage)
    engine = Engine(store, Policy.from_settings(settings), SystemClock())
    return store, InterlibraryLoan(engine, settings.ill)


def request_dict(request: IllRequest) -> dict[str, Any]:
    """A request as the JSON output shows it (the contract's keys first)."""
    return {
        "number": request.number,
        "role": request.role,
        "status": request.status,
        "state": request.state,
        "partner": request.partner,
        "requesting_agency_request_id": request.requesting_agency_request_id,
        "supplying_agency_request_id": request.supplying_agency_request_id,
        "title": request.title,
        "author": request.author,
        "barcode": request.barcode or None,
        "reader": request.reader_barcode or None,
        "reference": request.reference,
        "due_at": request.due_at,
        "renewals_used": request.renewals_used,
        "reason": request.reason,
        "rota": request.lenders,
        "fee": request.fee,
        "created_at": request.created_at,
        "updated_at": request.updated_at,
    }


def view_dict(view: IllRequestView) -> dict[str, Any]:
    messages = []
    for m in view.messages:
        shown = asdict(m)
        shown.pop("outbox_pk")
        messages.append(shown)
    return {**request_dict(view.request), "messages": messages}


def _label(request: IllRequest) -> str:
    return request.number or f"({request.partner} {request.requesting_agency_request_id})"


def _print_result(result: IllResult, action: str, as_json: bool, language: str) -> int:
    if as_json:
        data = {
            "ok": result.ok,
            "action": action,
            "reasons": [r.as_dict() for r in result.reasons],
            "request": request_dict(result.request) if result.request else None,
        }
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(f"{'OK' if result.ok else 'REFUSED'}: ill {action}")
        for r in result.reasons:
            print(f"  [{r.rule or '-'} {r.code}] {r.message(language)}")
        if result.request is not None and result.ok:
            request = result.request
            print(f"  {_label(request)}: {request.state} ({request.status or '-'})")
            if request.barcode:
                print(f"  copy: {request.barcode}")
            if request.due_at:
                print(f"  due: {request.due_at}")
    return EXIT_OK if result.ok else EXIT_REFUSED


def _form(args: argparse.Namespace) -> IllForm:
    return IllForm(
        title=args.title,
        author=args.author,
        publisher=args.publisher,
        year=args.year,
        isbn=args.isbn,
        issn=args.issn,
        language=args.language_of_item,
        material_type=args.type,
        lenders=tuple(args.lender or ()),
        recipient=args.recipient,
        email=args.email,
        phone=args.phone,
        delivery=args.delivery,
        reference=args.reference,
        note=args.note,
    )


def cmd_ill_action(args: argparse.Namespace, settings: Settings) -> int:
    """The commands that change a request: they answer OK or REFUSED with reasons."""
    store, ill = _ill(settings)
    language = args.lang or settings.circulation.language
    command = args.ill_command
    with store:
        if command == "request":
            result = ill.request(args.patron, _form(args))
        elif command == "ship":
            result = ill.ship(args.number)
        elif command == "receive":
            result = ill.receive(args.number)
        elif command == "return":
            result = ill.return_to_lender(args.number)
        elif command == "cancel":
            result = ill.cancel(args.number)
        elif command == "renew":
            result = ill.renew(args.number)
        elif command == "unfill":
            result = ill.unfill(args.number, args.reason, args.note)
        else:  # readers confirm | revoke
            change = ill.confirm_reader if args.readers_command == "confirm" else ill.revoke_reader
            result = change(args.barcode)
            command = f"readers {args.readers_command}"
    return _print_result(result, command, args.json, language)


def cmd_ill_process(args: argparse.Namespace, settings: Settings) -> int:
    as_of = _moment(args.as_of) if args.as_of else None
    store, ill = _ill(settings)
    with store:
        overdue = ill.process(as_of)
    if args.json:
        print(json.dumps({"overdue": overdue}, ensure_ascii=False, indent=2))
    else:
        print(f"overdue sent: {len(overdue)}")
        for number in overdue:
            print(f"  {number}")
    return EXIT_OK


def cmd_ill_list(args: argparse.Namespace, settings: Settings) -> int:
    store, ill = _ill(settings, reads_only=True)
    with store:
        found = ill.list_requests(args.role, args.status)
    if args.json:
        print(json.dumps([request_dict(r) for r in found], ensure_ascii=False, indent=2))
        return EXIT_OK
    for r in found:
        print(
            f"{_label(r):<14} {r.role:<8} {r.status or '-':<16} {r.state:<14} {r.partner:<16}"
            f" {r.barcode or '-':<16} {r.title}"
        )
    print(f"{len(found)} requests")
    return EXIT_OK


def cmd_ill_show(args: argparse.Namespace, settings: Settings) -> int:
    store, ill = _ill(settings, reads_only=True)
    with store:
        view = ill.show(args.number)
    if view is None:
        raise_unknown = f"no interlibrary loan request {args.number}"
        if args.json:
            print(json.dumps({"error": raise_unknown}, ensure_ascii=False))
        else:
            print(f"libgate ill show: {raise_unknown}")
        return EXIT_REFUSED
    data = view_dict(view)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return EXIT_OK
    for key, value in data.items():
        if key != "messages" and value not in (None, "", [], 0):
            print(f"{key}: {value}")
    print("messages:")
    for m in data["messages"]:
        what = m["status"] or m["action"] or ""
        extra = " ".join(x for x in (m["reason_for_message"], m["answer"], m["note"]) if x)
        print(f"  {m['at']} {m['direction']:<3} {m['kind']:<25} {what} {extra}".rstrip())
    return EXIT_OK


def cmd_ill_stats(args: argparse.Namespace, settings: Settings) -> int:
    start = _day(args.start) if args.start else None
    end = _day(args.end) + timedelta(days=1) if args.end else None  # --to is inclusive
    store, ill = _ill(settings, reads_only=True)
    with store:
        lines = ill.stats(start, end)
    if args.json:
        data = {
            "from": args.start,
            "to": args.end,
            "currency": settings.circulation.currency,
            "lines": [asdict(line) for line in lines],
            "requests": sum(line.requests for line in lines),
            "fees": sum(line.fees for line in lines),
        }
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return EXIT_OK
    currency = settings.circulation.currency
    for line in lines:
        print(
            f"{line.role:<8} {line.partner:<16} {line.status or '-':<16} {line.requests:>6}"
            f" {format_money(line.fees, currency):>12}"
        )
    total = sum(line.fees for line in lines)
    print(f"{sum(line.requests for line in lines)} requests; fees {format_money(total, currency)}")
    return EXIT_OK


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--as-of: {text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _day(text: str) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise CliError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ill = commands.add_parser("ill", help="interlibrary loan (ISO 18626), as lender and borrower")
    ill_commands = ill.add_subparsers(dest="ill_command", required=True, metavar="ACTION")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument(
            "--lang", choices=["zh", "en"], help="language of the messages (zh, en)"
        )
        parser.set_defaults(handler=cmd_ill_action)

    p = ill_commands.add_parser("request", help="borrow for a reader: file a request")
    p.add_argument("patron", metavar="PATRON")
    p.add_argument("--title", required=True)
    for flag in ("author", "publisher", "year", "isbn", "issn"):
        p.add_argument(f"--{flag}", default="")
    p.add_argument("--language", dest="language_of_item", default="", help="the item's language")
    p.add_argument("--type", default="", help="material type, e.g. Book")
    p.add_argument(
        "--lender",
        action="append",
        metavar="AGENCY",
        help="a partner to ask (TYPE:VALUE), in order; repeat for a rota (default: every partner)",
    )
    for flag in ("recipient", "email", "phone", "delivery", "reference", "note"):
        p.add_argument(f"--{flag}", default="")
    common(p)
    for name, text in (
        ("ship", "lender: lend the set-aside copy (sends Loaned with the due date)"),
        ("receive", "borrower: the book arrived (sends Received, traps it for the reader)"),
        ("return", "borrower: ship the book back to its lender (sends ShippedReturn)"),
        ("cancel", "borrower: ask the lender to cancel"),
        ("renew", "borrower: ask the lender to renew"),
    ):
        p = ill_commands.add_parser(name, help=text)
        p.add_argument("number", metavar="NUMBER")
        common(p)
    p = ill_commands.add_parser("unfill", help="lender: cannot supply after all")
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--reason", required=True, metavar="CODE", help="e.g. NotAvailableForILL")
    p.add_argument("--note", default="", metavar="TEXT")
    common(p)
    readers = ill_commands.add_parser("readers", help="readers registered for interlibrary loan")
    readers_commands = readers.add_subparsers(
        dest="readers_command", required=True, metavar="ACTION"
    )
    for name, text in (
        ("confirm", "confirm a reader's registration"),
        ("revoke", "revoke it"),
    ):
        p = readers_commands.add_parser(name, help=text)
        p.add_argument("barcode", metavar="BARCODE")
        common(p)
    p = ill_commands.add_parser("process", help="lender: send Overdue for passed due dates")
    p.add_argument("--as-of", metavar="ISO-8601", help="process as if it were this time")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_ill_process)
    p = ill_commands.add_parser("list", help="requests, both roles")
    p.add_argument("--role", choices=["lender", "borrower"])
    p.add_argument("--status", metavar="S", help="an ISO 18626 status, e.g. Loaned")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_ill_list)
    p = ill_commands.add_parser("show", help="one request and its message history")
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_ill_show)
    p = ill_commands.add_parser("stats", help="requests and fees by partner and status")
    p.add_argument("--from", dest="start", metavar="DATE")
    p.add_argument("--to", dest="end", metavar="DATE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_ill_stats)
