"""SIP2 requests → engine calls → SIP2 responses. Translation only: every decision is the
engine's (`gateway.circulation.engine`); this module says it in SIP2's fields.

Synchronous: the Twisted adapter runs `Handlers.handle` in a thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from typing import NamedTuple

from gateway.circulation.availability import shelf_state_label
from gateway.circulation.clock import Clock, parse_stamp
from gateway.circulation.engine import (
    CancelResult,
    CheckoutResult,
    Engine,
    HoldResult,
    PaymentResult,
    RenewResult,
)
from gateway.circulation.money import format_amount, parse_amount
from gateway.circulation.pin_guard import PinSource, PinVerdict
from gateway.circulation.reasons import Reason, reason
from gateway.circulation.states import Channel, HoldState
from gateway.circulation.views import PatronSummary
from gateway.config import Sip2Account
from sip2 import codec
from sip2.accounts import Sip2Role, role_of
from sip2.codec import Message
from sip2.session import language_of
from sip2.spec import (
    ALERT_HOLD_HERE,
    CIRCULATION_STATUS,
    LANGUAGE_CODES,
    PATRON_STATUS_FLAGS,
    PAYMENT_TYPES,
    SUMMARY_LISTS,
)

MEDIA_BOOK = "001"
DEFAULT_LIST_LENGTH = 50  # 64 item lists when the SC sends no BP/BQ range
UNKNOWN_PATRON_STATUS = "YYYY" + " " * 10

# Screen messages of the gateway itself (the engine's reasons carry their own).
TEXTS: dict[str, tuple[str, str]] = {
    "pin_wrong": ("密码错误，请重新输入。", "Wrong PIN; please try again."),
    "pin_required": ("请输入密码。", "Please enter your PIN."),
    "pin_wait": (
        "密码错误次数过多，请 {minutes} 分钟后再试，或到服务台咨询。",
        "Too many wrong PINs; try again in {minutes} minutes or ask at the desk.",
    ),
    "checked_out": ("借书成功，应还日期 {due}。", "Checked out; due {due}."),
    "renewed": ("续借成功，应还日期 {due}。", "Renewed; now due {due}."),
    "renewed_instead": (
        "该书已借在您名下，已为您续借，应还日期 {due}。",
        "You already had this copy; it is renewed, now due {due}.",
    ),
    "checked_in": ("还书成功。", "Returned."),
    "need_item": ("请扫描要续借的图书条码。", "Please scan the barcode of the book to renew."),
    "hold_placed": (
        "预约成功，您排在第 {position} 位，预约有效期至 {expires}。",
        "Hold placed; you are number {position} in the queue; it expires on {expires}.",
    ),
    "hold_exists": (
        "您的预约：第 {position} 位，有效期至 {expires}。",
        "Your hold: number {position} in the queue; it expires on {expires}.",
    ),
    "hold_ready": (
        "您预约的书已到，请在 {deadline} 前到 {desk} 取书。",
        "Your hold is ready at {desk}; collect it by {deadline}.",
    ),
    "hold_cancelled": ("预约已取消。", "The hold is cancelled."),
    "pickup_fixed": (
        "取书地点由馆藏所在服务台确定，不能更改。",
        "The pickup desk is the one where the copy is kept; it cannot be changed.",
    ),
    "hold_need_title": (
        "请扫描图书条码或提供书目号。",
        "Please scan the book's barcode or give its record number.",
    ),
    "hold_mode_unknown": ("不支持的预约操作。", "Unsupported hold operation."),
    "fee_paid": ("已缴费 {paid}，尚欠 {balance}。", "Paid {paid}; {balance} still owed."),
    "fee_amount_bad": ("缴费金额无效：{amount}。", "Not a valid amount: {amount}."),
    "renew_all": (
        "续借 {renewed} 册，未续借 {unrenewed} 册。",
        "{renewed} renewed, {unrenewed} not.",
    ),
    "session_ended": ("再见。", "Goodbye."),
    "enabled": ("读者证已恢复使用。", "The card is enabled again."),
    "held_copy_to_desk": (
        "该书已被预约，请将书送至服务台。",
        "This book is reserved; please take it to the service desk.",
    ),
    "properties_saved": ("已更新。", "Updated."),
    "fees_owed": ("您有未缴费用 {amount}。", "You owe {amount}."),
}


class PinCheck(NamedTuple):
    """What checking the PIN a request carries found."""

    verified: bool | None  # None: no PIN sent, or this account does not check PINs
    screen: str | None  # why it failed, for the screen


def text(key: str, language: str, **values: object) -> str:
    zh, en = TEXTS[key]
    return (en if language == "en" else zh).format(**values)


def reasons_text(reasons: tuple[Reason, ...], language: str) -> list[str]:
    return [r.message(language) for r in reasons]


def unknown_reader(barcode: str, language: str) -> str:
    """The engine's own words for a reader it does not know (one wording everywhere)."""
    return reason("patron_unknown", patron=barcode).message(language)


