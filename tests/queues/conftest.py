"""Fixtures of the case store tests: a database URL per test, migrated or not.

`database_url` is parametrized: every test that uses it runs once on a fresh SQLite file
and once on a fresh database of the real PostgreSQL server (`postgres_database_url` in
tests/conftest.py), so the store's behaviour is checked on both dialects.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from queues import ProjectionMetrics, make_engine, make_session_factory, upgrade

DIALECTS = ("sqlite", "postgresql")


@pytest.fixture(params=DIALECTS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database (no schema) for this test, on each dialect in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'cases.db').as_posix()}"
    url: str = request.getfixturevalue("postgres_database_url")
    return url


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """`database_url` with the case store schema at head."""
    upgrade(database_url)
    return database_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    """An engine on the migrated test database."""
    created = make_engine(migrated_url)
    yield created
    created.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions on the migrated test database."""
    return make_session_factory(engine)


@pytest.fixture
def metrics() -> ProjectionMetrics:
    """Projection metrics in a registry of their own, so tests never share counts."""
    return ProjectionMetrics(CollectorRegistry())
