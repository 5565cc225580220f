"""Notices to readers (R13): rendered from templates and written to the outbox in the same
transaction as the event. A separate loop sends them; sending can never fail circulation."""

from __future__ import annotations

import re

from gateway import metrics
from gateway.circulation.storage import Patron
from gateway.store import Transaction

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# kind: (Chinese subject, Chinese body, English subject, English body)
TEMPLATES: dict[str, tuple[str, str, str, str]] = {
    "hold_placed": (
        "预约成功：{title}",
        "{name}，您好：\n\n您已成功预约《{title}》。预约记录保留至 {expires}。\n",
        "Hold placed: {title}",
        'Dear {name},\n\nYour hold on "{title}" is placed. It stays open until {expires}.\n',
    ),
    "hold_ready": (
        "预约到书通知：{title}",
        "{name}，您好：\n\n您预约的《{title}》已到书，请于 {deadline} 前到 {desk} 借阅。\n",
        "Ready for pickup: {title}",
        'Dear {name},\n\n"{title}" is waiting for you at {desk}. Please collect it by {deadline}.\n',
    ),
    "hold_expired": (
        "预约已过期：{title}",
        "{name}，您好：\n\n您对《{title}》的预约已超过保留期限，自动失效。\n",
        "Hold expired: {title}",
        'Dear {name},\n\nYour hold on "{title}" has expired.\n',
    ),
    "hold_no_show": (
        "预约到书未取：{title}",
        "{name}，您好：\n\n您预约的《{title}》超过取书期限未取，该次预约已失效。\n",
        "Hold not collected: {title}",
        'Dear {name},\n\nYou did not collect "{title}" in time; the hold has lapsed.\n',
    ),
    "hold_suspended": (
        "停预约通知",
        "{name}，您好：\n\n您已超过 {limit} 次未取预约书，{until} 之前不能预约图书。\n",
        "Holds suspended",
        "Dear {name},\n\nYou did not collect reserved books more than {limit} times; you cannot place holds until {until}.\n",
    ),
    "hold_cancelled": (
        "预约已取消：{title}",
        "{name}，您好：\n\n您对《{title}》的预约已取消。\n",
        "Hold cancelled: {title}",
        'Dear {name},\n\nYour hold on "{title}" is cancelled.\n',
    ),
    "ill_accepted": (
        "馆际互借申请已受理：{title}",
        "{name}，您好：\n\n您的馆际互借申请 {number}《{title}》已由 {lender} 受理。\n",
        "Interlibrary loan accepted: {title}",
        'Dear {name},\n\nYour interlibrary loan request {number} for "{title}" was accepted by {lender}.\n',
    ),
    "ill_arrived": (
        "馆际互借到书通知：{title}",
        "{name}，您好：\n\n您的馆际互借申请 {number}《{title}》已到书，请于 {deadline} 前到 {desk} 借阅。\n",
        "Interlibrary loan arrived: {title}",
        'Dear {name},\n\n"{title}" (interlibrary loan {number}) is waiting for you at {desk}. Please collect it by {deadline}.\n',
    ),
    "ill_unfilled": (
        "馆际互借申请未能满足：{title}",
        "{name}，您好：\n\n很抱歉，您的馆际互借申请 {number}《{title}》所有合作馆均无法提供。\n",
        "Interlibrary loan not filled: {title}",
        'Dear {name},\n\nWe are sorry: no partner library could supply "{title}" (interlibrary loan {number}).\n',
    ),
    "ill_overdue": (
        "馆际互借超期：{title}",
        "{name}，您好：\n\n您的馆际互借图书《{title}》（申请 {number}）已超期，请尽快归还。\n",
        "Interlibrary loan overdue: {title}",
        'Dear {name},\n\n"{title}" (interlibrary loan {number}) is overdue; please return it soon.\n',
    ),
}


def queue_notice(
    tx: Transaction, patron: Patron, kind: str, at: str, language: str, **values: str
) -> bool:
    """Write a notice to the outbox; False (nothing queued) when the reader has no valid email."""
    if not EMAIL.match(patron.email or ""):
        return False
    zh_subject, zh_body, en_subject, en_body = TEMPLATES[kind]
    subject, body = (en_subject, en_body) if language == "en" else (zh_subject, zh_body)
    fields = {"name": patron.name, **values}
    tx.execute(
        "INSERT INTO notices (created_at, patron_pk, kind, language, to_address, subject, body,"
        " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            at,
            patron.pk,
            kind,
            language,
            patron.email,
            subject.format(**fields),
            body.format(**fields),
            at,
        ),
    )
    # Counted when written: a transaction rolled back afterwards has counted one too many.
    metrics.notice_queued(kind)
    return True
