"""What an overlay changes in a record: a short field diff a cataloger can read.

Fields are compared tag by tag, occurrence by occurrence (the first 700 against the first 700,
...); an occurrence only in the new record is `added`, only in the old one `removed`, and one
that differs is `changed`. Short fields show their text (`old` → `new`); long ones only say
that they changed, to keep a report of thousands of overlays readable.
"""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

from marc.errors import RecordRejected
from marc.export import stored_record
from marc.record import Field

SHORT_FIELD = 80  # characters of a field's text shown as it is
MAX_CHANGES = 40  # changes listed per record; a count says how many more


def field_text(field: Field) -> str:
    """A field as catalogers write it: `value` for a control field, else indicators and
    `$a...$b...`."""
    if field.value is not None:
        return field.value
    indicators = field.indicators.replace(" ", "#")
    return indicators + " " + "".join(f"${code}{value}" for code, value in field.subfields)


def _shown(text: str) -> str:
    return text if len(text) <= SHORT_FIELD else text[: SHORT_FIELD - 1] + "…"


def record_changes(old_marc: bytes, new_marc: bytes) -> list[dict[str, Any]]:
    """The fields that differ between two stored records (UTF-8 ISO 2709 as we write it), in
    tag order; each {tag, change: added|removed|changed, old?, new?}."""
    try:
        old, new = stored_record(old_marc), stored_record(new_marc)
    except RecordRejected as problem:  # a stored record we cannot read back: say so, no diff
        return [{"tag": "", "change": "unreadable", "old": problem.reason}]
    old_fields: dict[str, list[str]] = {}
    new_fields: dict[str, list[str]] = {}
    for fields, into in ((old.fields, old_fields), (new.fields, new_fields)):
        for field in fields:
            into.setdefault(field.tag, []).append(field_text(field))
    changes: list[dict[str, Any]] = []
    if old.leader[5:10] != new.leader[5:10]:
        changes.append({"tag": "LDR", "change": "changed", "old": old.leader, "new": new.leader})
    for tag in sorted(set(old_fields) | set(new_fields)):
        pairs = zip_longest(old_fields.get(tag, []), new_fields.get(tag, []))
        for before, after in pairs:
            if before == after:
                continue
            if before is None:
                changes.append({"tag": tag, "change": "added", "new": _shown(after)})
            elif after is None:
                changes.append({"tag": tag, "change": "removed", "old": _shown(before)})
            else:
                changes.append(
                    {"tag": tag, "change": "changed", "old": _shown(before), "new": _shown(after)}
                )
    if len(changes) > MAX_CHANGES:
        more = len(changes) - MAX_CHANGES
        changes = changes[:MAX_CHANGES] + [{"tag": "", "change": f"{more} more"}]
    return changes


def change_line(change: dict[str, Any]) -> str:
    """One change as the terminal shows it: `200 changed: 1# $a旧 → 1# $a新`."""
    tag, kind = change["tag"], change["change"]
    if kind == "added":
        return f"{tag} added: {change['new']}"
    if kind == "removed":
        return f"{tag} removed: {change['old']}"
    if kind == "changed":
        return f"{tag} changed: {change['old']} → {change['new']}"
    if kind == "unreadable":
        return f"the stored version cannot be read: {change['old']}"
    return f"... {kind} changes"
