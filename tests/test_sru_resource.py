"""The SRU listener's service tree: its engine thread pool is capped on SQLite, as SIP2's and
Z39.50's are (one writer; more threads only contend for the GIL and the database lock)."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.circulation.policy import Policy
from gateway.config import settings_from_dict
from gateway.services import ThreadPoolService
from gateway.store import Store
from sru.resource import SQLITE_MAX_THREADS, sru_services


def test_the_sru_thread_pool_is_capped_on_sqlite_only(store: Store) -> None:
    settings = settings_from_dict({"sru": {"threads": SQLITE_MAX_THREADS * 2, "listen": []}})
    engine = Engine(
        store, Policy.from_settings(settings), FixedClock(datetime(2026, 3, 2, tzinfo=UTC))
    )
    service, _listeners = sru_services(settings, store, engine)
    assert isinstance(service, ThreadPoolService)
    expected = SQLITE_MAX_THREADS if store.dialect == "sqlite" else SQLITE_MAX_THREADS * 2
    assert service.pool.max == expected
