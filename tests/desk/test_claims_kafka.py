"""Claims through the real stream: of two agents claiming at once exactly one wins; writes on a
case someone else owns get 409; the store and the events agree."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from queues.desk import Role
from tests.desk.stack import DeskStack, desk_stack


@pytest.fixture(scope="module")
def desk(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskStack]:
    with desk_stack(kafka_bootstrap, tmp_path_factory.mktemp("desk"), assigner=False) as world:
        world.add("ana", "general")
        world.add("bo", "general")
        world.add("lee", "general", role=Role.LEAD)
        world.directory.configure_queue("general", mode=None)
        world.directory.configure_queue("tier2")
        yield world


def claim_at_once(desk: DeskStack, case_id: str, agents: list[str]) -> dict[str, httpx.Response]:
    barrier = threading.Barrier(len(agents))
    answers: dict[str, httpx.Response] = {}

    def claim(agent: str) -> None:
        barrier.wait()
        answers[agent] = desk.call("POST", f"/v1/cases/{case_id}/claim", agent)

    threads = [threading.Thread(target=claim, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_two_agents_claim_the_same_case_at_once_and_exactly_one_wins(desk: DeskStack) -> None:
    customers = desk.send([f"race-{n}@example.com" for n in range(3)])
    cases = desk.wait_for_cases(customers, "ana")
    for case in cases.values():
        case_id = case["case_id"]
        answers = claim_at_once(desk, case_id, ["ana", "bo"])
        codes = sorted(answer.status_code for answer in answers.values())
        assert codes == [200, 409], {a: r.text for a, r in answers.items()}
        [winner] = [agent for agent, answer in answers.items() if answer.status_code == 200]
        [loser] = [agent for agent, answer in answers.items() if answer.status_code == 409]
        refused = answers[loser].json()
        assert refused["code"] == "owned_by_other" and refused["owner"] == winner
        assert answers[winner].json()["case"]["assignee"] == winner
        detail = desk.call("GET", f"/v1/cases/{case_id}", "lee").json()
        assert detail["assignee"] == winner
        types = [event["type"] for event in detail["events"]]
        assert types.count("case.claimed") == 1
        assert types.count("action.rejected") == 1
        [assignment] = detail["assignments"]
        assert assignment["agent"] == winner and assignment["ended_at"] is None


def test_writes_on_a_case_someone_else_owns_get_409(desk: DeskStack) -> None:
    [customer] = desk.send(["owned@example.com"])
    case_id = desk.wait_for_cases([customer], "ana")[customer]["case_id"]
    assert desk.call("POST", f"/v1/cases/{case_id}/claim", "ana").status_code == 200
    reply = desk.call("POST", f"/v1/cases/{case_id}/reply", "bo", json={"text": "Hello!"})
    assert reply.status_code == 409
    assert reply.json()["detail"] == "reply by bo: the case is owned by ana"
    note = desk.call("POST", f"/v1/cases/{case_id}/notes", "bo", json={"text": "VIP, be kind"})
    assert note.status_code == 200
    answer = desk.call("POST", f"/v1/cases/{case_id}/reply", "ana", json={"text": "On it"})
    assert answer.status_code == 200 and answer.json()["outcome"] == "applied"
    waiting = desk.call(
        "POST", f"/v1/cases/{case_id}/status", "ana", json={"status": "waiting_on_customer"}
    )
    assert waiting.json()["case"]["status"] == "waiting_on_customer"
    reopen = desk.call("POST", f"/v1/cases/{case_id}/reopen", "ana")
    assert reopen.status_code == 409 and reopen.json()["code"] == "not_resolved"
    detail = desk.call("GET", f"/v1/cases/{case_id}", "ana").json()
    assert [(m["direction"], m["text"]) for m in detail["messages"]][1:] == [
        ("note", "VIP, be kind"),
        ("outbound", "On it"),
    ]
    paused = [e for e in detail["events"] if e["type"] == "sla.paused"]
    assert paused, [e["type"] for e in detail["events"]]


def test_a_lead_reassigns_and_release_and_resolve_work(desk: DeskStack) -> None:
    [customer] = desk.send(["reassign@example.com"])
    case_id = desk.wait_for_cases([customer], "ana")[customer]["case_id"]
    assert desk.call("POST", f"/v1/cases/{case_id}/claim", "ana").status_code == 200
    taken = desk.call("POST", f"/v1/cases/{case_id}/transfer", "bo", json={"to_agent": "bo"})
    assert taken.status_code == 409
    moved = desk.call("POST", f"/v1/cases/{case_id}/transfer", "lee", json={"to_agent": "bo"})
    assert moved.status_code == 200 and moved.json()["case"]["assignee"] == "bo"
    assert desk.call("POST", f"/v1/cases/{case_id}/release", "ana").status_code == 409
    assert desk.call("POST", f"/v1/cases/{case_id}/resolve", "bo").status_code == 200
    reopened = desk.call("POST", f"/v1/cases/{case_id}/reopen", "ana")
    assert reopened.json()["case"]["status"] == "open"
    detail = desk.call("GET", f"/v1/cases/{case_id}", "lee").json()
    assert [a["agent"] for a in detail["assignments"]] == ["ana", "bo"]
    assert detail["assignments"][0]["ended_reason"].startswith("after transfer")


def test_idempotency_key_makes_a_retry_the_same_action(desk: DeskStack) -> None:
    [customer] = desk.send(["retry@example.com"])
    case_id = desk.wait_for_cases([customer], "ana")[customer]["case_id"]
    key = {"Idempotency-Key": f"note-{case_id}"}
    first = desk.call("POST", f"/v1/cases/{case_id}/notes", "ana", json={"text": "x"}, headers=key)
    second = desk.call("POST", f"/v1/cases/{case_id}/notes", "ana", json={"text": "x"}, headers=key)
    assert first.status_code == second.status_code == 200
    detail = desk.call("GET", f"/v1/cases/{case_id}", "ana").json()
    assert [m["direction"] for m in detail["messages"]].count("note") == 1


def read_events(
    desk: DeskStack, agent: str, stop: threading.Event, out: list[str], **params: str
) -> None:
    """Collect the `data:` lines of the desk's event stream until `stop` is set."""
    url = f"{desk.stack.desk_url}/v1/events"
    with httpx.stream("GET", url, params=params, headers=desk.auth(agent), timeout=None) as answer:
        out.append(f"status {answer.status_code}")
        for line in answer.iter_lines():
            if line.startswith("id: "):
                out.append(line)
            if line.startswith("data: "):
                out.append(line.removeprefix("data: "))
            if stop.is_set():
                return


