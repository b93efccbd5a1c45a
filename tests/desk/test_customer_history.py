"""`GET /v1/customers/{id}/history`: every message and reply of a customer across their cases
and channels, with escalations and promises, in time order, paged by cursor; an operator's
merge (through the real identity topic) brings the merged customer's cases in and a split
takes them out; an agent who may see none of a customer's cases reads nothing of them."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from queues import make_engine, make_session_factory
from queues.identity_projection import IdentityProjection
from schemas import CaseEvent, IdentityKind, IdentityRecord, Topics
from schemas.ids import event_id_for
from tests.desk.conftest import DeskWorld, desk_client
from tests.kafka_support import create_topics, produce
from tests.queues.effort_builders import Story

UNUSED_BROKER = "localhost:1"  # nothing here publishes an agent action
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def escalation(story: Story, kind: str, at: datetime, payload: dict[str, Any]) -> CaseEvent:
    """An event of a type this desk does not know (written by another part of Escalator)."""
    return CaseEvent(
        event_id=event_id_for(story.case_id, kind, at.isoformat()),
        case_id=story.case_id,
        type=kind,
        at=at,
        reason=f"{kind} for the test",
        payload=payload,
    )


def ana_on_two_channels() -> tuple[Story, Story, list[CaseEvent]]:
    """Ana's earlier case by SMS (answered, resolved) and her open case by email."""
    earlier = Story("ana").opens(T0, channel="sms", text="my card was charged twice")
    earlier.replies(T0 + timedelta(hours=1), "refund on its way")
    earlier.resolves(T0 + timedelta(hours=2))
    now = Story("ana", number=2).opens(T0 + timedelta(days=3), text="the refund never came")
    events = [
        *earlier.events,
        *now.events,
        escalation(
            now,
            "case.acknowledged",
            T0 + timedelta(days=3, seconds=5),
            {"promise": {"first_response_due_at": "2026-05-07T17:00:00Z"}, "channel": "email"},
        ),
        escalation(
            now,
            "case.acknowledged_by_agent",
            T0 + timedelta(days=3, hours=3),
            {"agent": "lee", "pages": 2},
        ),
        escalation(now, "page.failed", T0 + timedelta(days=3, hours=4), {"target": "sms"}),
        escalation(
            now,
            "acknowledgement.suppressed",
            T0 + timedelta(days=3, seconds=6),
            {"why": "one acknowledgement per customer per hour"},
        ),
        escalation(
            now,
            "case.customer_escalated",
            T0 + timedelta(days=3, hours=2),
            {"text": "still not solved?", "by": "customer"},
        ),
    ]
    return earlier, now, events


def test_the_history_spans_cases_and_channels_in_time_order_page_by_page(
    desk_world: DeskWorld,
) -> None:
    earlier, now, events = ana_on_two_channels()
    desk_world.apply(events)
    desk_world.add("gina", "general")

    with desk_client(desk_world, UNUSED_BROKER, "t.agent.actions") as http:
        pages, cursor = [], None
        while True:
            answer = http.get(
                "/v1/customers/ana/history",
                params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                headers=desk_world.auth("gina"),
            )
            assert answer.status_code == 200, answer.text
            pages.append(answer.json()["entries"])
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                break

    entries = [entry for page in pages for entry in page]
    with desk_client(desk_world, UNUSED_BROKER, "t.agent.actions") as http:
        case = http.get(f"/v1/cases/{now.case_id}", headers=desk_world.auth("gina")).json()
    assert case["effort"] == {
        "contacts": 1,
        "channel_switches": 0,
        "agent_replies": 0,
        "reopens": 0,
        "repeat_of": earlier.case_id,  # she came back three days after its resolution
        "resolved_at": None,
    }
    assert all(len(page) <= 2 for page in pages) and len(pages) >= 3
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    said = [(e["case_id"], e["channel"], e["text"]) for e in entries if e["kind"] == "message"]
    assert said == [
        (earlier.case_id, "sms", "my card was charged twice"),
        (earlier.case_id, "email", "refund on its way"),
        (now.case_id, "email", "the refund never came"),
    ]
    shown = {e["type"]: e for e in entries if e["kind"] == "event"}
    assert set(shown) == {
        "case.resolved",
        "case.acknowledged",
        "case.customer_escalated",
        "case.acknowledged_by_agent",
    }
    assert shown["case.acknowledged_by_agent"]["category"] == "escalation"
    promise = shown["case.acknowledged"]
    assert promise["category"] == "promise" and promise["case_id"] == now.case_id
    assert promise["summary"]["promise.first_response_due_at"] == "2026-05-07T17:00:00Z"
    assert shown["case.customer_escalated"]["category"] == "escalation"
    assert shown["case.customer_escalated"]["summary"]["text"] == "still not solved?"
    assert len({e.get("message_key") or e["event_id"] for e in entries}) == len(entries)


