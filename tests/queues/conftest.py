"""Fixtures of the case store tests: a database URL per test, migrated or not.

`database_url` is a fresh SQLite file by default. Set `ESCALATOR_TEST_DATABASE_URL`
(e.g. a PostgreSQL URL) to run the same tests against another server: each test then
starts from an empty schema and leaves none behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from queues import ProjectionMetrics, downgrade, make_engine, make_session_factory, upgrade

TEST_DATABASE_URL_ENV = "ESCALATOR_TEST_DATABASE_URL"


def _fresh_url(tmp_path: Path, name: str) -> Iterator[str]:
    configured = os.environ.get(TEST_DATABASE_URL_ENV)
    if not configured:
        yield f"sqlite:///{(tmp_path / name).as_posix()}"
        return
    downgrade(configured, "base")
    yield configured
    downgrade(configured, "base")


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database (no schema) for this test."""
    yield from _fresh_url(tmp_path, "cases.db")


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