def test_the_event_stream_tells_a_queue_about_changes(desk: DeskStack) -> None:
    [customer] = desk.send(["watched@example.com"])
    case_id = desk.wait_for_cases([customer], "ana")[customer]["case_id"]
    seen: list[str] = []
    stop = threading.Event()
    reader = threading.Thread(
        target=read_events, args=(desk, "bo", stop, seen), kwargs={"queue": "general"}, daemon=True
    )
    reader.start()
    deadline = time.monotonic() + 30
    while not seen and time.monotonic() < deadline:
        time.sleep(0.1)
    assert seen[:1] == ["status 200"]
    assert desk.call("POST", f"/v1/cases/{case_id}/claim", "ana").status_code == 200
    while time.monotonic() < deadline:
        changes = [json.loads(line) for line in seen if line.startswith("{")]
        if any(c["type"] == "case.claimed" and c["case_id"] == case_id for c in changes):
            break
        time.sleep(0.1)
    # A case moves only to a queue the mover is a member of (both doors' rule).
    refused = desk.call("POST", f"/v1/cases/{case_id}/transfer", "ana", json={"queue": "tier2"})
    assert refused.status_code == 403, refused.text
    desk.directory.set_membership("ana", ["general", "tier2"])
    try:
        moved = desk.call("POST", f"/v1/cases/{case_id}/transfer", "ana", json={"queue": "tier2"})
    finally:
        desk.directory.set_membership("ana", ["general"])
    assert moved.status_code == 200
    while time.monotonic() < deadline:
        changes = [json.loads(line) for line in seen if line.startswith("{")]
        if any(c["type"] == "case.transferred" for c in changes):
            break
        time.sleep(0.1)
    stop.set()
    [left] = [c for c in changes if c["type"] == "case.transferred"]
    assert (left["case_id"], left["queue"]) == (case_id, "tier2")  # general hears it left
    [claimed] = [c for c in changes if c["type"] == "case.claimed"]
    assert (claimed["queue"], claimed["assignee"], claimed["reason"]) == (
        "general",
        "ana",
        "claimed by ana",
    )
    positions = [line for line in seen if line.startswith("id: ")]
    resumed = desk.call("GET", "/v1/events", "bo", headers={"Last-Event-ID": "not-a-position"})
    assert resumed.status_code == 400
    assert positions and all(":" in p for p in positions[1:])


