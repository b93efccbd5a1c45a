"""A desk on a fresh SQLite store for the security tests, as an attacker meets it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from escalator.demo.processes import free_port
from queues import make_engine, make_session_factory, upgrade
from queues.desk import Directory, create_desk_app
from tests.desk.conftest import DeskWorld

UNUSED_BROKER = "localhost:1"
"""For tests whose requests never reach Kafka (refused, or reads)."""


@contextmanager
def sqlite_world(tmp_path: Path) -> Iterator[DeskWorld]:
    """A migrated SQLite case store with its directory."""
    url = f"sqlite:///{(tmp_path / 'desk.db').as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    try:
        yield DeskWorld(url, Directory(make_session_factory(engine)))
    finally:
        engine.dispose()


def desk_app(world: DeskWorld, bootstrap: str = UNUSED_BROKER, **options: Any) -> FastAPI:
    """A desk app on the world's store."""
    return create_desk_app(
        database_url=world.database_url,
        producer_config={
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "partitioner": "murmur2_random",
        },
        actions_topic=options.pop("actions_topic", "t.agent.actions"),
        **options,
    )


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """`app` served by uvicorn on a free local port, with uvicorn's default proxy settings."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the desk did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
