"""I1 for a partner's copy seen in a union search: does it offer an interlibrary loan request?

At the lender, I1 is decided over its own copies (ill_lending.decide). A partner's copy is known
only as the partner's catalogue shows it: its OPAC record's circulation data (availableNow,
restrictions, a due date) or, in a plain MARC record, the status word and item type its holdings
fields carry. The union front-end asks `offers_ill` for every such copy and shows or uses the
answer; it never decides itself. The lender still decides I1 on its own copies when the request
arrives: this is the borrower's best reading of what the partner shows, not a promise.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.circulation.policy import Policy
from gateway.circulation.reasons import Reason, reason


@dataclass(frozen=True)
class PartnerCopy:
    """One copy a partner's catalogue shows. `available_now` is the OPAC's availableNow (None
    when the record has no circulation data, e.g. MARC holdings fields: then `status` is the
    partner's status word); `item_type` is the type word when the partner gives one."""

    location: str = ""
    call_number: str = ""
    item_id: str = ""  # the copy's barcode
    available_now: bool | None = None
    restrictions: str = ""  # the OPAC's restrictions (在馆阅览 / In library use only …)
    due_date: str = ""  # when a copy on loan is due back, as the partner writes it
    status: str = ""  # the partner's status word (归还, 借出, …) or its public note
    item_type: str = ""  # the partner's item type word (参考外借资料, …)
    on_hold: bool = False  # trapped for one of the partner's readers


def offers_ill(copy: PartnerCopy, policy: Policy) -> Reason | None:
    """I1 for a partner's copy: None when it offers an ILL request (on the shelf and of a
    lendable type), else why not.

    On the shelf: availableNow when the partner sends circulation data (and no hold trapped
    it), else the partner's status word is the on-shelf word ([circulation] on_shelf_status,
    归还: union catalogues share the seed's vocabulary). Lendable: no restriction on the copy
    (a restricted copy is for use in the partner's building), and an item type word we know
    ([[item_types]] ill_lendable) is a lendable one; a type word we do not know, or none, is
    left to the lender's own I1 when the request arrives."""
    if copy.restrictions.strip():
        return reason("ill_partner_restricted", restriction=copy.restrictions.strip())
    if copy.item_type and not policy.ill_lendable_types.get(copy.item_type, True):
        return reason(
            "ill_partner_type_not_lendable",
            item_type=copy.item_type,
            types=lendable_type_words(policy),
        )
    if copy.on_hold:
        return reason("ill_partner_not_on_shelf", status=copy.status or "on hold")
    if copy.available_now is None:
        on_shelf = copy.status.strip() == policy.circulation.on_shelf_status
    else:
        on_shelf = copy.available_now
    if not on_shelf:
        status = copy.status or (f"due {copy.due_date}" if copy.due_date else "not available")
        return reason("ill_partner_not_on_shelf", status=status)
    return None


def lendable_type_words(policy: Policy) -> str:
    return "、".join(sorted(t for t, ok in policy.ill_lendable_types.items() if ok)) or "-"


__all__ = ["PartnerCopy", "lendable_type_words", "offers_ill"]
