"""A record's copies read against the library's words (gateway.circulation.copy_status), as a
copy CSV is: a synonym becomes the word it stands for (`在架` → the on-shelf word), and a
status or item type the library does not use is a warning naming the copy. A copy with a word
the engine does not know can never be lent (lending asks for the on-shelf word exactly), so
it must not go on the shelf silently. It stays as the file says (the word may be the library's
next config change); the warning says so.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.catalogue.loading.messages import (
    CIRCULATION_STATUS,
    UNKNOWN_COPY_STATUS,
    UNKNOWN_ITEM_TYPE,
)
from gateway.catalogue.loading.prepare import Prepared
from gateway.circulation.copy_status import CopyWords, UnknownWord
from marc.errors import RecordWarning


def checked_copies(prepared: Prepared, words: CopyWords, tag: str) -> Prepared:
    """`prepared` with its copies' words made ours, and a warning for each it cannot."""
    mapped = prepared.mapped
    if not mapped.items:
        return prepared
    items = []
    warnings = list(mapped.warnings)
    for number, item in enumerate(mapped.items, start=1):
        copy = f"{tag} #{number} (barcode {item.barcode})"
        status = item.status
        try:
            status = words.statuses.word(item.status)
        except UnknownWord:
            warnings.append(
                RecordWarning(
                    UNKNOWN_COPY_STATUS,
                    f"{copy}: status “{item.status}” is not one of the library's words",
                    tag,
                )
            )
        else:
            if words.settable(status) is not None:
                warnings.append(
                    RecordWarning(
                        CIRCULATION_STATUS, f"{copy}: status {status} with no loan or hold", tag
                    )
                )
        item_type = item.item_type
        if item_type:
            try:
                item_type = words.item_types.word(item_type)
            except UnknownWord:
                warnings.append(
                    RecordWarning(
                        UNKNOWN_ITEM_TYPE,
                        f"{copy}: item type “{item.item_type}” is not an [[item_types]] name",
                        tag,
                    )
                )
        items.append(replace(item, status=status, item_type=item_type))
    return replace(prepared, mapped=replace(mapped, items=tuple(items), warnings=tuple(warnings)))


__all__ = ["checked_copies"]
