"""The desk's two doors, the API and the console, give every caller the same verdict.

Every action route of both doors is walked with every role (an agent of the case's queue,
an agent of another queue, a lead, an admin, nobody) and the verdicts compared, and held
against the rules as docs/agents.md states them. Allowed actions are published to the
real broker (nothing decides them here, so they stay pending); refused ones never leave
the desk. The first two tests are the disagreements issue 12 found.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from queues.desk import Role
from tests.desk.conftest import DeskWorld
from tests.kafka_support import create_topics
from tests.queues.case_event_builders import case_id, conversation
from tests.security.desk_support import desk_app, sqlite_world

pytestmark = pytest.mark.kafka

CASE = case_id("ana")  # a case of queue general, owned by nobody
ORIGIN = "http://testserver"


@dataclass
class Desk:
    """A desk on the real broker, its store, and a client (no redirects followed)."""

    world: DeskWorld
    http: TestClient


@pytest.fixture
def desk(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[Desk]:
    actions, presence = f"{topic_prefix}agent.actions", f"{topic_prefix}agents.presence"
    create_topics(kafka_bootstrap, [actions, presence])
    with sqlite_world(tmp_path) as world:
        world.add("gina", "general")
        world.add("otto", "billing")
        world.add("lee", "general", "tier2", role=Role.LEAD)
        world.add("root", role=Role.ADMIN)
        world.apply(conversation("ana", messages=1))
        world.directory.configure_queue("tier2")
        app = desk_app(
            world,
            kafka_bootstrap,
            actions_topic=actions,
            presence_topic=presence,
            outcome_timeout_seconds=0.2,
        )
        with TestClient(app, follow_redirects=False) as http:
            yield Desk(world, http)


def api_verdict(answer: Response) -> str:
    """What the API said, in the words the test compares."""
    words = {401: "unauthenticated", 403: "forbidden", 404: "not found", 422: "unprocessable"}
    if answer.status_code in (200, 202, 409):
        return "allowed"
    return words.get(answer.status_code, f"status {answer.status_code}: {answer.text[:200]}")


def console_verdict(answer: Response) -> str:
    """What the console said: a redirect to the login, back with the stream's verdict, or a
    page with the refusal's status."""
    words = {403: "forbidden", 404: "not found", 422: "unprocessable"}
    if answer.status_code == 303:
        location = answer.headers["location"]
        if location == "/console/login":
            return "unauthenticated"
        if "verdict=failed" in location:
            return f"failed: {location}"
        return "allowed"
    return words.get(answer.status_code, f"status {answer.status_code}: {answer.text[:200]}")


@dataclass(frozen=True)
class Route:
    """One action as each door takes it."""

    name: str
    api: tuple[str, str, dict[str, Any] | None]
    console: tuple[str, dict[str, str]]


def routes(case: str) -> list[Route]:
    """Every action of both doors, on `case`."""
    act = f"/console/cases/{case}/act"
    simple = [
        ("claim", "claim", "claim"),
        ("release", "release", "release"),
        ("status", "status", "pending"),
        ("resolve", "resolve", "resolve"),
        ("reopen", "reopen", "reopen"),
    ]
    found = [
        Route(name, ("POST", f"/v1/cases/{case}/{path}", None), (act, {"action": button}))
        for name, path, button in simple
    ]
    found[2] = Route(
        "status",
        ("POST", f"/v1/cases/{case}/status", {"status": "pending"}),
        (act, {"action": "pending"}),
    )
    found += [
        Route(
            "reply",
            ("POST", f"/v1/cases/{case}/reply", {"text": "Hello"}),
            (f"/console/cases/{case}/reply", {"text": "Hello"}),
        ),
        Route(
            "note",
            ("POST", f"/v1/cases/{case}/notes", {"text": "VIP"}),
            (f"/console/cases/{case}/reply", {"text": "VIP", "internal": "1"}),
        ),
    ]
    for name, body in (
        ("transfer to tier2", {"queue": "tier2"}),
        ("transfer to billing", {"queue": "billing"}),
        ("transfer to a queue that does not exist", {"queue": "nowhere"}),
        ("transfer to gina", {"to_agent": "gina"}),
        ("transfer to otto", {"to_agent": "otto"}),
    ):
        found.append(
            Route(
                name,
                ("POST", f"/v1/cases/{case}/transfer", body),
                (f"/console/cases/{case}/transfer", body),
            )
        )
    for target in ("gina", "otto", "ghost"):
        body = {"to_agent": target}
        found.append(
            Route(
                f"assign to {target}",
                ("POST", f"/v1/cases/{case}/assign", body),
                (f"/console/cases/{case}/assign", body),
            )
        )
    return found


ROLES = ("gina", "otto", "lee", "root", None)
"""An agent of general, an agent of billing only, a lead of general and tier2, an admin, nobody."""

