"""The case store's Alembic migrations: create, agree with the models, and undo."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from queues import current_revision, downgrade, head_revision, make_engine, upgrade, upgrade_sql
from queues.models import Base

STORE_TABLES = {"cases", "messages", "case_events", "queues"}


def test_upgrade_on_an_empty_database_creates_the_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) is None

    upgrade(database_url)

    assert set(inspect(engine).get_table_names()) >= STORE_TABLES
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_upgrade_twice_is_harmless(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)
    engine = make_engine(database_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_the_migrations_match_the_models(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_downgrade_to_base_removes_the_tables(migrated_url: str) -> None:
    downgrade(migrated_url, "base")
    engine = make_engine(migrated_url)
    assert not STORE_TABLES & set(inspect(engine).get_table_names())
    assert current_revision(engine) is None
    engine.dispose()


def test_the_migration_renders_for_postgresql() -> None:
    script = upgrade_sql("postgresql://escalator@localhost/escalator")

    assert "CREATE TABLE case_events" in script
    assert "TIMESTAMP WITH TIME ZONE" in script
    assert "payload JSON NOT NULL" in script
    assert "CONSTRAINT pk_messages PRIMARY KEY (case_id, message_key)" in script
