"""Shared fixtures. Storage tests run on both engines.

PostgreSQL tests run when LIBGATE_TEST_POSTGRES is set (a DSN, or `1` for the local server's
`test` database). When it is set and the server cannot be reached, those tests FAIL: CI sets it,
and a silently skipped engine would hide a broken half of the product.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import settings as hypothesis_settings

from gateway.store import Store, open_store
from gateway.store.migrate import migrate

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REAL = FIXTURES / "marc" / "real"
POSTGRES_ENV = "LIBGATE_TEST_POSTGRES"
LOCAL_POSTGRES = "postgresql:///test"

# Property and fuzz tests explore the same examples on every run by default, so a run that
# passed passes again (CI included). `HYPOTHESIS_PROFILE=explore` searches afresh each time:
# run it on demand and turn what it finds into fixed tests.
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def postgres_base_url() -> str | None:
    value = os.environ.get(POSTGRES_ENV, "").strip()
    if not value:
        return None
    return LOCAL_POSTGRES if value == "1" else value


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[object]:
    """A psycopg connection for creating and dropping per-test schemas."""
    base = postgres_base_url()
    if base is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}=1 (or a DSN); CI sets it")
    import psycopg

    try:
        connection = psycopg.connect(base, autocommit=True, connect_timeout=5)
    except psycopg.Error as error:
        pytest.fail(f"{POSTGRES_ENV} is set but PostgreSQL at {base} is unreachable: {error}")
    yield connection
    connection.close()


@contextmanager
def fresh_schema_url(admin: Any, schema: str) -> Iterator[str]:
    """A storage URL whose search_path is `schema`, created now and dropped (with the search
    index the store made in its default place) afterwards."""
    admin.execute(f'CREATE SCHEMA "{schema}"')
    base = postgres_base_url()
    assert base is not None
    url = _with_search_path(base, schema)
    try:
        yield url
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        _remove_default_search_index(url)


@pytest.fixture
def postgres_url(postgres_admin) -> Iterator[str]:
    """A storage URL whose search_path is a fresh schema, dropped after the test."""
    with fresh_schema_url(postgres_admin, "t_" + uuid.uuid4().hex[:12]) as url:
        yield url


@pytest.fixture
def own_postgres_database(postgres_admin) -> Iterator[tuple[str, Any, str]]:
    """A PostgreSQL database of the test's own, for tests that take it away under a running
    gateway: its URL, the admin connection and its name; dropped afterwards."""
    name = "libgate_t_" + uuid.uuid4().hex[:10]
    postgres_admin.execute(f'CREATE DATABASE "{name}"')
    base = postgres_base_url()
    assert base is not None
    try:
        yield base.rsplit("/", 1)[0] + "/" + name, postgres_admin, name
    finally:
        postgres_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _remove_default_search_index(url: str) -> None:
    """The search index a PostgreSQL store of this test made in its default place (var/search/),
    which a dropped schema leaves behind."""
    import hashlib
    import shutil

    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    shutil.rmtree(Path("var") / "search" / digest, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path) -> str:
    """A storage URL on each engine; the PostgreSQL one is a fresh schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'libgate.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    migrate(opened)
    yield opened
    opened.close()


@pytest.fixture
def config_file(tmp_path: Path, store_url: str) -> Path:
    """A config naming the test's database; tests append sections as they need."""
    path = tmp_path / "libgate.toml"
    path.write_text(f'[storage]\nurl = "{store_url}"\n', encoding="utf-8")
    return path
