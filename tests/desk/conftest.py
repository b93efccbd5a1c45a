"""Fixtures of the desk tests: a migrated store with agents, and a desk app on it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from queues import EventApplier, SourceRecord, make_engine, make_session_factory, upgrade
from queues.desk import Directory, Role, create_desk_app
from schemas import CaseEvent
from tests.queues.case_event_builders import to_bytes


@dataclass
class DeskWorld:
    """A case store with a directory, and the tokens of the agents added to it."""

    database_url: str
    directory: Directory
    tokens: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, *queues: str, role: Role = Role.AGENT, **options: object) -> str:
        """Add an agent to `queues` and remember (and return) their token."""
        _agent, token = self.directory.add_agent(name, role=role, queues=queues, **options)  # type: ignore[arg-type]
        self.tokens[name] = token
        return token

    def auth(self, name: str) -> dict[str, str]:
        """The Authorization header of an agent."""
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def apply(self, events: Sequence[CaseEvent]) -> None:
        """Project case events into the store, in order, as the projection would."""
        engine = make_engine(self.database_url)
        with make_session_factory(engine).begin() as session:
            EventApplier().apply_batch(
                session,
                [SourceRecord(to_bytes(e), partition=0, offset=n) for n, e in enumerate(events)],
            )
        engine.dispose()


@pytest.fixture(params=("sqlite", "postgresql"))
def desk_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeskWorld]:
    """A fresh migrated store with its directory, on SQLite and on PostgreSQL in turn."""
    if request.param == "sqlite":
        url = f"sqlite:///{(tmp_path / 'desk.db').as_posix()}"
    else:
        url = request.getfixturevalue("postgres_database_url")
    upgrade(url)
    engine = make_engine(url)
    yield DeskWorld(url, Directory(make_session_factory(engine)))
    engine.dispose()


def desk_client(
    world: DeskWorld, bootstrap: str, actions_topic: str, **options: object
) -> TestClient:
    """A TestClient of a desk app on the world's store (use it as a context manager).

    It talks to the desk over https (the session cookie is Secure) and, like a browser on the
    console's pages, sends the desk's own `Origin` with every request.
    """
    app = create_desk_app(
        database_url=world.database_url,
        producer_config={
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "partitioner": "murmur2_random",
        },
        actions_topic=actions_topic,
        **options,  # type: ignore[arg-type]
    )
    return TestClient(app, base_url=DESK_ORIGIN, headers={"Origin": DESK_ORIGIN})


DESK_ORIGIN = "https://testserver"
