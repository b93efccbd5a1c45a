"""A running Escalator for desk tests: worker, projection and desk processes on real Kafka."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from queues import make_engine, make_session_factory, upgrade
from queues.desk import Directory, Role
from schemas import Topics
from schemas.ids import customer_id_for_handle
from tests.kafka_support import delete_topics_with_prefix, produce_json
from tests.stack_support import Stack, escalator_stack

RULES = Path(__file__).with_name("desk_rules.yaml")


@dataclass
class DeskStack:
    """The processes, the store's directory and the agents' tokens."""

    stack: Stack
    bootstrap: str
    topics: Topics
    directory: Directory
    tokens: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, *queues: str, role: Role = Role.AGENT, **options: Any) -> None:
        """Add an agent to `queues`."""
        _agent, self.tokens[name] = self.directory.add_agent(
            name, role=role, queues=queues, **options
        )

    def auth(self, name: str) -> dict[str, str]:
        """An agent's Authorization header."""
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def call(self, method: str, path: str, agent: str, **kwargs: Any) -> httpx.Response:
        """One desk API request as `agent`."""
        headers = {**self.auth(agent), **kwargs.pop("headers", {})}
        return httpx.request(
            method, f"{self.stack.desk_url}{path}", headers=headers, timeout=60, **kwargs
        )

    def send(self, senders: Iterable[str], channel: str = "email", text: str = "help") -> list[str]:
        """Customer messages from `senders` (one case each); their customer ids."""
        senders = list(senders)
        now = datetime.now(UTC).isoformat()
        produce_json(
            self.bootstrap,
            self.topics.inbound,
            [
                {
                    "channel": channel,
                    "external_id": f"{sender}-{uuid.uuid4().hex[:6]}",
                    "sender": sender,
                    "text": text,
                    "sent_at": now,
                }
                for sender in senders
            ],
            key=lambda value: value["sender"],
        )
        return [customer_id_for_handle(channel, sender) for sender in senders]

    def wait_for_cases(
        self, customers: list[str], agent: str, queue: str = "general", timeout: float = 90
    ) -> dict[str, dict[str, Any]]:
        """Wait until the desk lists a case of each customer; customer id → case."""
        deadline = time.monotonic() + timeout
        while True:
            listed = self.call("GET", f"/v1/queues/{queue}/cases?limit=200", agent)
            if listed.status_code == 200:
                found = {c["customer_id"]: c for c in listed.json()["cases"]}
                if all(customer in found for customer in customers):
                    return {customer: found[customer] for customer in customers}
            if time.monotonic() > deadline:
                raise AssertionError(f"cases of {customers} not listed: {listed.text[:500]}")
            time.sleep(0.3)

    def wait_for(self, path: str, agent: str, done: Any, timeout: float = 60) -> Any:
        """GET `path` until `done(json)` holds; the last JSON."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.call("GET", path, agent).json()
            if done(body):
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} never satisfied the condition: {body}")
            time.sleep(0.3)


@contextmanager
def desk_stack(
    bootstrap: str, workdir: Path, *, assigner: bool = True, **extra_env: str
) -> Iterator[DeskStack]:
    """Worker, projection and desk on fresh topics; the store migrated before anything starts."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    env = {
        "ESCALATOR_RULES": str(RULES),
        "ESCALATOR_DESK_ASSIGNER": "true" if assigner else "false",
        # agents set online in the store send no heartbeats: only tests of expiry expire them
        "ESCALATOR_DESK_PRESENCE_TIMEOUT_SECONDS": "3600",
        **extra_env,
    }
    try:
        with escalator_stack(bootstrap, prefix, workdir, **env) as stack:
            url = stack.env["ESCALATOR_DATABASE_URL"]
            upgrade(url)
            engine = make_engine(url)
            try:
                world = DeskStack(
                    stack, bootstrap, Topics(prefix), Directory(make_session_factory(engine))
                )
                stack.start_worker()
                stack.start_projection()
                stack.start_desk()
                yield world
            finally:
                engine.dispose()
    finally:
        delete_topics_with_prefix(bootstrap, prefix)
