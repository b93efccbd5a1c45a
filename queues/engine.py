"""Engines and sessions for the case store, from a plain SQLAlchemy URL.

SQLite gets what a projection writing while the CLI reads needs: the data folder is
created, foreign keys are enforced, and the file runs in WAL mode with a busy timeout.
JSON columns are written with orjson and read with pydantic's parser (`queues.json_codec`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from queues import json_codec

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


def make_engine(database_url: str, *, echo: bool = False) -> Engine:
    """Create an engine for `database_url` (any SQLAlchemy URL; SQLite files get their folder)."""
    url = make_url(database_url)
    connect_args: dict[str, Any] = {}
    is_sqlite = url.get_backend_name() == "sqlite"
    if is_sqlite:
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_SECONDS
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        connect_args=connect_args,
        json_serializer=json_codec.dumps,
        json_deserializer=json_codec.loads,
    )
    if is_sqlite:
        event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)
