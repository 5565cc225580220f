"""Why the engine refused (or what it did), for people and machines. One catalogue.

Each reason has the rule it enforces (R1-R15, or "" for plain facts), a stable code that
protocol layers translate (SIP2 screen messages, SRU diagnostics, ISO 18626 errors), and
messages in Chinese (default) and English that tell the reader what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reason:
    rule: str
    code: str
    zh: str
    en: str
    data: dict[str, str] = field(default_factory=dict, compare=False)

    def message(self, language: str = "zh") -> str:
        return self.en if language == "en" else self.zh

    def as_dict(self) -> dict[str, str]:
        """The reason as the commands' JSON gives it."""
        return {"rule": self.rule, "code": self.code, "zh": self.zh, "en": self.en}


# code: (rule, Chinese, English). Templates take {fields} from the data given to `reason()`.
CATALOGUE: dict[str, tuple[str, str, str]] = {
    "patron_unknown": (
        "",
        "读者证号 {patron} 不存在，请到服务台咨询。",
        "Reader {patron} is not known; please ask at the service desk.",
    ),
    "enable_at_desk": (
        "",
        "读者证的停用只能在服务台解除。",
        "A blocked card can only be enabled again at the service desk.",
    ),
    "patron_blocked": (
        "",
        "读者证已被停用，请到服务台咨询。",
        "This reader card is blocked; please ask at the service desk.",
    ),
    "item_unknown": (
        "",
        "条码 {item} 不是本馆的馆藏，请到服务台咨询。",
        "Barcode {item} is not one of our copies; please ask at the service desk.",
    ),
    "record_unknown": ("", "书目 {record} 不存在。", "Record {record} does not exist."),
    "item_not_circulating": (
        "R1",
        "该书（{item_type}）不外借，只能在馆内阅览。",
        "This copy ({item_type}) does not circulate; read it in the library.",
    ),
    "item_on_loan": ("", "该书已被借出。", "This copy is already on loan."),
    "item_on_loan_to_you": (
        "",
        "该书已借在您的名下；如需延长借期请续借。",
        "You already have this copy on loan; renew it to keep it longer.",
    ),
    "item_not_available": (
        "",
        "该书当前状态为“{status}”，不能借出，请到服务台咨询。",
        "This copy's status is '{status}' and it cannot be lent; please ask at the desk.",
    ),
    "too_many_loans": (
        "",
        "您已借 {count} 册，达到上限 {limit} 册，请先归还部分图书。",
        "You have {count} items on loan, the limit is {limit}; return some first.",
    ),
    "too_many_overdue": (
        "",
        "您有 {count} 册图书已超期（上限 {limit} 册），请先归还超期图书。",
        "You have {count} overdue items (the limit is {limit}); return them first.",
    ),
    "trapped_for_another": (
        "R14",
        "该书是为其他读者预约保留的，不能借出。",
        "This copy is kept on the hold shelf for another reader and cannot be lent.",
    ),
    "not_on_loan": (
        "",
        "该书没有借出记录，无需归还。",
        "This copy is not on loan; there is nothing to return.",
    ),
    "selfcheck_return_held": (
        "R7",
        "该书已被其他读者预约，自助借还机不能归还，请将书送至服务台，由工作人员手工归还。",
        "This book is reserved by another reader and cannot be returned here; please take it to the service desk.",
    ),
    "loan_unknown": ("", "您没有借这本书。", "You do not have this copy on loan."),
    "renew_held_by_other": (
        "R5",
        "该书已被其他读者预约，不能续借，请按期归还。",
        "Another reader has reserved this book, so it cannot be renewed; please return it by the due date.",
    ),
    "renewals_exhausted": (
        "",
        "该书已续借 {count} 次，达到上限，不能再续借。",
        "This loan has been renewed {count} times, the limit; it cannot be renewed again.",
    ),
    "title_not_holdable": (
        "R1",
        "该书没有可外借的复本，不接受预约。",
        "This title has no copy that circulates, so it cannot be reserved.",
    ),
    "ill_copy_not_holdable": (
        "I6",
        "该书是为其他读者从外馆借来的，不接受预约。",
        "This copy was borrowed from another library for a reader; it cannot be reserved.",
    ),
    "copy_available": (
        "R2",
        "该书有可借复本在架，可以直接借阅，无需预约。",
        "A copy of this title is on the shelf: borrow it directly, no hold is needed.",
    ),
    "title_on_loan_to_you": (
        "R3",
        "您已借阅同种书，不能再预约该种书。",
        "You already have a copy of this title on loan, so you cannot reserve it.",
    ),
    "already_held": ("R4", "您已预约过该种书。", "You have already reserved this title."),
    "too_many_holds": (
        "R4",
        "您已有 {count} 条预约，达到最大可预约图书数 {limit}。",
        "You have {count} holds, the most your card allows ({limit}).",
    ),
    "holds_suspended": (
        "R15",
        "您因超过 {limit} 次未取预约书被停预约，{until} 之后可再预约。",
        "You did not collect reserved books more than {limit} times; you can place holds again after {until}.",
    ),
    "hold_unknown": ("R12", "您没有该种书的有效预约。", "You have no open hold on this title."),
    "fees_exceed_limit": (
        "",
        "您尚欠费 {owed}，达到限额 {limit}，暂不能借书，请先缴费。",
        "You owe {owed}, which reaches the limit of {limit}; please pay before borrowing.",
    ),
    "fee_unknown": (
        "",
        "费用 {fee} 不存在，请到服务台咨询。",
        "Fee {fee} is not known; please ask at the service desk.",
    ),
    "fee_kind_unknown": (
        "",
        "费用类型“{kind}”无效，可用：{kinds}。",
        "Fee kind '{kind}' is not known; use one of {kinds}.",
    ),
    "fee_amount_invalid": ("", "费用金额必须大于零。", "A fee must be more than zero."),
    "currency_not_accepted": (
        "",
        "只接受 {currency} 缴费。",
        "Payments are accepted in {currency} only.",
    ),
    "payment_invalid": ("", "缴费金额必须大于零。", "A payment must be more than zero."),
    "no_fees_due": ("", "您没有需要缴纳的费用。", "You have no fees to pay."),
    "payment_exceeds_balance": (
        "",
        "缴费金额 {amount} 超过应缴金额 {balance}，请按应缴金额缴费。",
        "The payment of {amount} is more than the {balance} owed; please pay at most that.",
    ),
    # Interlibrary loan (catalogue-and-ill.md I1-I7): as lender, then as borrower.
    "ill_not_held": (
        "I1",
        "本馆没有该书。",
        "We do not hold this title.",
    ),
    "ill_not_lendable": (
        "I1",
        "本馆该书没有可供馆际互借的复本（仅“{types}”类型可外借）。",
        "We hold this title but no copy of it is lent to other libraries (lendable types: {types}).",
    ),
    "ill_on_loan": (
        "I1",
        "本馆该书可馆际互借的复本均已借出，请稍后再申请。",
        "Every copy of this title we lend to other libraries is on loan; ask again later.",
    ),
    "ill_partner_restricted": (
        "I1",
        "该馆此复本有使用限制（{restriction}），不能申请馆际互借。",
        "That library restricts this copy ({restriction}): it cannot be requested through ILL.",
    ),
    "ill_partner_type_not_lendable": (
        "I1",
        "该馆此复本的馆藏类型“{item_type}”不可馆际互借（仅“{types}”类型可外借）。",
        "That library's copy is of type {item_type}, which is not lent to other libraries"
        " (lendable types: {types}).",
    ),
    "ill_partner_not_on_shelf": (
        "I1",
        "该馆此复本不在架（{status}），只有在架（归还）的复本可申请馆际互借。",
        "That library's copy is not on the shelf ({status}); only a copy on the shelf can be"
        " requested through ILL.",
    ),
    "ill_suspended": (
        "I2",
        "{library}馆际互借服务暂停，暂不受理申请。",
        "{library} has suspended its interlibrary loan service; no requests are accepted now.",
    ),
    "ill_partner_unknown": (
        "I7",
        "{agency} 不是本馆的馆际互借合作馆。",
        "{agency} is not one of our interlibrary loan partners.",
    ),
    "ill_partner_no_url": (
        "I7",
        "合作馆 {agency} 没有配置馆际互借地址。",
        "Partner {agency} has no ISO 18626 address configured.",
    ),
    "ill_no_lender": (
        "I7",
        "没有可以申请的合作馆，请先配置合作馆或指定出借馆。",
        "There is no partner library to ask; configure partners or name a lender.",
    ),
    "ill_reader_not_registered": (
        "I7",
        "读者 {patron} 尚未开通馆际互借，请先由本馆馆际互借员确认注册。",
        "Reader {patron} is not registered for interlibrary loan; the ILL staff must confirm the registration first.",
    ),
    "ill_title_missing": ("I4", "请填写题名。", "The title is required."),
    "ill_title_too_long": (
        "I4",
        "题名最多 {limit} 个字符，现有 {length} 个。",
        "The title may have at most {limit} characters; it has {length}.",
    ),
    "ill_recipient_missing": ("I4", "请填写收件人姓名。", "The recipient's name is required."),
    "ill_email_missing": ("I4", "请填写电子邮件地址。", "An email address is required."),
    "ill_email_invalid": (
        "I4",
        "电子邮件地址“{email}”无效。",
        "The email address '{email}' is not valid.",
    ),
    "ill_note_too_long": (
        "I4",
        "备注最多 {limit} 个字符，现有 {length} 个。",
        "The note may have at most {limit} characters; it has {length}.",
    ),
    "ill_field_too_long": (
        "I4",
        "“{field}”过长（最多 {limit} 个字符）。",
        "'{field}' is too long (at most {limit} characters).",
    ),
    "ill_request_unknown": (
        "",
        "馆际互借申请 {number} 不存在。",
        "Interlibrary loan request {number} does not exist.",
    ),
    "ill_wrong_role": (
        "",
        "申请 {number} 是{role}申请，不能执行该操作。",
        "Request {number} is a {role} request; this action does not apply to it.",
    ),
    "ill_not_now": (
        "",
        "申请 {number} 当前状态为 {state}，不能执行“{action}”。",
        "Request {number} is {state}; '{action}' is not possible now.",
    ),
    "ill_reason_unknown": (
        "",
        "未知的不能满足原因“{given}”，可用：{codes}。",
        "Unknown reason '{given}'; use one of {codes}.",
    ),
    "ill_renewals_exhausted": (
        "I6",
        "该馆际互借已续借 {count} 次，达到上限。",
        "This interlibrary loan has been renewed {count} times, the limit.",
    ),
    # Deleting copies and titles from the catalogue (libgate items delete / records delete):
    # what stops it (unless --force, but for ILL), and what a forced delete did.
    "withdraw_on_loan": (
        "",
        "复本 {item} 已借给读者 {patron}（应还日期 {due}），不能删除；强制删除将结束该借阅。",
        "Copy {item} is on loan to reader {patron} (due {due}); it cannot be deleted."
        " --force ends the loan.",
    ),
    "withdraw_trapped": (
        "R6",
        "复本 {item} 已为读者 {patron} 的预约保留在预约书架上，不能删除；强制删除将取消该预约并通知读者。",
        "Copy {item} is on the hold shelf for reader {patron}'s hold; it cannot be deleted."
        " --force cancels that hold and tells the reader.",
    ),
    "withdraw_title_held": (
        "R6",
        "《{title}》有 {count} 条等待中的预约，其复本不能删除；强制删除时，若该书不再有可外借复本，预约将被取消并通知读者。",
        "{title} has {count} waiting holds, so its copies cannot be deleted. With --force,"
        " holds of a title left with no circulating copy are cancelled and their readers told.",
    ),
    "withdraw_in_ill": (
        "I6",
        "{what} 属于馆际互借申请 {number}（{state}），不能删除。",
        "{what} belongs to interlibrary loan request {number} ({state}); it cannot be deleted.",
    ),
    "withdrawn_loan_ended": (
        "",
        "复本 {item} 被删除，读者 {patron} 的借阅已结束。",
        "Copy {item} is deleted: reader {patron}'s loan of it is ended.",
    ),
    "withdrawn_trapped_cancelled": (
        "R12",
        "复本 {item} 被删除：读者 {patron} 对《{title}》的已到书预约已取消，已通知读者。",
        "Copy {item} is deleted: reader {patron}'s ready hold on {title} is cancelled; the"
        " reader is told.",
    ),
    "withdrawn_holds_cancelled": (
        "R1",
        "《{title}》被删除或已没有可外借复本：读者 {patron} 的预约已取消，已通知读者。",
        "{title} is deleted or has no circulating copy left: reader {patron}'s hold is"
        " cancelled; the reader is told.",
    ),
    # Facts reported with a successful action.
    "hold_trapped": (
        "R6",
        "该书已被 {patron_name} 预约，已转为预约到书，请放到 {desk} 的预约书架，取书截止 {deadline}。",
        "Trapped for {patron_name}'s hold: put it on the hold shelf at {desk}; pickup by {deadline}.",
    ),
    "hold_fulfilled": ("R14", "预约已完成。", "The hold is fulfilled."),
    "fee_added": (
        "",
        "已登记费用 {amount}，共欠 {balance}。",
        "A fee of {amount} is recorded; {balance} is owed in all.",
    ),
    "fee_paid": ("", "已缴费 {amount}，尚欠 {balance}。", "Paid {amount}; {balance} still owed."),
    "transaction_id_reused": (
        "",
        "交易号 {transaction} 已用于另一笔金额不同的缴费，本次未收费，请到服务台处理。",
        "Transaction {transaction} was already used for a payment of another amount; nothing"
        " was charged now; please see the service desk.",
    ),
    "payment_already_recorded": (
        "",
        "该笔缴费（交易号 {transaction}）已经登记过，没有重复收费。",
        "This payment (transaction {transaction}) was already recorded; it was not applied again.",
    ),
}


def reason(code: str, **data: object) -> Reason:
    rule, zh, en = CATALOGUE[code]
    values = {k: str(v) for k, v in data.items()}
    return Reason(
        rule=rule,
        code=code,
        zh=zh.format_map(_Missing(values)),
        en=en.format_map(_Missing(values)),
        data=values,
    )


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""
