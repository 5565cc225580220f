"""The golden known-item set is sound before anything is measured against it: well-formed rows,
every kind covered, and every record a row names is in the catalogue it names. The Japanese
readings fixture is what its script writes. (Whether search finds the known items is
tests/test_known_items.py.)"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter

from gateway.catalogue.search import search
from gateway.circulation.policy import Policy
from gateway.config import Settings
from gateway.cql.to_query import cql_to_query
from gateway.store import Store
from tests.known_items_support import (
    KINDS,
    ROOT,
    catalogue_files,
    known_items,
    load_catalogue,
)

RULE = Policy.from_settings(Settings()).availability
READINGS_SCRIPT = ROOT / "scripts" / "make_japanese_readings_fixture.py"


def test_the_set_is_well_formed() -> None:
    items = known_items()
    assert len(items) >= 60
    assert {i.kind for i in items} == set(KINDS)  # every kind, and no other
    assert all(count >= 5 for count in Counter(i.kind for i in items).values())
    databases = {f.database for f in catalogue_files()}
    assert {i.database for i in items} <= databases
    assert all(i.query.strip() == i.query and i.query for i in items)
    repeated = [k for k, n in Counter((i.database, i.query) for i in items).items() if n > 1]
    assert repeated == []
    assert all(i.expected not in i.absent for i in items)


def test_every_record_the_set_names_is_in_its_database(store: Store) -> None:
    load_catalogue(store)
    everything = cql_to_query("cql.allRecords = 1")
    held = {
        database: {
            hit.record_id
            for hit in search(store, everything, database, availability=RULE, limit=1000).hits
        }
        for database in {f.database for f in catalogue_files()}
    }
    missing = [
        f"{item}: {record} is not in {item.database}"
        for item in known_items()
        for record in (item.expected, *item.absent)
        if record not in held[item.database]
    ]
    assert missing == []


def test_readings_fixture_matches_its_script() -> None:
    spec = importlib.util.spec_from_file_location("make_readings", READINGS_SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script  # its dataclasses look their module up while being made
    spec.loader.exec_module(script)
    written = script.OUT.read_bytes()
    assert written == script.build(), (
        "stale: run `python scripts/make_japanese_readings_fixture.py`"
    )
