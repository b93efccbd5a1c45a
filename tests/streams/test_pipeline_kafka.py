"""End to end through the real broker: ingress → worker → queue topic, events, DLQ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from schemas import Case, CaseEvent, DeadLetter, Topics
from tests.kafka_support import Record, consume_until, produce
from tests.stack_support import Stack, escalator_stack


def message(external_id: str, sender: str = "ana@example.com", **extra: Any) -> dict[str, Any]:
    return {
        "channel": "email",
        "external_id": external_id,
        "sender": sender,
        "text": "I was charged twice for order A-1234",
        "sent_at": datetime(2026, 11, 20, 9, 30, tzinfo=UTC).isoformat(),
        **extra,
    }


def events_of(records: list[Record]) -> list[CaseEvent]:
    """Distinct events, as a consumer sees them: replays repeat an event id, never a new one."""
    unique: dict[str, CaseEvent] = {}
    for record in records:
        event = CaseEvent.model_validate_json(record.value or b"")
        unique.setdefault(event.event_id, event)
    return list(unique.values())


def cases_in_store(stack: Stack, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """`escalator cases list --json` until the store holds `count` cases."""
    deadline = time.monotonic() + timeout
    while True:
        listed = subprocess.run(
            [sys.executable, "-m", "escalator", "cases", "list", "--json"],
            env={**os.environ, **stack.env},
            capture_output=True,
            text=True,
            check=True,
        )
        cases: list[dict[str, Any]] = json.loads(listed.stdout)
        if len(cases) >= count or time.monotonic() > deadline:
            return cases
        time.sleep(0.5)


def test_posted_message_is_routed_to_the_general_queue_and_stored(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    with escalator_stack(kafka_bootstrap, topic_prefix, tmp_path) as stack:
        stack.start_worker()
        stack.start_ingress()
        stack.start_projection()
        answer = httpx.post(f"{stack.ingress_url}/v1/messages", json=message("m-1"), timeout=30)
        assert answer.status_code == 202, answer.text
        routed = consume_until(kafka_bootstrap, topics.queue("general"), 1, timeout=60)
        case = Case.model_validate_json(routed[0].value or b"")
        assert case.queue == "general"
        assert case.priority.value == "normal"
        assert case.messages[-1].text == "I was charged twice for order A-1234"
        assert routed[0].key == case.case_id.encode()
        events = events_of(consume_until(kafka_bootstrap, topics.case_events, 3, timeout=30))
        assert [e.type for e in events] == ["case.opened", "message.appended", "case.routed"]
        assert {e.case_id for e in events} == {case.case_id}
        assert events[2].payload["rules_version"] == case.rules_version
        metrics = stack.worker_metrics()
        assert metrics["escalator_cases_routed_total"] == 1
        assert metrics["escalator_ingest_to_routed_seconds_count"] == 1
        [stored] = cases_in_store(stack, 1)
        assert stored["case_id"] == case.case_id
        assert (stored["queue"], stored["priority"], stored["message_count"]) == (
            "general",
            "normal",
            1,
        )


def test_duplicate_post_makes_no_second_case_or_message(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    with escalator_stack(kafka_bootstrap, topic_prefix, tmp_path) as stack:
        stack.start_worker()
        stack.start_ingress()
        first = message("dup-1", thread_ref="<t-1@mail>")
        for _ in range(3):
            answer = httpx.post(f"{stack.ingress_url}/v1/messages", json=first, timeout=30)
            assert answer.status_code == 202
        follow_up = message("dup-2", thread_ref="<t-1@mail>", text="any news?")
        httpx.post(f"{stack.ingress_url}/v1/messages", json=follow_up, timeout=30)
        records = consume_until(
            kafka_bootstrap,
            topics.case_events,
            lambda rs: sum(1 for e in events_of(list(rs)) if e.type == "message.appended") >= 2,
            timeout=60,
        )
        events = events_of(records)
        assert [e.type for e in events].count("case.opened") == 1
        appended = [e.payload["message_key"] for e in events if e.type == "message.appended"]
        assert appended == ["email:dup-1", "email:dup-2"]
        assert len({e.case_id for e in events}) == 1
        assert stack.worker_metrics()["escalator_messages_duplicate_total"] >= 2


def test_records_from_any_client_are_routed_and_bad_ones_dead_lettered(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    with escalator_stack(kafka_bootstrap, topic_prefix, tmp_path) as stack:
        stack.start_worker()
        good = json.dumps(message("direct-1", sender="+4915112345678", channel="sms"))
        not_json = b"{not json at all"
        bad_field = json.dumps({**message("direct-2"), "sent_at": "tomorrow"}).encode()
        produce(
            kafka_bootstrap,
            topics.inbound,
            [("+4915112345678", good), ("x", not_json), ("y", bad_field)],
        )
        routed = consume_until(kafka_bootstrap, topics.queue("general"), 1, timeout=60)
        assert Case.model_validate_json(routed[0].value or b"").channels == ["sms"]
        dead = [
            DeadLetter.model_validate_json(r.value or b"")
            for r in consume_until(kafka_bootstrap, topics.dlq, 2, timeout=30)
        ]
        by_reason = {d.reason: d for d in dead}
        assert by_reason["invalid_json"].original_bytes() == not_json
        assert by_reason["invalid_message"].original_bytes() == bad_field
        assert "sent_at" in by_reason["invalid_message"].detail
        assert all(d.source_topic == topics.inbound for d in dead)
