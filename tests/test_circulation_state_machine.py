"""Random sequences of every action and clock jumps (hypothesis); after each step the stored
state must satisfy every invariant and each action's outcome must agree with R1-R15."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from gateway.circulation import storage
from gateway.circulation.clock import parse_stamp
from gateway.circulation.engine import DESK, SELF_CHECK, Channel
from gateway.store import open_store
from gateway.store.migrate import migrate
from tests.circulation_support import build_library
from tests.test_circulation_concurrency import violations

READERS = st.sampled_from(["A", "B", "C", "D"])
COPIES = st.sampled_from(["O1", "X1", "W1", "W2", "M1", "M2", "R1"])
CHANNELS = st.sampled_from([DESK, SELF_CHECK])

# The test's own reading of R2's "available copy" (reservation-rules.md, Terms), written from
# the rules and circulation_support's library, never from the engine: a circulating type, the
# on-shelf status 归还, not on loan, not trapped for a hold.
CIRCULATING_TYPES = {"普通外借资料", "参考外借资料"}  # 阅览资料 is reading-room only
ON_SHELF = "归还"


def available_by_the_rules(tx, copy: storage.Copy) -> bool:
    on_loan = tx.scalar(
        "SELECT count(*) FROM loans WHERE item_pk = ? AND returned_at IS NULL", (copy.pk,)
    )
    trapped = tx.scalar(
        "SELECT count(*) FROM holds WHERE item_pk = ? AND state = 'ready'", (copy.pk,)
    )
    return (
        copy.item_type in CIRCULATING_TYPES
        and copy.status == ON_SHELF
        and not on_loan
        and not trapped
    )


def machine_for(url_factory, tmp_path: Path):
    class Circulation(RuleBasedStateMachine):
        loans = Bundle("loans")  # (reader, copy) pairs that were lent: aim later steps at them

        def __init__(self) -> None:
            super().__init__()
            self.url, self.cleanup = url_factory()
            self.store = open_store(self.url)
            migrate(self.store)
            folder = tmp_path / uuid.uuid4().hex[:8]
            folder.mkdir()
            self.engine, self.clock = build_library(self.store, folder)

        def teardown(self) -> None:
            self.store.close()
            self.cleanup()

        def _copy_state(self, barcode: str):
            with self.store.read() as tx:
                copy = storage.copy_by_barcode(tx, barcode)
                assert copy is not None
                loan = storage.open_loan_of_copy(tx, copy.pk)
                ready = storage.ready_hold_of_copy(tx, copy.pk)
                waiting = storage.waiting_holds(tx, copy.record_pk)
                copies = storage.copies_of(tx, copy.record_pk)
                available = [c.barcode for c in copies if available_by_the_rules(tx, c)]
            return copy, loan, ready, waiting, available

        @rule(target=loans, reader=READERS, barcode=COPIES, channel=CHANNELS)
        def checkout(self, reader: str, barcode: str, channel: Channel):
            _, _, ready, _, _ = self._copy_state(barcode)
            outcome = self.engine.checkout(reader, barcode, channel)
            if outcome.ok and ready is not None:
                with self.store.read() as tx:
                    assert storage.patron_by_pk(tx, ready.patron_pk).barcode == reader  # R14
            if barcode == "R1":
                assert not outcome.ok  # R1: reading-room copies never circulate
            return multiple((reader, barcode)) if outcome.ok else multiple()

        @rule(loan=loans)
        def renew_a_loan(self, loan: tuple[str, str]) -> None:
            self.renew(*loan)

        @rule(reader=READERS, loan=loans)
        def hold_a_lent_title(self, reader: str, loan: tuple[str, str]) -> None:
            self.hold(reader, loan[1])

        @rule(loan=loans, channel=CHANNELS)
        def return_a_loan(self, loan: tuple[str, str], channel: Channel) -> None:
            self.checkin(loan[1], channel)

        @rule(reader=READERS, loan=loans, channel=CHANNELS)
        def borrow_a_returned_copy(
            self, reader: str, loan: tuple[str, str], channel: Channel
        ) -> None:
            self.checkout(reader, loan[1], channel)

        @rule(barcode=COPIES, channel=CHANNELS)
        def checkin(self, barcode: str, channel: Channel) -> None:
            _, loan, _, waiting, _ = self._copy_state(barcode)
            outcome = self.engine.checkin(barcode, channel)
            if channel == SELF_CHECK and loan is not None and waiting:
                assert not outcome.ok and outcome.reasons[0].rule == "R7"
                _, loan_after, _, _, _ = self._copy_state(barcode)
                assert loan_after == loan  # nothing changed
            if outcome.ok and waiting:
                assert outcome.trapped_for is not None  # R6
                with self.store.read():
                    assert outcome.trapped_for.pk == waiting[0].patron_pk  # oldest first

        @rule(reader=READERS, barcode=COPIES)
        def renew(self, reader: str, barcode: str) -> None:
            _, _, _, waiting, _ = self._copy_state(barcode)
            outcome = self.engine.renew(reader, barcode, DESK)
            if outcome.ok:
                with self.store.read() as tx:
                    patron = storage.patron_by_barcode(tx, reader)
                assert patron is not None
                assert all(h.patron_pk == patron.pk for h in waiting)  # R5

        @rule(reader=READERS, barcode=COPIES)
        def hold(self, reader: str, barcode: str) -> None:
            _, _, _, _, available = self._copy_state(barcode)
            outcome = self.engine.place_hold(reader, item_barcode=barcode)
            if outcome.ok:
                assert not available  # R2
                assert barcode != "R1"  # R1

        @rule(reader=READERS, barcode=COPIES)
        def cancel(self, reader: str, barcode: str) -> None:
            self.engine.cancel_hold(reader, item_barcode=barcode)

        @rule(hours=st.integers(min_value=1, max_value=24 * 40))
        def time_passes(self, hours: int) -> None:
            self.clock.advance(hours=hours)

        @rule()
        def process(self) -> None:
            self.engine.process_expiry()
            again = self.engine.process_expiry()
            assert (again.expired, again.no_shows, again.suspended) == (0, 0, 0)  # idempotent
            now = self.clock.now()
            with self.store.read() as tx:
                overdue = tx.execute(
                    "SELECT expires_at, pickup_deadline, state FROM holds"
                    " WHERE state IN ('waiting', 'ready')"
                )
            for expires, deadline, state in overdue:
                assert parse_stamp(expires) > now or state == "ready"  # R8
                if state == "ready":
                    assert parse_stamp(deadline) > now  # R9

        @invariant()
        def stored_state_is_consistent(self) -> None:
            assert violations(self.store) == []
            with self.store.read() as tx:
                for placed, expires in tx.execute("SELECT placed_at, expires_at FROM holds"):
                    assert parse_stamp(expires) - parse_stamp(placed) == timedelta(days=60)  # R8
                for ready_at, deadline in tx.execute(
                    "SELECT ready_at, pickup_deadline FROM holds WHERE state = 'ready'"
                ):
                    assert parse_stamp(deadline) - parse_stamp(ready_at) == timedelta(days=7)  # R9
                for (status,) in tx.execute(
                    "SELECT i.status FROM holds h JOIN items i ON i.id = h.item_pk WHERE h.state = 'ready'"
                ):
                    assert status == "预约到书"
                suspended = tx.execute(
                    "SELECT barcode FROM patrons WHERE hold_suspended_until IS NOT NULL"
                )
                for (barcode,) in suspended:
                    count = tx.scalar(
                        "SELECT count(*) FROM holds h JOIN patrons p ON p.id = h.patron_pk"
                        " WHERE p.barcode = ? AND h.state = 'no_show'",
                        (barcode,),
                    )
                    assert count > 2  # R11: only more than two no-shows suspend

    return Circulation


@pytest.mark.slow
@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"])
def test_random_circulation_keeps_every_rule(engine_name: str, tmp_path: Path, request) -> None:
    counter = iter(range(10**6))

    if engine_name == "sqlite":

        def url_factory():
            path = tmp_path / f"sm{next(counter)}.db"
            return f"sqlite:///{path}", lambda: None
    else:
        admin = request.getfixturevalue("postgres_admin")
        from tests.conftest import (
            _remove_default_search_index,
            _with_search_path,
            postgres_base_url,
        )

        def url_factory():
            schema = "sm_" + uuid.uuid4().hex[:10]
            admin.execute(f'CREATE SCHEMA "{schema}"')
            base = postgres_base_url()
            assert base is not None
            url = _with_search_path(base, schema)

            def drop() -> None:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
                _remove_default_search_index(url)  # the search index the loader made

            return url, drop

    machine = machine_for(url_factory, tmp_path)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=40,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
