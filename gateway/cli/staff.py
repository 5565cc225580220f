"""The staff channel: `libgate circ …` (including fees), `libgate holds process`,
`libgate notices list`, `libgate patrons import`.

The service desk uses the same engine as every other channel; this module is an adapter like
the protocol front-ends: it only parses arguments, calls the engine and prints its reasons.
A refusal exits with code 3 (`EXIT_REFUSED`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.circulation.availability import ShelfState, shelf_state_label
from gateway.circulation.clock import SystemClock
from gateway.circulation.engine import (
    DESK,
    CancelResult,
    CheckinResult,
    CheckoutResult,
    Engine,
    FeeResult,
    HoldResult,
    RenewResult,
)
from gateway.circulation.money import format_money, parse_amount
from gateway.circulation.patrons_import import PatronsFileError, import_patrons
from gateway.circulation.policy import Policy
from gateway.circulation.storage import Copy, Patron, RecordLabel
from gateway.circulation.views import FEE_KINDS, ItemView, PatronSummary
from gateway.cli.errors import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, CliError
from gateway.config import Settings
from gateway.notify.outbox import list_notices
from gateway.store import Store, open_existing_store, open_migrated_store


def _engine(settings: Settings, *, reads_only: bool = False) -> tuple[Store, Engine]:
    """The store and engine of a desk command; one that only reads opens an existing store."""
    store = (open_existing_store if reads_only else open_migrated_store)(settings.storage)
    return store, Engine(store, Policy.from_settings(settings), SystemClock())


# The desk commands that only look: they never create a database.
READ_ONLY_CIRC = ("status", "fees")

CircResult = CheckoutResult | CheckinResult | RenewResult | HoldResult | CancelResult | FeeResult


@dataclass(frozen=True)
class _Shown:
    """What the desk prints of any circulation result: the fields of the JSON contract."""

    patron: Patron | None = None
    copy: Copy | None = None
    record: RecordLabel | None = None
    due_at: str | None = None
    hold: dict[str, Any] | None = None
    trapped_for: Patron | None = None
    fee_id: int | None = None
    amount_paid: int | None = None
    balance: int | None = None


def _hold(
    hold_id: int | None,
    state: str | None,
    *,
    queue_position: int | None = None,
    pickup_deadline: str | None = None,
    pickup_desk: str | None = None,
    expires_at: str | None = None,
) -> dict[str, Any] | None:
    if not hold_id:
        return None
    return {
        "id": hold_id,
        "state": state,
        "queue_position": queue_position,
        "pickup_deadline": pickup_deadline,
        "pickup_desk": pickup_desk,
        "expires_at": expires_at,
    }


def _shown(result: CircResult) -> _Shown:
    if isinstance(result, CheckoutResult):
        return _Shown(
            result.patron,
            result.copy,
            result.record,
            result.due_at,
            _hold(result.fulfilled_hold_id, "fulfilled"),
        )
    if isinstance(result, CheckinResult):
        hold = _hold(
            result.hold_id,
            "ready",
            pickup_deadline=result.pickup_deadline,
            pickup_desk=result.pickup_desk,
        )
        return _Shown(
            result.patron, result.copy, result.record, result.due_at, hold, result.trapped_for
        )
    if isinstance(result, RenewResult):
        return _Shown(result.patron, result.copy, result.record, result.due_at)
    if isinstance(result, HoldResult):
        hold = _hold(
            result.hold_id,
            result.hold_state,
            queue_position=result.queue_position,
            pickup_deadline=result.pickup_deadline,
            pickup_desk=result.pickup_desk,
            expires_at=result.expires_at,
        )
        return _Shown(result.patron, record=result.record, hold=hold)
    if isinstance(result, CancelResult):
        return _Shown(result.patron, record=result.record, hold=_hold(result.hold_id, "cancelled"))
    return _Shown(result.patron, fee_id=result.fee_id, balance=result.balance)


def outcome_dict(outcome: CircResult) -> dict[str, Any]:
    def person(p: Patron | None) -> dict[str, str] | None:
        return {"barcode": p.barcode, "name": p.name} if p else None

    shown = _shown(outcome)
    return {
        "ok": outcome.ok,
        "action": outcome.action,
        "reasons": [r.as_dict() for r in outcome.reasons],
        "notes": [r.as_dict() for r in outcome.notes],
        "patron": person(shown.patron),
        "item": shown.copy.barcode if shown.copy else None,
        "record": (
            {
                "database": shown.record.database,
                "id": shown.record.record_id,
                "title": shown.record.title,
            }
            if shown.record
            else None
        ),
        "due_at": shown.due_at,
        "hold": shown.hold,
        "trapped_for": person(shown.trapped_for),
        "fee_id": shown.fee_id,
        "amount_paid": shown.amount_paid,
        "balance": shown.balance,
    }


def _print(outcome: CircResult, as_json: bool, language: str, currency: str = "CNY") -> int:
    if as_json:
        print(json.dumps(outcome_dict(outcome), ensure_ascii=False, indent=2))
    else:
        shown = _shown(outcome)
        word = "OK" if outcome.ok else "REFUSED"
        print(f"{word}: {outcome.action}")
        for r in outcome.reasons:
            print(f"  [{r.rule or '-'} {r.code}] {r.message(language)}")
        for r in outcome.notes:
            print(f"  [{r.rule or '-'} {r.code}] {r.message(language)}")
        if shown.due_at:
            print(f"  due: {shown.due_at}")
        if shown.hold and outcome.ok:
            position = shown.hold["queue_position"]
            print(
                f"  hold {shown.hold['id']}: {shown.hold['state']}"
                + (f", queue position {position}" if position else "")
            )
        if shown.fee_id and outcome.ok:
            print(f"  fee {shown.fee_id}")
        if shown.balance is not None:
            print(f"  owed: {format_money(shown.balance, currency)}")
    return EXIT_OK if outcome.ok else EXIT_REFUSED


def cmd_circ(args: argparse.Namespace, settings: Settings) -> int:
    store, engine = _engine(settings, reads_only=args.circ_command in READ_ONLY_CIRC)
    language = args.language or settings.circulation.language
    outcome: CircResult
    with store:
        if args.circ_command == "checkout":
            outcome = engine.checkout(args.patron, args.item, DESK)
        elif args.circ_command == "checkin":
            outcome = engine.checkin(args.item, DESK)
        elif args.circ_command == "renew":
            outcome = engine.renew(args.patron, args.item, DESK)
        elif args.circ_command == "fee":
            try:
                amount = parse_amount(args.amount, settings.circulation.currency)
            except ValueError as error:
                print(f"libgate circ fee add: AMOUNT {error}", file=sys.stderr)
                return EXIT_USAGE
            outcome = engine.add_fee(
                args.patron, amount, kind=args.kind, description=args.description, channel=DESK
            )
        elif args.circ_command == "fees":
            return _fees(engine, args, settings.circulation.currency)
        elif args.circ_command in ("hold", "cancel"):
            # A copy's barcode names its title; anything else is a record id.
            kwargs: dict[str, Any] = (
                {"item_barcode": args.target}
                if engine.item_info(args.target) is not None
                else {"record": (args.database, args.target)}
            )
            method = engine.place_hold if args.circ_command == "hold" else engine.cancel_hold
            outcome = method(args.patron, channel=DESK, **kwargs)
        else:
            return _status(engine, args)
    return _print(outcome, args.json, language, settings.circulation.currency)


def _fees(engine: Engine, args: argparse.Namespace, currency: str) -> int:
    summary = engine.patron_summary(args.patron)
    if summary is None:
        print(f"libgate circ fees: reader {args.patron} is not known", file=sys.stderr)
        return EXIT_REFUSED
    fees = engine.fees_of(args.patron)
    if args.json:
        data = {
            "patron": args.patron,
            "owed": summary.fees_total,
            "currency": summary.currency,
            "fees": [asdict(fee) for fee in fees],
        }
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return EXIT_OK
    for fee in fees:
        state = f"paid {fee.closed_at}" if fee.closed_at else "open"
        print(
            f"{fee.id:>6} {fee.created_at} {fee.kind:<14}"
            f" {format_money(fee.amount, fee.currency):>14}"
            f"  outstanding {format_money(fee.outstanding, fee.currency):>14}  {state}"
            + (f"  {fee.description}" if fee.description else "")
        )
    print(f"{len(fees)} fees; owed {format_money(summary.fees_total, currency)}")
    return EXIT_OK


def _status(engine: Engine, args: argparse.Namespace) -> int:
    summary = engine.patron_summary(args.target)
    if summary is not None:
        data = _reader_status(summary)
    else:
        item = engine.item_info(args.target)
        if item is None:
            print(
                f"libgate circ status: {args.target} is neither a reader nor a copy",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        data = _copy_status(engine, item)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        for line in _status_lines(data):
            print(line)
    return EXIT_OK


def _reader_status(summary: PatronSummary) -> dict[str, Any]:
    patron = summary.patron
    return {
        "patron": {
            "barcode": patron.barcode,
            "name": patron.name,
            "category": patron.category,
            "status": patron.status,
            "no_show_count": patron.no_show_count,
            "hold_suspended_until": patron.hold_suspended_until,
        },
        "loans": [
            {
                "item": loan.item_barcode,
                "title": loan.title,
                "due_at": loan.due_at,
                "renewals": loan.renewals,
            }
            for loan in summary.loans
        ],
        "holds": [
            {
                "id": h.id,
                "title": h.title,
                "state": h.state,
                "placed_at": h.placed_at,
                "expires_at": h.expires_at,
                "pickup_deadline": h.pickup_deadline,
                "pickup_desk": h.pickup_desk,
            }
            for h in summary.open_holds
        ],
    }


def _copy_status(engine: Engine, item: ItemView) -> dict[str, Any]:
    record_pk = item.copy.record_pk
    title = engine.availability([record_pk])[record_pk]
    shown: dict[str, Any] = asdict(title)
    for shown_copy, copy_availability in zip(shown["copies"], title.copies, strict=True):
        # The JSON keeps its original keys in their order; the shelf state comes last.
        state = shown_copy.pop("state")
        shown_copy["available"] = copy_availability.available
        for key in ("due_at", "on_hold_shelf", "pickup_desk"):
            shown_copy[key] = shown_copy.pop(key)
        shown_copy["state"] = str(state)
    return {
        "item": item.copy.barcode,
        "record": [item.record_id, item.title],
        "availability": shown,
    }


def _status_lines(data: dict[str, Any]) -> list[str]:
    """`circ status` for a person at the desk: the same facts as --json, one per line."""
    patron = data.get("patron")
    if patron is not None:
        lines = [
            f"reader {patron['barcode']}: {patron['name']}"
            f" (category {patron['category']}, {patron['status']})"
        ]
        if patron["no_show_count"]:
            lines.append(f"  holds not collected: {patron['no_show_count']}")
        if patron["hold_suspended_until"]:
            lines.append(f"  holds suspended until {patron['hold_suspended_until']}")
        lines.append(f"loans: {len(data['loans'])}")
        for loan in data["loans"]:
            lines.append(
                f"  {loan['item']}  {loan['title']}  due {loan['due_at']}"
                f"  renewals {loan['renewals']}"
            )
        lines.append(f"holds: {len(data['holds'])}")
        for hold in data["holds"]:
            pickup = (
                f"  collect by {hold['pickup_deadline']} at {hold['pickup_desk']}"
                if hold["pickup_deadline"]
                else ""
            )
            lines.append(
                f"  hold {hold['id']}  {hold['title']}  {hold['state']}"
                f"  placed {hold['placed_at']}  expires {hold['expires_at']}{pickup}"
            )
        return lines
    record_id, title = data["record"]
    availability = data["availability"]
    lines = [
        f"copy {data['item']}: record {record_id}  {title}",
        f"  waiting holds: {availability['hold_queue']}",
    ]
    for copy in availability["copies"]:
        if copy["on_hold_shelf"]:
            state = f"on the hold shelf at {copy['pickup_desk']}"
        elif copy["due_at"]:
            state = f"on loan, due {copy['due_at']}"
        else:
            state = shelf_state_label(ShelfState(copy["state"]), "en").lower()
        lines.append(
            f"  {copy['barcode']}  {copy['location']}  {copy['call_number']}"
            f"  {copy['item_type']}  {copy['status']}: {state}"
        )
    return lines


def cmd_holds_process(args: argparse.Namespace, settings: Settings) -> int:
    store, engine = _engine(settings)
    as_of = None
    if args.as_of:
        try:
            as_of = datetime.fromisoformat(args.as_of)
        except ValueError:
            print(f"libgate holds process: --as-of {args.as_of!r} is not ISO 8601", file=sys.stderr)
            return EXIT_USAGE
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
    with store:
        report = engine.process_expiry(as_of)
    if args.json:
        print(json.dumps(asdict(report), ensure_ascii=False, indent=2))
    else:
        print(report.summary())
        for line in report.events:
            print(f"  {line}")
    return EXIT_OK


def cmd_patrons_import(args: argparse.Namespace, settings: Settings) -> int:
    with open_migrated_store(settings.storage) as store:
        try:
            report = import_patrons(store, Path(args.file), Policy.from_settings(settings))
        except PatronsFileError as error:
            raise CliError(str(error)) from None
    report.publish(args.report)
    return EXIT_REFUSED if report.errors else EXIT_OK


def cmd_notices_list(args: argparse.Namespace, settings: Settings) -> int:
    with open_existing_store(settings.storage) as store:
        notices = list_notices(store, failed_only=args.failed)
    if args.json:
        print(json.dumps([asdict(n) for n in notices], ensure_ascii=False, indent=2))
        return EXIT_OK
    for n in notices:
        error = f"  last error: {n.last_error}" if n.last_error else ""
        print(
            f"{n.id:>6} {n.state:<7} {n.kind:<15} {n.to_address:<30} attempts {n.attempts}{error}"
        )
    print(f"{len(notices)} notices" + (" not delivered" if args.failed else ""))
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    circ = commands.add_parser(
        "circ", help="the service desk: checkout, checkin, renew, hold, cancel, status, fees"
    )
    circ_commands = circ.add_subparsers(dest="circ_command", required=True, metavar="ACTION")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument("--language", choices=["zh", "en"], help="language of the messages")
        parser.set_defaults(handler=cmd_circ)

    p = circ_commands.add_parser("checkout", help="lend ITEM to PATRON")
    p.add_argument("patron")
    p.add_argument("item")
    common(p)
    p = circ_commands.add_parser(
        "checkin", help="return ITEM at the desk (traps it for the oldest waiting hold)"
    )
    p.add_argument("item")
    common(p)
    p = circ_commands.add_parser("renew", help="renew PATRON's loan of ITEM")
    p.add_argument("patron")
    p.add_argument("item")
    common(p)
    for name, text in (
        ("hold", "place a title-level hold"),
        ("cancel", "cancel a hold (any time before checkout)"),
    ):
        p = circ_commands.add_parser(name, help=text)
        p.add_argument("patron")
        p.add_argument("target", metavar="RECORD_ID|ITEM")
        p.add_argument("--database", default="main", metavar="NAME")
        common(p)
    p = circ_commands.add_parser(
        "status", help="a reader's loans and holds, or a copy's availability"
    )
    p.add_argument("target", metavar="PATRON|ITEM")
    common(p)
    fee = circ_commands.add_parser("fee", help="charge a reader a fee")
    fee_commands = fee.add_subparsers(dest="fee_command", required=True, metavar="ACTION")
    p = fee_commands.add_parser("add", help="charge PATRON a fee of AMOUNT")
    p.add_argument("patron")
    p.add_argument("amount", help="in the currency's major unit: 2.50 is 2 yuan 5 jiao")
    p.add_argument("--kind", choices=FEE_KINDS, default="other")
    p.add_argument("--description", default="", metavar="TEXT")
    common(p)
    p = circ_commands.add_parser("fees", help="a reader's fees, open and paid, and what is owed")
    p.add_argument("patron")
    common(p)

    holds = commands.add_parser("holds", help="hold maintenance")
    holds_commands = holds.add_subparsers(dest="holds_command", required=True, metavar="ACTION")
    p = holds_commands.add_parser(
        "process", help="apply hold deadlines now (expiry, no-shows, suspensions); safe to repeat"
    )
    p.add_argument("--as-of", metavar="ISO-8601", help="process as if it were this time")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_holds_process)

    notices = commands.add_parser("notices", help="the notice outbox (emails to readers)")
    notices_commands = notices.add_subparsers(
        dest="notices_command", required=True, metavar="ACTION"
    )
    p = notices_commands.add_parser("list", help="list notices; --failed: those not delivered")
    p.add_argument(
        "--failed", action="store_true", help="only notices that failed or are being retried"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_notices_list)

    patrons = commands.add_parser("patrons", help="readers")
    patrons_commands = patrons.add_subparsers(
        dest="patrons_command", required=True, metavar="ACTION"
    )
    p = patrons_commands.add_parser(
        "import", help="import readers from CSV (barcode,name,pin,category,email,phone)"
    )
    p.add_argument("file", metavar="FILE.csv")
    p.add_argument("--report", metavar="PATH")
    p.set_defaults(handler=cmd_patrons_import)
