"""From a merged work to an interlibrary loan request: the form pre-filled from the record and
the lender rota from the libraries that hold it (issue 16's "then ILL").

Which partner copies can be lent is the engine's rule (`offers_ill`), asked per copy; which
libraries may be asked is the [ill] partners list. This module only assembles the two: the
request itself is filed by the engine (`InterlibraryLoan.request`), which checks the reader and
the form as for any other request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.circulation.ill import IllForm
from gateway.circulation.ill_partner_copies import offers_ill
from gateway.circulation.policy import Policy
from gateway.circulation.reasons import Reason
from gateway.config import Settings, UnionTarget
from union.merge import MergedRecord, SourceRecord


@dataclass(frozen=True)
class Lender:
    """A library that holds the work and may be asked: its target and agency id."""

    target: str
    agency_id: str
    lendable_copies: int | None  # copies offering ILL; None: the target shows no holdings


@dataclass(frozen=True)
class Passed:
    """A library that holds the work but is not asked, and why (in words for the reader)."""

    target: str
    why: str


@dataclass(frozen=True)
class Rota:
    lenders: tuple[Lender, ...]
    passed: tuple[Passed, ...]

    @property
    def agency_ids(self) -> tuple[str, ...]:
        return tuple(lender.agency_id for lender in self.lenders)


def copy_decisions(source: SourceRecord, policy: Policy) -> list[Reason | None]:
    """The engine's answer for each copy the source shows (None: it offers an ILL request)."""
    return [offers_ill(copy, policy) for copy in source.copies]


def form_from(record: MergedRecord, lenders: Sequence[str], **contact: str) -> IllForm:
    """The request form pre-filled from the work's record; `contact` adds the recipient,
    email, phone, delivery, reference and note (IllForm's own names)."""
    bib = record.bib
    return IllForm(
        title=bib.display_title,
        author=bib.main_author,
        publisher=bib.publisher,
        year=str(bib.year) if bib.year else "",
        isbn=bib.isbns[0] if bib.isbns else "",
        issn=bib.issns[0] if bib.issns else "",
        language=bib.languages[0] if bib.languages else "",
        lenders=tuple(lenders),
        **contact,
    )


def _wanted_order(
    holders: list[str], chosen: Sequence[str], targets: dict[str, UnionTarget]
) -> tuple[list[str], list[Passed]]:
    """The holding targets in the reader's order: `chosen` names targets (or agency ids);
    a chosen library that does not hold the work is passed over, said why."""
    order: list[str] = []
    passed: list[Passed] = []
    for name in chosen:
        matching = [
            t
            for t in holders
            if t == name or (targets[t].agency_id and targets[t].agency_id.upper() == name.upper())
        ]
        if not matching:
            passed.append(Passed(name, "does not hold this work in the results"))
        order += [t for t in matching if t not in order]
    return order, passed


def lender_rota(
    record: MergedRecord,
    settings: Settings,
    policy: Policy,
    chosen: Sequence[str] = (),
) -> Rota:
    """The libraries to ask, in order: those named in `chosen` (target names or agency ids),
    else every holding library in the order it answered; each kept only when its target has an
    agency id, that agency is an [ill] partner, and (when the target shows holdings) one of its
    copies offers an ILL request (`offers_ill`). One entry per agency (a library searched over both
    Z39.50 and SRU is asked once)."""
    targets = {t.name: t for t in settings.union.targets}
    holders = [t for t in record.targets if t in targets]
    passed: list[Passed] = []
    if chosen:
        holders, passed = _wanted_order(holders, chosen, targets)
    lenders: list[Lender] = []
    for name in holders:
        agency = targets[name].agency_id
        if not agency:
            passed.append(Passed(name, "no agency_id in its [[union.targets]] entry"))
            continue
        partner = settings.ill.partner(agency)
        if partner is None:
            passed.append(Passed(name, f"{agency} is not an [ill] partner"))
            continue
        if any(lender.agency_id == partner.agency_id for lender in lenders):
            continue
        sources = [s for s in record.sources if s.target == name]
        lendable: int | None = None
        if any(s.holdings_known for s in sources):
            decisions = [d for s in sources for d in copy_decisions(s, policy)]
            lendable = sum(1 for d in decisions if d is None)
            if not lendable:
                refusals = [d for d in decisions if d is not None]
                why = refusals[0].en if refusals else "it shows no copy of this work"
                passed.append(Passed(name, f"no copy offers ILL: {why}"))
                continue
        lenders.append(Lender(name, partner.agency_id, lendable))
    return Rota(tuple(lenders), tuple(passed))


__all__ = ["Lender", "Passed", "Rota", "copy_decisions", "form_from", "lender_rota"]
