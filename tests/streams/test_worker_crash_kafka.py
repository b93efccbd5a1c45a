"""A worker killed mid-stream and restarted loses nothing and duplicates no case.

This caught a real loss: with faust Tables, a restarted worker dropped records fetched
while its tables recovered and acknowledged them as an offset gap (see streams/state_store).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import defaultdict
from pathlib import Path

from schemas import CaseEvent, Topics
from tests.kafka_support import consume_until, produce
from tests.stack_support import escalator_stack
from tests.streams.test_pipeline_kafka import message

MESSAGES = 3000
CUSTOMERS = 300


def test_kill_and_restart_mid_stream_keeps_every_message_once(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    records = []
    for number in range(MESSAGES):
        sender = f"customer{number % CUSTOMERS}@example.com"
        records.append((sender, json.dumps(message(f"k-{number}", sender=sender))))
    with escalator_stack(kafka_bootstrap, topic_prefix, tmp_path) as stack:
        worker = stack.start_worker()
        produce(kafka_bootstrap, topics.inbound, records)
        # kill it twice without any chance to clean up, at different points of the stream;
        # the threshold is counted by each worker process since its own start
        for routed_before_kill in (300, 900):
            deadline = time.monotonic() + 90
            while (
                stack.worker_metrics().get("escalator_ingest_to_routed_seconds_count", 0)
                < routed_before_kill
            ):
                assert time.monotonic() < deadline, "worker made no progress"
                time.sleep(0.05)
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(timeout=10)
            worker = stack.start_worker()

        def all_appended(rs: object) -> bool:
            return len(appended_keys(list(rs))) >= MESSAGES  # type: ignore[call-overload]

        events = [
            CaseEvent.model_validate_json(r.value or b"")
            for r in consume_until(kafka_bootstrap, topics.case_events, all_appended, timeout=180)
        ]
    cases_of_message: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if event.type == "message.appended":
            cases_of_message[event.payload["message_key"]].add(event.case_id)
    assert len(cases_of_message) == MESSAGES, "a message was lost"
    assert all(len(cases) == 1 for cases in cases_of_message.values()), "a message in two cases"
    opened = {e.case_id for e in events if e.type == "case.opened"}
    assert len(opened) == CUSTOMERS, "one open case per customer, never a second one"
    # replays may repeat an event, but only byte-identically (same deterministic id and body)
    bodies: dict[str, str] = {}
    for event in events:
        body = event.model_dump_json()
        assert bodies.setdefault(event.event_id, body) == body


def appended_keys(records: list[object]) -> set[str]:
    keys = set()
    for record in records:
        value = getattr(record, "value", b"") or b""
        if b'"message.appended"' in value:
            keys.add(json.loads(value)["payload"]["message_key"])
    return keys


def test_messages_after_a_graceful_restart_are_all_routed(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    with escalator_stack(kafka_bootstrap, topic_prefix, tmp_path) as stack:
        for round_number in range(3):
            worker = stack.start_worker()
            batch = [
                (
                    f"r{round_number}-{n}@example.com",
                    json.dumps(
                        message(f"g{round_number}-{n}", sender=f"r{round_number}-{n}@example.com")
                    ),
                )
                for n in range(20)
            ]
            produce(kafka_bootstrap, topics.inbound, batch)
            wanted = 20 * (round_number + 1)
            consume_until(kafka_bootstrap, topics.queue("general"), wanted, timeout=60)
            worker.stop()
