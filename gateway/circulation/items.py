"""Copies: what a self-check machine and a catalogue record show of them (R2's available copy
through the policy's one predicate), and the free text a machine may note about one."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from gateway.circulation import storage
from gateway.circulation.clock import stamp
from gateway.circulation.core import EngineCore
from gateway.circulation.reasons import reason
from gateway.circulation.results import CopyAvailability, ItemUpdateResult, TitleAvailability
from gateway.circulation.states import Channel
from gateway.circulation.views import ItemView
from gateway.store import Transaction


def item_info(core: EngineCore, item_barcode: str) -> ItemView | None:
    """A copy, its title and where it is in circulation (SIP2 17 Item Information)."""
    rule = core.policy.availability
    # One statement: the copy, its title, loan, borrower, trapping hold, holder, queue.
    with core.store.read_statement() as tx:
        card = storage.copy_card(tx, item_barcode)
    if card is None:
        return None
    copy, loan, ready = card.copy, card.loan, card.ready
    on_loan, trapped = loan is not None, ready is not None
    return ItemView(
        copy=copy,
        database=card.label.database,
        record_id=card.label.record_id,
        title=card.label.title,
        author=card.author,
        circulation=core.policy.circulation_state(
            copy.status, copy.item_type, on_loan=on_loan, trapped=trapped
        ),
        circulates=rule.circulates(copy.item_type),
        state=rule.shelf_state(copy.status, copy.item_type, on_loan=on_loan, trapped=trapped),
        due_at=loan.due_at if loan else None,
        loan_patron_barcode=card.borrower_barcode if loan else None,
        hold_queue=card.waiting,
        pickup_deadline=ready.pickup_deadline if ready else None,
        pickup_desk=ready.pickup_desk if ready else None,
        hold_patron_barcode=card.holder_barcode if ready else None,
        hold_patron_name=card.holder_name if ready else None,
        location=copy.location,
        call_number=copy.call_number,
        item_type=copy.item_type,
    )


def availability(core: EngineCore, record_pks: list[int]) -> dict[int, TitleAvailability]:
    """Per copy: R2's availability, its shelf state, due date, hold shelf; per title: the
    hold queue length (SRU holdings, Z39.50 OPAC, the staff status)."""
    rule = core.policy.availability
    result: dict[int, TitleAvailability] = {}
    with core.store.read() as tx:
        for record_pk in record_pks:
            copies = []
            for copy in storage.copies_of(tx, record_pk):
                loan = storage.open_loan_of_copy(tx, copy.pk)
                ready = storage.ready_hold_of_copy(tx, copy.pk)
                on_loan, trapped = loan is not None, ready is not None
                copies.append(
                    CopyAvailability(
                        barcode=copy.barcode,
                        location=copy.location,
                        call_number=copy.call_number,
                        item_type=copy.item_type,
                        status=copy.status,
                        due_at=loan.due_at if loan else None,
                        on_hold_shelf=trapped,
                        pickup_desk=ready.pickup_desk if ready else None,
                        library=copy.library,
                        state=rule.shelf_state(
                            copy.status, copy.item_type, on_loan=on_loan, trapped=trapped
                        ),
                    )
                )
            result[record_pk] = TitleAvailability(
                record_pk, tuple(copies), len(storage.waiting_holds(tx, record_pk))
            )
    return result


def update_item_properties(
    core: EngineCore, item_barcode: str, properties: str, channel: Channel
) -> ItemUpdateResult:
    """Keep free text about a copy (SIP2 19 Item Status Update); circulation ignores it."""

    def work(tx: Transaction, now: datetime) -> ItemUpdateResult:
        copy = storage.lock_copy(tx, item_barcode)
        if copy is None:
            return ItemUpdateResult(ok=False, reasons=(reason("item_unknown", item=item_barcode),))
        storage.set_copy_properties(tx, copy.pk, properties)
        storage.log_event(
            tx,
            stamp(now),
            "item_properties",
            channel,
            item_pk=copy.pk,
            record_pk=copy.record_pk,
            properties=properties,
            was=copy.properties,
        )
        return ItemUpdateResult(
            ok=True,
            copy=replace(copy, properties=properties),
            record=storage.record_label(tx, copy.record_pk),
        )

    return core.write(work)
