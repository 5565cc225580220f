"""The closed vocabularies of circulation: who acts (channel), where a hold, a loan and a copy
are. String enums, so the stored and wire values stay the plain words they always were."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """Who asked for an action; recorded in every audit event and decides R7 and block lifting."""

    DESK = "desk"  # the service desk: staff CLI, a SIP2 account with role desk
    SELF_CHECK = "selfcheck"  # a self-check machine (SIP2 role kiosk)
    SYSTEM = "system"  # the engine itself: expiry runs (R8, R9, R11)
    ILL = (
        "ill"  # interlibrary loan: a partner's message, or ILL staff (gateway/circulation/ill*.py)
    )
    WEB = "web"  # the readers' portal (web/): a reader acting on their own account


class HoldState(StrEnum):
    """A hold's life (reservation-rules.md, Terms): waiting → ready → fulfilled, or closed."""

    WAITING = "waiting"  # in the queue
    READY = "ready"  # trapped on the hold shelf (R6)
    FULFILLED = "fulfilled"  # checked out by its reader (R14)
    CANCELLED = "cancelled"  # by the reader or staff (R12)
    EXPIRED = "expired"  # not served within the request period (R8)
    NO_SHOW = "no_show"  # not collected within the pickup period (R9)


class LoanState(StrEnum):
    """A loan's life: open until its copy comes back (loans.returned_at); an open loan past
    its due date is overdue (counted by the overdue limit)."""

    ON_LOAN = "on_loan"
    OVERDUE = "overdue"
    RETURNED = "returned"


class CirculationState(StrEnum):
    """Where a copy is, as a self-check machine reports it (SIP2 circulation status): the
    shelf state of the availability rule (availability.py), with a status word's meaning
    when the copy is neither on the shelf nor lent nor trapped."""

    AVAILABLE = "available"  # R2's available copy
    LIBRARY_USE_ONLY = "library_use_only"  # 在馆阅览: on the shelf, its type does not circulate
    ON_LOAN = "on_loan"
    ON_HOLD_SHELF = "on_hold_shelf"
    IN_PROCESS = "in_process"
    MISSING = "missing"
    LOST = "lost"
    OTHER = "other"


# What a copy's status word means to a self-check machine (SIP2 circulation status), for
# words beyond the three configured ones ([circulation] on_shelf/on_loan/on_hold_shelf_status).
# Compared after strip() and lower(); a word not listed (or one of [circulation]
# other_status_words) is "other". These are also status words a copy CSV may give.
STATUS_STATES: dict[str, CirculationState] = {
    "丢失": CirculationState.LOST,
    "遗失": CirculationState.LOST,
    "赔书": CirculationState.LOST,
    "lost": CirculationState.LOST,
    "缺失": CirculationState.MISSING,
    "下落不明": CirculationState.MISSING,
    "missing": CirculationState.MISSING,
    "修补": CirculationState.IN_PROCESS,
    "装订": CirculationState.IN_PROCESS,
    "编目中": CirculationState.IN_PROCESS,
    "加工中": CirculationState.IN_PROCESS,
    "in process": CirculationState.IN_PROCESS,
}


class CardStatus(StrEnum):
    """A reader card's status (patrons.status): a blocked card borrows, renews and holds
    nothing until the desk lifts the block."""

    ACTIVE = "active"
    BLOCKED = "blocked"
