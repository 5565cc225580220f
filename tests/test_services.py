"""One cap on every front-end's engine threads: at most SQLITE_MAX_THREADS on SQLite (one
writer; more threads only contend for the GIL and the database lock), at most the connection
pool on PostgreSQL, and what the section asks for when that is fewer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.circulation.policy import Policy
from gateway.config import StorageSettings, settings_from_dict
from gateway.services import SQLITE_MAX_THREADS, ThreadPoolService, engine_threads
from gateway.store import Store
from sip2.server import build_sip2_service
from sru.resource import sru_services
from z3950.server import build_z3950_service


@pytest.mark.parametrize("asked", [1, 3, 4, 6, 16])
def test_engine_threads_follow_one_policy_on_each_engine(store: Store, asked: int) -> None:
    storage = StorageSettings(pool_size=6)
    cap = SQLITE_MAX_THREADS if store.dialect == "sqlite" else 6
    assert engine_threads(store, storage, asked) == min(asked, cap)


def test_every_front_end_sizes_its_pool_with_engine_threads(store: Store) -> None:
    settings = settings_from_dict(
        {
            "storage": {"pool_size": 5},
            "sip2": {"threads": 16, "listen": []},
            "sru": {"threads": 16, "listen": []},
            "z3950": {"threads": 16, "listen": []},
        }
    )
    clock = FixedClock(datetime(2026, 3, 2, tzinfo=UTC))
    engine = Engine(store, Policy.from_settings(settings), clock)
    services = [
        build_sip2_service(settings, engine, clock)[0],
        sru_services(settings, store, engine)[0],
        build_z3950_service(settings, store, engine)[0],
    ]
    expected = SQLITE_MAX_THREADS if store.dialect == "sqlite" else 5
    for service in services:
        assert isinstance(service, ThreadPoolService)
        assert service.pool.max == expected