def test_a_write_while_the_worker_is_down_is_accepted_then_applied(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with desk_stack(
        kafka_bootstrap, tmp_path, assigner=False, ESCALATOR_DESK_VERDICT_TIMEOUT_SECONDS="2"
    ) as desk:
        desk.add("ana", "general")
        [customer] = desk.send(["patient@example.com"])
        case_id = desk.wait_for_cases([customer], "ana")[customer]["case_id"]
        [worker] = [p for p in desk.stack.started if p.name.startswith("worker")]
        worker.stop()
        accepted = desk.call("POST", f"/v1/cases/{case_id}/claim", "ana")
        assert accepted.status_code == 202
        assert accepted.json()["outcome"] == "pending"
        desk.stack.start_worker()
        detail = desk.wait_for(f"/v1/cases/{case_id}", "ana", lambda c: c["assignee"], timeout=90)
        assert detail["assignee"] == "ana"
        claims = [e for e in detail["events"] if e["type"] == "case.claimed"]
        assert [e["payload"]["action"]["action_id"] for e in claims] == [
            accepted.json()["action_id"]
        ]


def test_many_agents_racing_for_many_cases_each_case_gets_one_owner(desk: DeskStack) -> None:
    for name in ("r1", "r2", "r3", "r4"):
        desk.add(name, "general")
    customers = desk.send([f"crowd-{n}@example.com" for n in range(8)])
    case_ids = [c["case_id"] for c in desk.wait_for_cases(customers, "r1").values()]
    barrier = threading.Barrier(4)
    answers: list[tuple[str, str, int, dict[str, object]]] = []
    lock = threading.Lock()

    def agent_claims_everything(agent: str) -> None:
        barrier.wait()
        for case_id in case_ids:
            answer = desk.call("POST", f"/v1/cases/{case_id}/claim", agent)
            with lock:
                answers.append((agent, case_id, answer.status_code, answer.json()))

    threads = [
        threading.Thread(target=agent_claims_everything, args=(a,))
        for a in ("r1", "r2", "r3", "r4")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {status for _, _, status, _ in answers} <= {200, 409}
    winners = {case_id: agent for agent, case_id, status, _ in answers if status == 200}
    assert sorted(winners) == sorted(case_ids)  # every case won exactly once ...
    assert len([a for a in answers if a[2] == 200]) == len(case_ids)  # ... and only once
    for agent, case_id, status, body in answers:
        if status == 409:
            assert body["owner"] == winners[case_id] != agent
    for case_id, winner in winners.items():
        detail = desk.call("GET", f"/v1/cases/{case_id}", "r1").json()
        assert detail["assignee"] == winner
        assert [a["agent"] for a in detail["assignments"]] == [winner]