class Handlers:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        zone: tzinfo,
        currency: str | None = None,
        default_database: str = "main",
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.zone = zone
        self._currency = currency
        self.default_database = default_database
        self._table: dict[str, Callable[[Sip2Account, Message, str, str], Message]] = {
            "23": self.patron_status,
            "11": self.checkout,
            "09": self.checkin,
            "01": self.block_patron,
            "63": self.patron_information,
            "17": self.item_information,
            "29": self.renew,
            "65": self.renew_all,
            "15": self.hold,
            "35": self.end_session,
            "37": self.fee_paid,
            "19": self.item_status_update,
            "25": self.patron_enable,
        }

    @property
    def currency(self) -> str:
        """The ISO 4217 code of amounts: the one given, else the engine's policy's
        ([circulation] currency, as in force now: a config reload may change it)."""
        return self._currency or self.engine.policy.circulation.currency

    def handle(self, account: Sip2Account, message: Message, terminal: str) -> Message:
        """The response to one request from a logged-in terminal (`terminal`: login@peer)."""
        language = language_of(message, account)
        return self._table[message.command](account, message, language, terminal)

    # --- helpers ---------------------------------------------------------------------------

    def _now(self) -> str:
        return codec.format_date(self.clock.now(), self.zone)

    def _date(self, stamp: str | None) -> str:
        """An engine timestamp (ISO 8601 UTC) → a SIP2 date; none → empty."""
        if not stamp:
            return ""
        return codec.format_date(parse_stamp(stamp), self.zone)

    def _day(self, stamp: str) -> str:
        """An engine timestamp → the local date a reader reads on a screen."""
        return parse_stamp(stamp).astimezone(self.zone).strftime("%Y-%m-%d")

    def _channel(self, account: Sip2Account) -> Channel:
        return Channel.DESK if role_of(account) is Sip2Role.DESK else Channel.SELF_CHECK

    def _check_pin(
        self, account: Sip2Account, message: Message, language: str, terminal: str
    ) -> PinCheck:
        """The PIN a request carries, checked by the engine behind the back-off it keeps in
        the store for every process (`terminal`: login@address)."""
        if not account.verify_patron_pin:
            return PinCheck(None, None)
        if not message.get("AD"):
            # No PIN: kiosks send an empty AD when they ask for none, unless the library
            # says every request must carry one.
            if account.require_patron_pin:
                return PinCheck(False, text("pin_required", language))
            return PinCheck(None, None)
        reader = message.get("AA")
        source = PinSource(terminal.rpartition("@")[2], terminal, self._channel(account))
        result = self.engine.check_patron_pin(reader, message.get("AD"), source)
        if result.verdict is PinVerdict.RIGHT:
            return PinCheck(True, None)
        if result.verdict is PinVerdict.UNKNOWN_READER:
            return PinCheck(False, unknown_reader(reader, language))
        if result.verdict is PinVerdict.BACKING_OFF:
            minutes = max(1, round(result.wait_seconds / 60))
            return PinCheck(False, text("pin_wait", language, minutes=minutes))
        return PinCheck(False, text("pin_wrong", language))

    def _status(self, summary: PatronSummary | None) -> str:
        if summary is None:
            return UNKNOWN_PATRON_STATUS
        flags = {
            "charge_privileges_denied": summary.charge_denied,
            "renewal_privileges_denied": summary.renewal_denied,
            "hold_privileges_denied": summary.hold_denied,
            "too_many_items_charged": summary.too_many_charged,
            "too_many_items_overdue": summary.too_many_overdue,
            "excessive_outstanding_fees": summary.excessive_fees,
        }
        return "".join("Y" if flags.get(name) else " " for name in PATRON_STATUS_FLAGS)

    def _money(self, amount: int) -> str:
        return format_amount(amount, self.currency)

    # --- patron status (23), block (01 → 24), enable (25 → 26) -----------------------------

    def _patron_fields(
        self,
        account: Sip2Account,
        message: Message,
        language: str,
        terminal: str,
        summary: PatronSummary | None,
        pin: PinCheck | None = None,
    ) -> tuple[dict[str, str], dict[str, str | list[str] | None]]:
        verified, pin_message = pin or self._check_pin(account, message, language, terminal)
        if verified is False and summary is not None:
            return self._withheld(account, message, language, pin_message)
        screen: list[str] = []
        if summary is None:
            screen.append(unknown_reader(message.get("AA"), language))
        else:
            screen += reasons_text(summary.reasons, language)
            if summary.fees_total:
                screen.append(
                    text("fees_owed", language, amount=f"{self._money(summary.fees_total)}")
                )
        if pin_message:
            screen.insert(0, pin_message)
        fixed = {
            "patron_status": self._status(summary),
            "language": LANGUAGE_CODES.get(language, "000"),
            "transaction_date": self._now(),
        }
        fields: dict[str, str | list[str] | None] = {
            "AO": account.institution,
            "AA": message.get("AA"),
            "AE": summary.patron.name if summary else "",
            "BL": "Y" if summary else "N",
            "CQ": "Y" if verified else "N",  # never blank: a blank could read as valid
            "BH": self.currency if summary else None,
            "BV": self._money(summary.fees_total) if summary else None,
            "AF": screen,
        }
        return fixed, fields

    def _withheld(
        self, account: Sip2Account, message: Message, language: str, pin_message: str | None
    ) -> tuple[dict[str, str], dict[str, str | list[str] | None]]:
        """A wrong PIN (or one not checked while the back-off runs) learns that it is invalid
        and nothing else: no name, no flags, no fees, no items (issue 11)."""
        fixed = {
            "patron_status": UNKNOWN_PATRON_STATUS,
            "language": LANGUAGE_CODES.get(language, "000"),
            "transaction_date": self._now(),
        }
        fields: dict[str, str | list[str] | None] = {
            "AO": account.institution,
            "AA": message.get("AA"),
            "AE": "",
            "BL": "Y",  # a request without a PIN says as much: hiding it here would hide nothing
            "CQ": "N",
            "AF": [pin_message or text("pin_wrong", language)],
        }
        return fixed, fields

    def patron_status(
        self, account: Sip2Account, message: Message, language: str, terminal: str
    ) -> Message:
        summary = self.engine.patron_summary(message.get("AA"))
        fixed, fields = self._patron_fields(account, message, language, terminal, summary)
        return codec.build("24", fixed, **fields)

    def block_patron(
        self, account: Sip2Account, message: Message, language: str, terminal: str
    ) -> Message:
        reader = message.get("AA")
        note = message.get("AL") or "blocked by SC"
        if message.fixed.get("card_retained") == "Y":
            note += " (card retained)"
        self.engine.block_patron(reader, note, channel=self._channel(account))
        summary = self.engine.patron_summary(reader)
        fixed, fields = self._patron_fields(account, message, language, terminal, summary)
        if summary is not None:
            fields["AF"] = [reason("patron_blocked").message(language)]
        return codec.build("24", fixed, **fields)

    def patron_enable(
        self, account: Sip2Account, message: Message, language: str, terminal: str
    ) -> Message:
        """25 asks the engine to lift a block (it decides who may); a PIN sent must be right."""
        reader = message.get("AA")
        pin = self._check_pin(account, message, language, terminal)
        screen: list[str] = []
        if pin.verified is not False:  # a wrong PIN: its own message says why
            enabled = self.engine.enable_patron(reader, channel=self._channel(account))
            if enabled.ok:
                screen.append(text("enabled", language))
            else:
                screen += reasons_text(enabled.reasons, language)
        summary = self.engine.patron_summary(reader)
        fixed, fields = self._patron_fields(account, message, language, terminal, summary, pin)
        account_lines = fields["AF"]
        assert isinstance(account_lines, list)  # _patron_fields' screen messages
        # An unknown reader is said once, though the refusal and the account both say it.
        screen += [line for line in account_lines if line not in screen]
        return codec.build(
            "26",
            fixed,
            AO=fields["AO"],
            AA=fields["AA"],
            AE=fields["AE"],
            BL=fields["BL"],
            CQ=fields["CQ"],
            AF=screen,
        )

    # --- patron information (63 → 64) ------------------------------------------------------

    def patron_information(
        self, account: Sip2Account, message: Message, language: str, terminal: str
    ) -> Message:
        pin = self._check_pin(account, message, language, terminal)
        summary = self.engine.patron_summary(message.get("AA"))
        fixed, fields = self._patron_fields(account, message, language, terminal, summary, pin)
        if pin.verified is False:
            summary = None  # a wrong PIN gets no lists, no counts, no limits, no contacts
        lists: dict[str, list[str]] = {code: [] for code in SUMMARY_LISTS}
        if summary is not None:
            lists["AS"] = [h.item_barcode or h.title for h in summary.ready_holds]
            lists["AT"] = [loan.item_barcode for loan in summary.loans if loan.overdue]
            lists["AU"] = [loan.item_barcode for loan in summary.loans]
            lists["AV"] = [
                f"{fee.id} {self._money(fee.outstanding)} {fee.kind} {fee.description}".strip()
                for fee in summary.fees
            ]
            lists["CD"] = [h.title or h.record_id for h in summary.waiting_holds]
            screen = fields["AF"]
            assert isinstance(screen, list)  # _patron_fields' screen messages
            for hold in summary.ready_holds:
                screen.append(
                    text(
                        "hold_ready",
                        language,
                        desk=hold.pickup_desk or "",
                        deadline=self._day(hold.pickup_deadline) if hold.pickup_deadline else "",
                    )
                )
        fixed |= {
            "hold_items_count": str(len(lists["AS"])),
            "overdue_items_count": str(len(lists["AT"])),
            "charged_items_count": str(len(lists["AU"])),
            "fine_items_count": str(len(lists["AV"])),
            "recall_items_count": "0",
            "unavailable_holds_count": str(len(lists["CD"])),
        }
        # The summary's Y picks the one list to send; BP/BQ (1-based, inclusive) the range.
        summary_flags = message.fixed.get("summary", "")
        chosen = next(
            (
                code
                for index, code in enumerate(SUMMARY_LISTS)
                if summary_flags[index : index + 1] == "Y"
            ),
            None,
        )
        start, end = _range(message.get("BP"), message.get("BQ"))
        if chosen is not None:
            fields[chosen] = lists[chosen][start - 1 : end]
        if summary is not None:
            category = summary.category
            fields |= {
                "BZ": f"{category.max_holds:04d}",
                "CB": f"{category.max_loans:04d}",
                "BE": summary.patron.email or None,
                "BF": summary.patron.phone or None,
            }
        return codec.build("64", fixed, **fields)

    # --- checkout (11), renew (29), renew all (65) ------------------------------------------

    def _loan_response(
        self,
        command: str,
        account: Sip2Account,
        message: Message,
        outcome: CheckoutResult | RenewResult | None,
        screen: list[str],
        renewal: bool,
    ) -> Message:
        ok = outcome is not None and outcome.ok
        title = outcome.record.title if outcome is not None and outcome.record else ""
        return codec.build(
            command,
            {
                "ok": "1" if ok else "0",
                "renewal_ok": "Y" if ok and renewal else "N",
                "magnetic_media": "N",
                "desensitize": "Y" if ok else "N",
                "transaction_date": self._now(),
            },
            AO=account.institution,
            AA=message.get("AA"),
            AB=message.get("AB"),
            AJ=title,
            AH=self._date(outcome.due_at) if ok and outcome is not None else "",
            CK=MEDIA_BOOK if outcome is not None and outcome.copy is not None else None,
            AF=screen,
        )

    def checkout(
        self, account: Sip2Account, message: Message, language: str, terminal: str
    ) -> Message:
        verified, pin_message = self._check_pin(account, message, language, terminal)
        if verified is False:
            return self._loan_response("12", account, message, None, [pin_message or ""], False)
        channel = self._channel(account)
        outcome: CheckoutResult | RenewResult
        outcome = self.engine.checkout(message.get("AA"), message.get("AB"), channel=channel)
        renewal = False
        codes = {r.code for r in outcome.reasons}
        if (
            not outcome.ok
            and "item_on_loan_to_you" in codes
            and message.fixed.get("sc_renewal_policy") == "Y"
        ):
            # The SC may renew instead (its renewal policy Y): a reader re-scanning their book.
            outcome = self.engine.renew(message.get("AA"), message.get("AB"), channel=channel)
            renewal = True
        if outcome.ok:
            key = "renewed_instead" if renewal else "checked_out"
            screen = [text(key, language, due=self._day(outcome.due_at or ""))]
            screen += reasons_text(outcome.notes, language)
        else:
            screen = reasons_text(outcome.reasons, language)
        return self._loan_response("12", account, message, outcome, screen, renewal)

    def renew(
        self, account: Sip2Account, message: Message, language: str, terminal: str
    ) -> Message:
        verified, pin_message = self._check_pin(account, message, language, terminal)
        if verified is False:
            return self._loan_response("30", account, message, None, [pin_message or ""], True)
        if not message.get("AB"):
            return self._loan_response(
                "30", account, message, None, [text("need_item", language)], True
            )
        outcome = self.engine.renew(
            message.get("AA"), message.get("AB"), channel=self._channel(account)
        )
        if outcome.ok:
            screen = [text("renewed", language, due=self._day(outcome.due_at or ""))]
        else:
            screen = reasons_text(outcome.reasons, language)  # every reason, as the engine said
        return self._loan_response("30", account, message, outcome, screen, True)

    def renew_all(
        self, account: Sip2Account, message: Message, language: str, terminal: str
    ) -> Message:
        verified, pin_message = self._check_pin(account, message, language, terminal)
        result = None
        if verified is not False:
            result = self.engine.renew_all(message.get("AA"), channel=self._channel(account))
        renewed = [o.copy.barcode for o in result.renewed if o.copy] if result else []
        unrenewed = list(result.refused) if result else []
        screen: list[str] = []
        if pin_message:
            screen.append(pin_message)
        elif result is not None and not result.ok:
            screen += reasons_text(result.reasons, language)
        else:
            screen.append(
                text("renew_all", language, renewed=len(renewed), unrenewed=len(unrenewed))
            )
            for outcome in unrenewed:
                barcode = outcome.copy.barcode if outcome.copy else ""
                screen.append(f"{barcode}: {outcome.message(language)}")
        ok = result is not None and result.ok
        return codec.build(
            "66",
            {
                "ok": "1" if ok else "0",
                "renewed_count": str(len(renewed)),
                "unrenewed_count": str(len(unrenewed)),
                "transaction_date": self._now(),
            },
            AO=account.institution,
            BM=renewed,
            BN=[o.copy.barcode for o in unrenewed if o.copy is not None],
            AF=screen,
        )

    # --- checkin (09 → 10) -----------------------------------------------------------------

    def checkin(
        self, account: Sip2Account, message: Message, language: str, terminal: str
    ) -> Message:
        # no_block Y: the kiosk took the book back while it was offline and now reports it.
        outcome = self.engine.checkin(
            message.get("AB"),
            channel=self._channel(account),
            offline=message.fixed.get("no_block") == "Y",
        )
        codes = {r.code for r in outcome.reasons}
        copy = outcome.copy
        fields: dict[str, str | list[str] | None] = {
            "AO": account.institution,
            "AB": message.get("AB"),
            "AQ": copy.location if copy else "",
            "AJ": outcome.record.title if outcome.record else "",
            "AA": outcome.patron.barcode if outcome.patron else None,
            "CK": MEDIA_BOOK if copy else None,
            "CS": copy.call_number if copy and copy.call_number else None,
        }
        # The engine says where the copy goes (`to_desk`); SIP2 says it with the alert flag.
        ok, alert, resensitize = outcome.ok, outcome.to_desk, outcome.ok
        if outcome.ok:
            screen = [text("checked_in", language)] + reasons_text(outcome.notes, language)
            if outcome.trapped_for is not None:
                # Trapped for a hold: the copy goes to the hold shelf, and we say for whom.
                fields["CV"] = ALERT_HOLD_HERE
                fields["CT"] = outcome.pickup_desk or None
                if account.send_hold_patron:
                    fields["CY"] = outcome.trapped_for.barcode
                    fields["DA"] = outcome.trapped_for.name
        elif "not_on_loan" in codes:
            # Nothing to return: the copy is in the library already; to SIP2 that is no error.
            ok, resensitize = True, True
            screen = reasons_text(outcome.reasons, language)
            if outcome.to_desk:
                screen.append(text("held_copy_to_desk", language))
        else:
            # Refused (a self-check return of a held title, an unknown barcode): alert.
            alert = True
            screen = reasons_text(outcome.reasons, language)
        fields["AF"] = screen
        return codec.build(
            "10",
            {
                "ok": "1" if ok else "0",
                "resensitize": "Y" if resensitize else "N",
                "magnetic_media": "N",
                "alert": "Y" if alert else "N",
                "transaction_date": self._now(),
            },
            **fields,
        )

    # --- item information (17 → 18), item status update (19 → 20) --------------------------

    def item_information(
        self, account: Sip2Account, message: Message, language: str, terminal: str
    ) -> Message:
        item = self.engine.item_info(message.get("AB"))
        if item is None:
            return codec.build(
                "18",
                {
                    "circulation_status": CIRCULATION_STATUS["other"],
                    "security_marker": "01",
                    "fee_type": "01",
                    "transaction_date": self._now(),
                },
                AB=message.get("AB"),
                AJ="",
                AF=[reason("item_unknown", item=message.get("AB")).message(language)],
            )
        status = CIRCULATION_STATUS.get(item.circulation)
        screen: list[str] = []
        if status is None:
            # A state SIP2 has no code for (in library use only): "01 other", and the
            # engine's words for what the reader is told.
            status = CIRCULATION_STATUS["other"]
            screen.append(shelf_state_label(item.state, language))
        return codec.build(
            "18",
            {
                "circulation_status": status,
                "security_marker": "02",
                "fee_type": "01",
                "transaction_date": self._now(),
            },
            CF=str(item.hold_queue),
            AH=self._date(item.due_at) or None,
            CM=self._date(item.pickup_deadline) or None,
            AB=item.copy.barcode,
            AJ=item.title,
            CK=MEDIA_BOOK,
            AQ=item.location,
            AP=item.location,
            CH=item.copy.properties or None,
            CS=item.call_number or None,
            AF=screen or None,
        )

    def item_status_update(
        self, account: Sip2Account, message: Message, language: str, terminal: str
    ) -> Message:
        outcome = self.engine.update_item_properties(
            message.get("AB"), message.get("CH"), channel=self._channel(account)
        )
        screen = (
            [text("properties_saved", language)]
            if outcome.ok
            else reasons_text(outcome.reasons, language)
        )
        return codec.build(
            "20",
            {"item_properties_ok": "1" if outcome.ok else "0", "transaction_date": self._now()},
            AB=message.get("AB"),
            AJ=outcome.record.title if outcome.record else None,
            CH=message.get("CH") if outcome.ok else None,
            AF=screen,
        )

    # --- hold (15 → 16) ----------------------------------------------------------------------

    def hold(self, account: Sip2Account, message: Message, language: str, terminal: str) -> Message:
        mode = message.fixed.get("hold_mode", "")
        verified, pin_message = self._check_pin(account, message, language, terminal)
        screen: list[str] = []
        outcome: HoldResult | CancelResult | None = None
        record, item_barcode = self._hold_target(message)
        if verified is False:
            screen.append(pin_message or "")
        elif record is None and item_barcode is None:
            screen.append(text("hold_need_title", language))
        elif mode not in "+-*" or not mode:
            screen.append(text("hold_mode_unknown", language))
        else:
            reader, channel = message.get("AA"), self._channel(account)
            if mode == "+":
                outcome = self.engine.place_hold(
                    reader, record=record, item_barcode=item_barcode, channel=channel
                )
            elif mode == "-":
                outcome = self.engine.cancel_hold(
                    reader, record=record, item_barcode=item_barcode, channel=channel
                )
            else:
                # `*` changes a hold: ours have nothing a reader may change (the pickup desk
                # follows the copy), so the answer is the hold as it stands.
                outcome = self.engine.hold_status(reader, record=record, item_barcode=item_barcode)
            screen += self._hold_screen(mode, outcome, message, language)
        held = outcome if isinstance(outcome, HoldResult) and outcome.ok else None
        return codec.build(
            "16",
            {
                "ok": "1" if outcome is not None and outcome.ok else "0",
                "available": "Y" if held and held.hold_state == HoldState.READY else "N",
                "transaction_date": self._now(),
            },
            BW=self._date(held.expires_at) if held and held.expires_at else None,
            BR=str(held.queue_position) if held and held.queue_position is not None else None,
            BS=held.pickup_desk if held and held.pickup_desk else None,
            AO=account.institution,
            AA=message.get("AA"),
            AB=message.get("AB") or None,
            AJ=(outcome.record.title if outcome and outcome.record else message.get("AJ")) or None,
            AF=screen,
        )

    def _hold_target(self, message: Message) -> tuple[tuple[str, str] | None, str | None]:
        """(record, item barcode): a hold names a copy (AB: its title) or a title (AJ:
        `record id` or `db/record id`); neither when both are empty."""
        if message.get("AB"):
            return None, message.get("AB")
        title = message.get("AJ").strip()
        if not title:
            return None, None
        database, _, record_id = title.rpartition("/")
        return (database or self.default_database, record_id), None

    def _hold_screen(
        self, mode: str, outcome: HoldResult | CancelResult, message: Message, language: str
    ) -> list[str]:
        if not outcome.ok:
            return reasons_text(outcome.reasons, language)
        if not isinstance(outcome, HoldResult):
            return [text("hold_cancelled", language)]
        key = "hold_placed" if mode == "+" else "hold_exists"
        screen = [
            text(
                key,
                language,
                position=outcome.queue_position or "-",
                expires=self._day(outcome.expires_at) if outcome.expires_at else "-",
            )
        ]
        if message.get("BS") and message.get("BS") != (outcome.pickup_desk or ""):
            screen.append(text("pickup_fixed", language))
        return screen

    # --- end session (35 → 36), fee paid (37 → 38) -------------------------------------------

    def end_session(
        self, account: Sip2Account, message: Message, language: str, terminal: str
    ) -> Message:
        return codec.build(
            "36",
            {"end_session": "Y", "transaction_date": self._now()},
            AO=account.institution,
            AA=message.get("AA"),
            AF=[text("session_ended", language)],
        )

    def fee_paid(
        self, account: Sip2Account, message: Message, language: str, terminal: str
    ) -> Message:
        screen: list[str] = []
        outcome: PaymentResult | None = None
        try:
            amount = parse_amount(message.get("BV").replace(",", "."), self.currency)
        except ValueError:
            amount = None
        fee_id = message.get("CG").strip()
        if amount is None:
            screen.append(text("fee_amount_bad", language, amount=message.get("BV")))
        else:
            outcome = self.engine.pay_fee(
                message.get("AA"),
                amount,
                currency=message.fixed.get("currency_type", "").strip() or None,
                fee_id=int(fee_id) if _is_number(fee_id) else None,
                payment_type=PAYMENT_TYPES.get(message.fixed.get("payment_type", ""), "other"),
                transaction_id=message.get("BK"),
                channel=self._channel(account),
            )
            if outcome.ok:
                screen.append(
                    text(
                        "fee_paid",
                        language,
                        paid=self._money(outcome.amount_paid or 0),
                        balance=self._money(outcome.balance or 0),
                    )
                )
                screen += reasons_text(outcome.notes, language)
            else:
                screen += reasons_text(outcome.reasons, language)
        ok = outcome is not None and outcome.ok
        return codec.build(
            "38",
            {"payment_accepted": "Y" if ok else "N", "transaction_date": self._now()},
            AO=account.institution,
            AA=message.get("AA"),
            BK=message.get("BK") or None,
            AF=screen,
        )


def _is_number(text: str) -> bool:
    """ASCII digits of a sane length (`"²".isdigit()` is true, and int() refuses it)."""
    return text.isascii() and text.isdigit() and len(text) <= 9


def _range(start: str, end: str) -> tuple[int, int]:
    """BP/BQ → a 1-based inclusive range; absent or nonsense → the first DEFAULT_LIST_LENGTH."""
    start, end = start.strip(), end.strip()
    first = int(start) if _is_number(start) and int(start) > 0 else 1
    last = int(end) if _is_number(end) and int(end) >= first else first + DEFAULT_LIST_LENGTH - 1
    return first, min(last, first + DEFAULT_LIST_LENGTH * 20 - 1)
