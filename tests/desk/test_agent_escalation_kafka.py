"""Agents escalate through the real stream: the case moves and rises, the log says who and why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from queues.desk import Role
from tests.desk.stack import DeskStack, desk_stack

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def desk(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskStack]:
    with desk_stack(kafka_bootstrap, tmp_path_factory.mktemp("desk"), assigner=False) as world:
        world.add("ana", "general")
        world.add("tia", "tier2")
        world.add("lee", "capacity", role=Role.LEAD)  # a lead of another queue
        world.directory.configure_queue("general", mode=None)
        world.directory.configure_queue("tier2", mode=None)
        yield world


def test_an_agent_escalates_a_case_of_their_queue_to_tier2_and_urgent(desk: DeskStack) -> None:
    [customer] = desk.send(["escalate-me@example.com"])
    case_id = desk.wait_for_cases([customer], "ana")[customer]["case_id"]
    assert desk.call("POST", f"/v1/cases/{case_id}/claim", "ana").status_code == 200
    answer = desk.call(
        "POST",
        f"/v1/cases/{case_id}/escalate",
        "ana",
        json={"queue": "tier2", "priority": "urgent", "reason": "customer is a hospital"},
    )
    assert answer.status_code == 200, answer.text
    case = answer.json()["case"]
    assert (case["queue"], case["priority"], case["assignee"]) == ("tier2", "urgent", None)
    # now in tier2: ana may no longer see it, tier2 does, with the escalation in the log
    assert desk.call("GET", f"/v1/cases/{case_id}", "ana").status_code == 403
    detail = desk.call("GET", f"/v1/cases/{case_id}", "tia").json()
    [escalated] = [e for e in detail["events"] if e["type"] == "case.escalated"]
    assert escalated["payload"]["agent"] == "ana"
    assert escalated["payload"]["reason"] == "customer is a hospital"
    assert escalated["reason"] == (
        "escalated to queue tier2 and to priority urgent by ana: customer is a hospital"
    )
    listed = desk.wait_for_cases([customer], "tia", queue="tier2")
    assert listed[customer]["priority"] == "urgent"


def test_a_lead_escalates_any_case_an_agent_only_their_queues(desk: DeskStack) -> None:
    [customer] = desk.send(["lead-escalates@example.com"])
    case_id = desk.wait_for_cases([customer], "ana")[customer]["case_id"]
    refused = desk.call(
        "POST", f"/v1/cases/{case_id}/escalate", "tia", json={"priority": "high", "reason": "x"}
    )
    assert refused.status_code == 403
    answer = desk.call(
        "POST",
        f"/v1/cases/{case_id}/escalate",
        "lee",
        json={"priority": "high", "reason": "seen on social media"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["case"]["priority"] == "high"
    assert answer.json()["case"]["queue"] == "general"
