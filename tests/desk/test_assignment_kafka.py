"""Push assignment through the real stream: urgency order, capacity, offline and timeouts, skills.

Each test works in a queue of its own (the test rules route a message naming it there).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from queues.desk import Mode, Presence, Role, Strategy
from tests.desk.stack import DeskStack, desk_stack


@pytest.fixture(scope="module")
def desk(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskStack]:
    with desk_stack(kafka_bootstrap, tmp_path_factory.mktemp("assign"), assigner=True) as world:
        world.add("boss", role=Role.ADMIN)
        yield world


def owner_is(agent: str | None, pending: bool | None = None) -> Any:
    def check(case: dict[str, Any]) -> bool:
        return case["assignee"] == agent and (
            pending is None or case["assignment_pending"] is pending
        )

    return check


def test_urgent_first_and_the_next_case_comes_when_capacity_frees(desk: DeskStack) -> None:
    desk.directory.configure_queue("capacity", strategy=Strategy.LEAST_LOADED, mode=Mode.PUSH)
    desk.add("cara", "capacity", capacity={"email": 1})
    normal, urgent = (
        desk.send(["cap-normal@example.com"], text="capacity: my order is late")[0],
        desk.send(["cap-urgent@example.com"], text="capacity: urgent, site down")[0],
    )
    cases = desk.wait_for_cases([normal, urgent], "boss", queue="capacity")
    assert cases[urgent]["priority"] == "urgent"
    first, second = cases[urgent]["case_id"], cases[normal]["case_id"]
    desk.call("PUT", "/v1/me/presence", "cara", json={"presence": "online"})
    desk.wait_for(f"/v1/cases/{first}", "cara", owner_is("cara", pending=True))
    assert desk.call("POST", f"/v1/cases/{first}/claim", "cara").status_code == 200
    assert desk.call("GET", f"/v1/cases/{second}", "cara").json()["assignee"] is None
    assert desk.call("POST", f"/v1/cases/{first}/resolve", "cara").status_code == 200
    detail = desk.wait_for(f"/v1/cases/{second}", "cara", owner_is("cara"))
    [assigned] = [e for e in detail["events"] if e["type"] == "case.assigned"]
    assert assigned["reason"].startswith("assigned to cara by escalator: least loaded: cara")


def test_an_offline_agents_cases_go_back_to_the_queue(desk: DeskStack) -> None:
    desk.directory.configure_queue("offline", strategy=Strategy.ROUND_ROBIN, mode=Mode.PUSH)
    desk.add("olga", "offline")
    desk.add("otto", "offline")
    desk.directory.set_presence("olga", Presence.ONLINE)
    [customer] = desk.send(["off-1@example.com"], text="offline: help")
    case_id = desk.wait_for_cases([customer], "boss", queue="offline")[customer]["case_id"]
    desk.wait_for(f"/v1/cases/{case_id}", "olga", owner_is("olga"))
    assert desk.call("POST", f"/v1/cases/{case_id}/claim", "olga").status_code == 200
    desk.directory.set_presence("otto", Presence.ONLINE)
    desk.call("PUT", "/v1/me/presence", "olga", json={"presence": "offline"})
    detail = desk.wait_for(f"/v1/cases/{case_id}", "boss", owner_is("otto"))
    released, reassigned = detail["assignments"]
    assert released["agent"] == "olga" and "olga went offline" in released["ended_reason"]
    assert reassigned["agent"] == "otto" and reassigned["ended_at"] is None


def test_an_assignment_not_accepted_in_time_goes_to_someone_else(desk: DeskStack) -> None:
    desk.directory.configure_queue(
        "timeout", strategy=Strategy.LEAST_LOADED, mode=Mode.PUSH, accept_timeout_seconds=2
    )
    desk.add("tia", "timeout")
    desk.directory.set_presence("tia", Presence.ONLINE)
    [customer] = desk.send(["slow@example.com"], text="timeout: anyone?")
    case_id = desk.wait_for_cases([customer], "boss", queue="timeout")[customer]["case_id"]
    desk.wait_for(f"/v1/cases/{case_id}", "tia", owner_is("tia", pending=True))
    desk.add("tom", "timeout")
    desk.directory.set_presence("tom", Presence.ONLINE)
    detail = desk.wait_for(f"/v1/cases/{case_id}", "boss", owner_is("tom", pending=True))
    first = detail["assignments"][0]
    assert first["agent"] == "tia" and first["accepted_at"] is None
    assert "not accepted by tia within 2s" in first["ended_reason"]


def test_skills_strategy_picks_a_skilled_agent_and_pull_mode_waits_for_a_claim(
    desk: DeskStack,
) -> None:
    desk.directory.configure_queue("skills", strategy=Strategy.SKILLS, mode=Mode.PULL)
    desk.add("gil", "skills", skills=["billing", "german", "refunds"])
    desk.add("sam", "skills", skills=["billing"])
    desk.add("nia", "skills")
    for name in ("gil", "sam", "nia"):
        desk.directory.set_presence(name, Presence.ONLINE)
    [customer] = desk.send(["inv@example.com"], text="skills: wrong invoice")
    case = desk.wait_for_cases([customer], "boss", queue="skills")[customer]
    assert "skill:billing" in case["tags"]
    assert desk.call("POST", "/v1/queues/skills/next", "nia").status_code == 204
    desk.call("PATCH", "/v1/queues/skills", "boss", json={"mode": "push"})
    detail = desk.wait_for(f"/v1/cases/{case['case_id']}", "boss", owner_is("sam"))
    [assigned] = [e for e in detail["events"] if e["type"] == "case.assigned"]
    assert "skills: sam has billing with 0 other skills" in assigned["reason"]