ALLOWED_TO_WORK_THE_CASE = {
    "gina": "allowed",
    "otto": "forbidden",
    "lee": "allowed",
    "root": "allowed",
}

EXPECTED: dict[str, dict[str, str]] = {
    **dict.fromkeys(
        ("claim", "release", "status", "resolve", "reopen", "reply", "note"),
        ALLOWED_TO_WORK_THE_CASE,
    ),
    # Moving a case needs a destination the mover sees, that exists, and (when given) an
    # agent who sees it.
    "transfer to tier2": {
        "gina": "forbidden",
        "otto": "forbidden",
        "lee": "allowed",
        "root": "allowed",
    },
    "transfer to billing": {
        "gina": "forbidden",
        "otto": "forbidden",
        "lee": "forbidden",
        "root": "allowed",
    },
    "transfer to a queue that does not exist": {
        "gina": "forbidden",
        "otto": "forbidden",
        "lee": "forbidden",
        "root": "unprocessable",
    },
    "transfer to gina": ALLOWED_TO_WORK_THE_CASE,
    "transfer to otto": {
        "gina": "unprocessable",
        "otto": "forbidden",
        "lee": "unprocessable",
        "root": "unprocessable",
    },
    # Assigning needs the lead role and an agent who sees the case's queue.
    "assign to gina": {
        "gina": "forbidden",
        "otto": "forbidden",
        "lee": "allowed",
        "root": "allowed",
    },
    **{
        f"assign to {target}": {
            "gina": "forbidden",
            "otto": "forbidden",
            "lee": "unprocessable",
            "root": "unprocessable",
        }
        for target in ("otto", "ghost")
    },
}


def call_api(desk: Desk, route: Route, role: str | None) -> str:
    method, path, body = route.api
    headers = desk.world.auth(role) if role else {}
    headers["Idempotency-Key"] = uuid.uuid4().hex
    return api_verdict(desk.http.request(method, path, json=body, headers=headers))


def call_console(desk: Desk, route: Route, role: str | None) -> str:
    path, form = route.console
    headers = {"Origin": ORIGIN}
    if role:
        headers["Cookie"] = f"escalator_token={desk.world.tokens[role]}"
    answer = desk.http.post(path, data={**form, "action_id": uuid.uuid4().hex}, headers=headers)
    return console_verdict(answer)


def test_every_action_of_both_doors_gives_every_role_the_same_verdict(desk: Desk) -> None:
    walked: dict[tuple[str, str | None], tuple[str, str]] = {}
    for route in routes(CASE):
        for role in ROLES:
            walked[route.name, role] = (
                call_api(desk, route, role),
                call_console(desk, route, role),
            )
    differ = {key: verdicts for key, verdicts in walked.items() if verdicts[0] != verdicts[1]}
    assert not differ, differ
    for (name, role), (verdict, _same) in walked.items():
        wanted = "unauthenticated" if role is None else EXPECTED[name][role]
        assert verdict == wanted, (name, role, verdict)

    # A case that does not exist is 404 for everybody signed in, whatever the action.
    for route in routes("C-NOSUCHCASE"):
        for role in ROLES:
            api, console = call_api(desk, route, role), call_console(desk, route, role)
            wanted = "unauthenticated" if role is None else "not found"
            assert (api, console) == (wanted, wanted), (route.name, role)


def test_presence_through_both_doors(desk: Desk) -> None:
    for role in ROLES:
        headers = desk.world.auth(role) if role else {}
        api = desk.http.put("/v1/me/presence", json={"presence": "away"}, headers=headers)
        form = {"presence": "away", "back": "/console/queue"}
        console_headers = {"Origin": ORIGIN}
        if role:
            console_headers["Cookie"] = f"escalator_token={desk.world.tokens[role]}"
        console = desk.http.post("/console/presence", data=form, headers=console_headers)
        wanted = "unauthenticated" if role is None else "allowed"
        assert (api_verdict(api), console_verdict(console)) == (wanted, wanted), role


def test_the_api_assigns_only_to_an_agent_who_sees_the_cases_queue(desk: Desk) -> None:
    answer = desk.http.post(
        f"/v1/cases/{CASE}/assign", json={"to_agent": "otto"}, headers=desk.world.auth("lee")
    )
    assert answer.status_code == 422, answer.text
    assert "otto" in answer.json()["detail"]


def test_the_api_transfers_only_to_a_queue_the_mover_is_in(desk: Desk) -> None:
    answer = desk.http.post(
        f"/v1/cases/{CASE}/transfer", json={"queue": "billing"}, headers=desk.world.auth("gina")
    )
    assert answer.status_code == 403, answer.text
    assert "billing" in answer.json()["detail"]
