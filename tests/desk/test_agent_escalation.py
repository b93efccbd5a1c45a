"""Agents escalate from the feed: who may, what the desk refuses before anything is published.

The attacker's side: an agent escalating another queue's case, an escalation without a reason
(or with nowhere to go), a body naming another agent as the escalator, a destination that does
not exist. None of them reaches Kafka (the desk points at no broker): each is refused where it
is made, with the status the API documents.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from escalator.cli import app
from queues.desk import Role
from schemas import CaseEvent
from schemas.ids import event_id_for
from tests.desk.conftest import DeskWorld, desk_client
from tests.desk.test_console_pages import login, options
from tests.queues.case_event_builders import T0, case_id, conversation

UNUSED_BROKER = "localhost:1"  # every request here is refused before it would publish


def seed(world: DeskWorld) -> None:
    """One case in general (ana's), one in billing (cy's); agents of each and a lead."""
    world.apply(
        [*conversation("ana", messages=1), *conversation("cy", messages=1, queue="billing")]
    )
    world.directory.configure_queue("tier2")
    world.add("gina", "general")
    world.add("bill", "billing")
    world.add("lee", "general", role=Role.LEAD)


def client(world: DeskWorld) -> TestClient:
    return desk_client(world, UNUSED_BROKER, "t.agent.actions", outcome_timeout_seconds=0.5)


def escalate(http: TestClient, world: DeskWorld, agent: str, case: str, body: object) -> object:
    return http.post(f"/v1/cases/{case}/escalate", json=body, headers=world.auth(agent))


def test_an_agent_cannot_escalate_a_case_of_another_queue(desk_world: DeskWorld) -> None:
    seed(desk_world)
    with client(desk_world) as http:
        answer = http.post(
            f"/v1/cases/{case_id('cy')}/escalate",
            json={"queue": "tier2", "reason": "customer threatens to leave"},
            headers=desk_world.auth("gina"),
        )
        assert answer.status_code == 403, answer.text
        assert "not a member of queue 'billing'" in answer.json()["detail"]


def test_an_escalation_needs_a_reason_and_somewhere_to_go(desk_world: DeskWorld) -> None:
    seed(desk_world)
    with client(desk_world) as http:
        auth = desk_world.auth("gina")
        path = f"/v1/cases/{case_id('ana')}/escalate"
        missing = http.post(path, json={"queue": "tier2"}, headers=auth)
        assert missing.status_code == 422 and "reason" in missing.text
        blank = http.post(path, json={"queue": "tier2", "reason": "   "}, headers=auth)
        assert blank.status_code == 422 and "reason" in blank.text
        nowhere = http.post(path, json={"reason": "angry"}, headers=auth)
        assert nowhere.status_code == 422 and "needs `queue` or `priority`" in nowhere.text
        bad_priority = http.post(path, json={"priority": "asap", "reason": "x"}, headers=auth)
        assert bad_priority.status_code == 422


def test_a_body_cannot_name_the_escalating_agent(desk_world: DeskWorld) -> None:
    """The escalator is the token's agent; a body claiming to be a lead is refused outright."""
    seed(desk_world)
    with client(desk_world) as http:
        for forged in ({"agent_id": "lee"}, {"agent": "lee"}, {"override": True}):
            answer = http.post(
                f"/v1/cases/{case_id('cy')}/escalate",
                json={"queue": "tier2", "reason": "let me in", **forged},
                headers=desk_world.auth("gina"),
            )
            assert answer.status_code == 422, (forged, answer.text)
            assert "Extra inputs are not permitted" in answer.text


def test_an_escalation_goes_only_to_a_queue_that_exists(desk_world: DeskWorld) -> None:
    seed(desk_world)
    with client(desk_world) as http:
        answer = http.post(
            f"/v1/cases/{case_id('ana')}/escalate",
            json={"queue": "nowhere", "reason": "needs tier 3"},
            headers=desk_world.auth("gina"),
        )
        assert answer.status_code == 422 and "no queue 'nowhere'" in answer.json()["detail"]


def test_an_unknown_case_is_404_and_needs_a_token(desk_world: DeskWorld) -> None:
    seed(desk_world)
    with client(desk_world) as http:
        body = {"queue": "tier2", "reason": "x"}
        assert http.post(f"/v1/cases/{case_id('ana')}/escalate", json=body).status_code == 401
        unknown = http.post(
            "/v1/cases/C-NOSUCHCASE/escalate", json=body, headers=desk_world.auth("lee")
        )
        assert unknown.status_code == 404


def test_the_console_offers_the_escalation_and_refuses_what_the_api_refuses(
    desk_world: DeskWorld,
) -> None:
    seed(desk_world)
    with client(desk_world) as http:
        login(http, desk_world, "gina")
        page = http.get(f"/console/cases/{case_id('ana')}").text
        assert 'action="/console/cases/' in page and "/escalate" in page
        assert 'name="reason" required' in page
        assert options(page, "priority") == ["", "urgent", "high", "normal", "low"]
        path = f"/console/cases/{case_id('ana')}/escalate"
        no_reason = http.post(path, data={"queue": "tier2"}, follow_redirects=False)
        assert no_reason.status_code == 303 and "say+why" in no_reason.headers["location"]
        nowhere = http.post(path, data={"reason": "x"}, follow_redirects=False)
        assert "choose+a+queue+or+a+priority" in nowhere.headers["location"]
        other = http.post(
            f"/console/cases/{case_id('cy')}/escalate",
            data={"queue": "tier2", "reason": "let me in"},
            follow_redirects=False,
        )
        assert other.status_code == 403 and "Not your queue" in other.text
        # no page was ever sent for the case: nothing to acknowledge is offered
        assert "Acknowledge page" not in page


def test_cases_act_refuses_an_escalation_without_a_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ESCALATOR_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    runner = CliRunner()
    base = ["cases", "act", "C-ABCDEF2345", "escalate", "--agent", "sam"]
    missing = runner.invoke(app, [*base, "--queue", "tier2"])
    assert missing.exit_code == 2, missing.output
    assert "an escalate action needs `reason`" in missing.output
    nowhere = runner.invoke(app, [*base, "--reason", "angry customer"])
    assert nowhere.exit_code == 2 and "needs `queue` or `priority`" in nowhere.output
    bad = runner.invoke(app, [*base, "--priority", "asap", "--reason", "x"])
    assert bad.exit_code == 2


def paging_event(kind: str, number: int, payload: dict[str, object]) -> CaseEvent:
    cid = case_id("ana")
    return CaseEvent(
        event_id=event_id_for(cid, kind, str(number)),
        case_id=cid,
        type=kind,
        at=T0 + timedelta(minutes=90 + number),
        reason=f"{kind} {number}",
        payload=payload,
    )


def test_the_console_offers_acknowledge_while_a_page_waits(desk_world: DeskWorld) -> None:
    seed(desk_world)
    page = {"run": "breach:first_response#1/step0", "pager": "oncall", "number": 1}
    desk_world.apply([paging_event("case.escalated", 1, {"escalation": {"page": page}})])
    with client(desk_world) as http:
        login(http, desk_world, "gina")
        waiting = http.get(f"/console/cases/{case_id('ana')}").text
        assert "On-call is being paged for this case." in waiting
        assert "Acknowledge page</button>" in waiting
        desk_world.apply([paging_event("case.acknowledged_by_agent", 2, {"agent": "gina"})])
        answered = http.get(f"/console/cases/{case_id('ana')}").text
        assert "Acknowledge page" not in answered
        assert "case.acknowledged_by_agent 2" in answered  # in the decision log
