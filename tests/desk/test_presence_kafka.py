"""Presence through the stream, on real Kafka: heartbeats, expiry and a lead's override."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from queues.desk import Mode, Role, Strategy
from tests.desk.stack import DeskStack, desk_stack

TIMEOUT_SECONDS = 4


@pytest.fixture(scope="module")
def desk(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskStack]:
    with desk_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("presence"),
        assigner=True,
        ESCALATOR_DESK_PRESENCE_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
    ) as world:
        world.add("boss", role=Role.ADMIN)
        world.directory.configure_queue("heartbeat", strategy=Strategy.ROUND_ROBIN, mode=Mode.PUSH)
        yield world


class Heartbeat:
    """Sends an agent's heartbeats every second until stopped, like an open console."""

    def __init__(self, desk: DeskStack, agent: str) -> None:
        self._desk, self._agent = desk, agent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._desk.call("POST", "/v1/me/heartbeat", self._agent)
            self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def presence_of(desk: DeskStack, name: str) -> str:
    agents = desk.call("GET", "/v1/agents", "boss").json()["agents"]
    return str(next(a["presence"] for a in agents if a["name"] == name))


def owner_is(agent: str | None) -> Any:
    return lambda case: case["assignee"] == agent


def test_a_silent_agent_goes_offline_and_their_case_goes_to_someone_else(desk: DeskStack) -> None:
    desk.add("hana", "heartbeat")
    desk.add("ivo", "heartbeat")
    answer = desk.call("PUT", "/v1/me/presence", "hana", json={"presence": "online"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["presence"] == "online"  # recorded through agents.presence
    hana = Heartbeat(desk, "hana")
    ivo: Heartbeat | None = None
    try:
        [customer] = desk.send(["beat-1@example.com"], text="heartbeat: help")
        case_id = desk.wait_for_cases([customer], "boss", queue="heartbeat")[customer]["case_id"]
        desk.wait_for(f"/v1/cases/{case_id}", "hana", owner_is("hana"))
        assert desk.call("POST", f"/v1/cases/{case_id}/claim", "hana").status_code == 200
        assert desk.call("PUT", "/v1/me/presence", "ivo", json={"presence": "online"}).is_success
        ivo = Heartbeat(desk, "ivo")
        # heartbeats keep hana online well past the timeout
        desk.wait_for("/v1/me", "hana", lambda me: me["heartbeat_at"] is not None)
        threading.Event().wait(TIMEOUT_SECONDS * 2)
        assert presence_of(desk, "hana") == "online"
        assert desk.call("GET", f"/v1/cases/{case_id}", "boss").json()["assignee"] == "hana"

        hana.stop()  # hana closes the browser
        desk.wait_for("/v1/agents", "boss", lambda body: presence_of(desk, "hana") == "offline")
        detail = desk.wait_for(f"/v1/cases/{case_id}", "boss", owner_is("ivo"))
        released, reassigned = detail["assignments"]
        assert released["agent"] == "hana" and "hana went offline" in released["ended_reason"]
        assert reassigned["agent"] == "ivo"
        assert presence_of(desk, "ivo") == "online"  # ivo's heartbeats kept him online
    finally:
        hana.stop()
        if ivo is not None:
            ivo.stop()


def test_a_lead_replies_sets_status_and_resolves_on_another_agents_case(desk: DeskStack) -> None:
    desk.add("lena", "heartbeat", role=Role.LEAD)
    desk.add("jo", "heartbeat")
    desk.add("kim", "heartbeat")
    jo = Heartbeat(desk, "jo")
    try:
        assert desk.call("PUT", "/v1/me/presence", "jo", json={"presence": "online"}).is_success
        [customer] = desk.send(["lead-1@example.com"], text="heartbeat: lead please")
        case_id = desk.wait_for_cases([customer], "boss", queue="heartbeat")[customer]["case_id"]
        desk.wait_for(f"/v1/cases/{case_id}", "jo", owner_is("jo"))
        assert desk.call("POST", f"/v1/cases/{case_id}/claim", "jo").status_code == 200

        refused = desk.call("POST", f"/v1/cases/{case_id}/reply", "kim", json={"text": "me?"})
        assert refused.status_code == 409 and refused.json()["code"] == "owned_by_other"
        for path, body in (
            ("reply", {"text": "Your lead here: we are on it."}),
            ("notes", {"text": "took over the answer"}),
            ("status", {"status": "pending"}),
        ):
            answer = desk.call("POST", f"/v1/cases/{case_id}/{path}", "lena", json=body)
            assert answer.status_code == 200, (path, answer.text)
            assert answer.json()["case"]["assignee"] == "jo"  # overriding does not take it
        resolved = desk.call("POST", f"/v1/cases/{case_id}/resolve", "lena")
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["case"]["status"] == "resolved"
    finally:
        jo.stop()
