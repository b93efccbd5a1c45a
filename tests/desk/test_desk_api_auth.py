"""The desk API's reads and its guards: tokens (401), queue membership (403), bad input (4xx)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from queues.desk import Role
from schemas import Priority
from tests.desk.conftest import DeskWorld, desk_client
from tests.queues.case_event_builders import case_id, conversation, routed

UNUSED_BROKER = "localhost:1"  # these tests publish nothing


def seed(world: DeskWorld) -> None:
    """Three cases: two in general (one urgent), one in billing."""
    events = [
        *conversation("ana", messages=1),
        *conversation("bo", messages=1),
        routed("bo", priority=Priority.URGENT, routing="urgent"),
        *conversation("cy", messages=1, queue="billing"),
    ]
    world.apply(events)


def client(world: DeskWorld) -> TestClient:
    return desk_client(world, UNUSED_BROKER, "t.agent.actions")


def test_missing_or_wrong_token_is_401(desk_world: DeskWorld) -> None:
    seed(desk_world)
    desk_world.add("ana-agent", "general")
    with client(desk_world) as http:
        missing = http.get("/v1/queues")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = http.get("/v1/queues", headers={"Authorization": "Bearer esk_not-a-token"})
        assert wrong.status_code == 401
        assert wrong.json()["detail"] == "invalid token"
        assert http.post(f"/v1/cases/{case_id('ana')}/claim").status_code == 401


def test_an_agent_sees_only_their_queues(desk_world: DeskWorld) -> None:
    seed(desk_world)
    desk_world.add("gina", "general")
    with client(desk_world) as http:
        auth = desk_world.auth("gina")
        queues = http.get("/v1/queues", headers=auth).json()["queues"]
        assert [q["name"] for q in queues] == ["general"]
        assert queues[0]["open"] == 2 and queues[0]["unassigned"] == 2
        assert http.get("/v1/queues/billing/cases", headers=auth).status_code == 403
        forbidden = http.get(f"/v1/cases/{case_id('cy')}", headers=auth)
        assert forbidden.status_code == 403
        assert "not a member of queue 'billing'" in forbidden.json()["detail"]
        claim = http.post(f"/v1/cases/{case_id('cy')}/claim", headers=auth)
        assert claim.status_code == 403
        events = http.get("/v1/events", params={"queue": "billing"}, headers=auth)
        assert events.status_code == 403


def test_queue_listing_is_ordered_by_urgency_and_pages(desk_world: DeskWorld) -> None:
    seed(desk_world)
    desk_world.add("gina", "general")
    with client(desk_world) as http:
        auth = desk_world.auth("gina")
        listed = http.get("/v1/queues/general/cases", headers=auth).json()
        assert listed["total"] == 2
        assert [c["case_id"] for c in listed["cases"]] == [case_id("bo"), case_id("ana")]
        assert listed["cases"][0]["priority"] == "urgent"
        page = http.get("/v1/queues/general/cases?limit=1&offset=1", headers=auth).json()
        assert [c["case_id"] for c in page["cases"]] == [case_id("ana")]
        urgent = http.get("/v1/queues/general/cases?priority=urgent", headers=auth).json()
        assert urgent["total"] == 1
        mine = http.get("/v1/queues/general/cases?assignee=me", headers=auth).json()
        assert mine["total"] == 0


def test_case_detail_has_history_and_clocks(desk_world: DeskWorld) -> None:
    seed(desk_world)
    desk_world.add("gina", "general")
    with client(desk_world) as http:
        detail = http.get(f"/v1/cases/{case_id('ana')}", headers=desk_world.auth("gina")).json()
        assert detail["messages"][0]["text"] == "My order has not arrived."
        assert detail["sla"]["first_response"]["due_at"] == detail["sla_due_at"]
        assert [e["type"] for e in detail["events"]][:1] == ["case.opened"]
        assert detail["assignee"] is None
        assert (
            http.get("/v1/cases/C-NOSUCHCASE", headers=desk_world.auth("gina")).status_code == 404
        )


def test_admins_see_every_queue_and_bad_input_is_4xx_with_reasons(desk_world: DeskWorld) -> None:
    seed(desk_world)
    desk_world.add("root", role=Role.ADMIN)
    desk_world.add("gina", "general")
    with client(desk_world) as http:
        admin = desk_world.auth("root")
        names = [q["name"] for q in http.get("/v1/queues", headers=admin).json()["queues"]]
        assert names == ["billing", "general"]
        empty_reply = http.post(
            f"/v1/cases/{case_id('ana')}/reply", json={"text": ""}, headers=admin
        )
        assert empty_reply.status_code == 422
        assert "at least 1 character" in empty_reply.text
        nowhere = http.post(f"/v1/cases/{case_id('ana')}/transfer", json={}, headers=admin)
        assert nowhere.status_code == 422 and "needs `queue` or `to_agent`" in nowhere.text
        bad_status = http.post(
            f"/v1/cases/{case_id('ana')}/status", json={"status": "asleep"}, headers=admin
        )
        assert bad_status.status_code == 422
        assign = http.post(
            f"/v1/cases/{case_id('ana')}/assign",
            json={"to_agent": "root"},
            headers=desk_world.auth("gina"),
        )
        assert assign.status_code == 403 and "lead or admin" in assign.json()["detail"]
        settings = http.patch(
            "/v1/queues/general", json={"strategy": "round_robin"}, headers=desk_world.auth("gina")
        )
        assert settings.status_code == 403
        changed = http.patch("/v1/queues/general", json={"strategy": "round_robin"}, headers=admin)
        assert changed.json()["strategy"] == "round_robin"


def test_openapi_is_served(desk_world: DeskWorld) -> None:
    with client(desk_world) as http:
        spec = http.get("/openapi.json").json()
        assert "/v1/cases/{case_id}/claim" in spec["paths"]
        assert "/v1/queues/{queue}/cases" in spec["paths"]
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