def test_an_agent_outside_every_queue_of_the_customer_reads_nothing(
    desk_world: DeskWorld,
) -> None:
    _earlier, _now, events = ana_on_two_channels()
    desk_world.apply(events)
    desk_world.add("gina", "general")
    desk_world.add("mal", "billing")  # sees none of Ana's cases

    with desk_client(desk_world, UNUSED_BROKER, "t.agent.actions") as http:
        refused = http.get("/v1/customers/ana/history", headers=desk_world.auth("mal"))
        unknown = http.get("/v1/customers/nobody/history", headers=desk_world.auth("mal"))
        forged = http.get(
            "/v1/customers/ana/history",
            params={"cursor": "bm90IGEgY3Vyc29y"},
            headers=desk_world.auth("gina"),
        )
        anonymous = http.get("/v1/customers/ana/history")

    assert refused.status_code == unknown.status_code == 404
    assert "refund" not in refused.text
    assert forged.status_code == 422
    assert anonymous.status_code == 401

    # the console's history page answers the same
    with desk_client(desk_world, UNUSED_BROKER, "t.agent.actions") as browser:
        signed_in = browser.post(
            "/console/login", data={"token": desk_world.tokens["mal"]}, follow_redirects=False
        )
        assert signed_in.status_code == 303
        page = browser.get("/console/customers/ana/history")
    assert page.status_code == 404
    assert "refund" not in page.text and "card was charged" not in page.text


def wait_for(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"not done in time: {value!r}"
        time.sleep(0.2)


@pytest.mark.kafka
def test_a_merge_brings_past_cases_in_and_a_split_takes_them_out(
    desk_world: DeskWorld, kafka_bootstrap: str, topics: Topics
) -> None:
    old = Story("bo-by-sms").opens(T0, channel="sms", text="parcel lost")
    old.replies(T0 + timedelta(hours=1)).resolves(T0 + timedelta(hours=2))
    current = Story("bo").opens(T0 + timedelta(days=2), text="parcel still lost")
    desk_world.apply([*old.events, *current.events])
    desk_world.add("gina", "general")
    create_topics(kafka_bootstrap, [topics.identity], partitions=2)
    engine = make_engine(desk_world.database_url)
    identity = IdentityProjection(
        {"bootstrap.servers": kafka_bootstrap}, topics.identity, make_session_factory(engine)
    )

    def decide(kind: IdentityKind, **fields: str) -> None:
        record = IdentityRecord(
            kind=kind, customer_id="bo-by-sms", reason="same parcel", at=datetime.now(UTC), **fields
        )
        produce(kafka_bootstrap, topics.identity, [(record.key, record.model_dump_json())])

    try:
        identity.catch_up()
        identity.start()
        with desk_client(desk_world, UNUSED_BROKER, "t.agent.actions") as http:

            def texts() -> list[str]:
                answer = http.get("/v1/customers/bo/history", headers=desk_world.auth("gina"))
                assert answer.status_code == 200, answer.text
                return [e["text"] for e in answer.json()["entries"] if e["kind"] == "message"]

            assert texts() == ["parcel still lost"]
            decide(IdentityKind.MERGE, merged_into="bo")
            merged = wait_for(texts, lambda found: len(found) == 3)
            assert merged[0] == "parcel lost"  # the merged customer's earlier case, first
            answer = http.get("/v1/customers/bo/history", headers=desk_world.auth("gina")).json()
            assert answer["customers"] == ["bo", "bo-by-sms"]
            assert {e["customer_id"] for e in answer["entries"]} == {"bo", "bo-by-sms"}
            # the merged customer's id reads the same history
            alias = http.get("/v1/customers/bo-by-sms/history", headers=desk_world.auth("gina"))
            assert [e["text"] for e in alias.json()["entries"] if e["kind"] == "message"] == merged

            decide(IdentityKind.SPLIT)
            assert wait_for(texts, lambda found: len(found) == 1) == ["parcel still lost"]
    finally:
        identity.stop()
        engine.dispose()


def test_the_console_pages_a_long_history(desk_world: DeskWorld) -> None:
    story = Story("cal").opens(T0, text="message 0")
    for n in range(1, 60):
        story.writes(T0 + timedelta(minutes=n), text=f"message {n}")
    desk_world.apply(story.events)
    desk_world.add("gina", "general")

    with desk_client(desk_world, UNUSED_BROKER, "t.agent.actions") as browser:
        signed_in = browser.post(
            "/console/login", data={"token": desk_world.tokens["gina"]}, follow_redirects=False
        )
        assert signed_in.status_code == 303
        first = browser.get(f"/console/cases/{story.case_id}").text
        more = re.search(r'href="([^"]*/history\?cursor=[^"]+)" id="history-more"', first)
        assert more is not None
        second = browser.get(html.unescape(more.group(1))).text

    def shown(page: str) -> list[str]:
        return re.findall(r'<p class="text">(message \d+)</p>', page)

    history = shown(first.split('id="customer-history"')[1])
    assert history == [f"message {n}" for n in range(50)]
    assert shown(second) == [f"message {n}" for n in range(50, 60)]
    assert 'id="history-more"' not in second
