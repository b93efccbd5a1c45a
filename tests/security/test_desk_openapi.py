"""The desk's OpenAPI contract, fuzzed by schemathesis as every role and as nobody.

For every operation of the desk API, schemathesis generates requests from the published
schema (valid and invalid ones) and sends them to a desk served by uvicorn on a real store and
a real broker, authenticated as an agent of the case's queue, an agent of another queue, a
lead, an admin, and with no credentials at all. Every answer must be a non-5xx response that
matches the schema the desk publishes for that status.

`ESCALATOR_FUZZ_API_EXAMPLES` sets the examples per operation and role (the test suite's default
is small; `make fuzz` raises it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from queues.desk import Role
from schemas import Topics
from tests.desk.conftest import DeskWorld
from tests.queues.case_event_builders import conversation
from tests.security.desk_support import desk_app, served, sqlite_world
from tests.security.openapi_fuzz import fuzz_openapi

EXAMPLES = int(os.environ.get("ESCALATOR_FUZZ_API_EXAMPLES", "8"))
ROLES = ("agent", "outsider", "lead", "admin", "nobody")

pytestmark = pytest.mark.kafka


class FuzzedDesk:
    """A served desk with one case in `general` and an agent of each role."""

    def __init__(self, url: str, world: DeskWorld) -> None:
        self.url = url
        self.world = world

    def headers(self, role: str) -> dict[str, str]:
        """The credentials of `role` (none for `nobody`)."""
        return {} if role == "nobody" else self.world.auth(role)


@pytest.fixture(scope="module")
def fuzzed_desk(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str
) -> Iterator[FuzzedDesk]:
    """The desk under test, for the whole module."""
    tmp_path: Path = tmp_path_factory.mktemp("desk-openapi")
    topics = Topics("fuzz-desk.")
    with sqlite_world(tmp_path) as world:
        world.add("agent", "general")
        world.add("outsider", "billing")
        world.add("lead", "general", "billing", role=Role.LEAD)
        world.add("admin", role=Role.ADMIN)
        world.apply(conversation("fuzz-customer", queue="general"))
        app = desk_app(
            world,
            kafka_bootstrap,
            actions_topic=topics.agent_actions,
            outcome_timeout_seconds=0.2,
            presence_topic=topics.agent_presence,
        )
        with served(app) as url:
            yield FuzzedDesk(url, world)


def test_no_server_error_and_no_answer_outside_the_schema(fuzzed_desk: FuzzedDesk) -> None:
    callers = [
        {**fuzzed_desk.headers(role), "Origin": fuzzed_desk.url} for role in ROLES
    ]  # the same request from each role in turn
    exercised = fuzz_openapi(fuzzed_desk.url, callers, EXAMPLES)
    assert len(exercised) > 20, "the desk publishes its API"
