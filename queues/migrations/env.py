"""Alembic environment of the case store.

`queues.migrate` passes either an open connection (`config.attributes["connection"]`)
or a URL (`sqlalchemy.url`); there is no alembic.ini, so this works when installed.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from queues.engine import make_engine
from queues.models import Base

target_metadata = Base.metadata


def _run_with(connection: Connection) -> None:
    # Batch mode lets later migrations ALTER tables on SQLite too.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run_with(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass a connection or set sqlalchemy.url")
    engine = make_engine(url)
    try:
        with engine.connect() as new_connection:
            _run_with(new_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
