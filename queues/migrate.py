"""Run the case store's Alembic migrations programmatically (no alembic.ini needed)."""

from __future__ import annotations

import io
from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from queues.engine import make_engine

SCRIPT_LOCATION = "queues:migrations"
"""Where the migration scripts live, as a package resource so installs find them."""


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration for the case store at `database_url`."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    # `%` is ConfigParser's interpolation character; URLs may contain it (passwords).
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    """The newest migration this code knows."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty (never migrated) database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at `database_url` up to `revision` (default: the newest)."""
    _run(database_url, lambda config: command.upgrade(config, revision))


def upgrade_sql(database_url: str, revision: str = "head") -> str:
    """The SQL script that would upgrade an empty database of this dialect, for review by a DBA.

    Nothing connects: only the URL's dialect matters.
    """
    buffer = io.StringIO()
    config = alembic_config(database_url)
    config.output_buffer = buffer
    command.upgrade(config, revision, sql=True)
    return buffer.getvalue()


def downgrade(database_url: str, revision: str = "base") -> None:
    """Take the database down to `revision` (default: drop every table the store owns)."""
    _run(database_url, lambda config: command.downgrade(config, revision))


def _run(database_url: str, step: Callable[[Config], None]) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            step(config)
    finally:
        engine.dispose()
