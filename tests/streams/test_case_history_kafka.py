"""The customer's history and channel switches route cases — through the real broker,
ingress and worker.

Ana's first email opens a case in `general`. Past the threading window her second email
opens a second case, which `history.cases` sends to `returning`. A tweet quoting that
case's reference lands in it: the case switched channel (email → twitter), and
`case.channel_switches` moves it to `tier2`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from schemas import CaseEvent, Topics
from tests.kafka_support import Record, consume_until
from tests.stack_support import escalator_stack
from tests.streams.test_omnichannel_kafka import SECRETS, events, send_mail, send_tweet

RULES = """
version: 1
queues: {general: {}, returning: {}, tier2: {}}
routes:
  queue: general
  priority: normal
  routes:
    - name: switched-channel
      when: {case.channel_switches: {at_least: 1}}
      queue: tier2
      priority: +1
    - name: returning-customer
      when: {history.cases: {at_least: 1}}
      queue: returning
"""

THREAD_WINDOW_SECONDS = 2


def routed(bootstrap: str, topics: Topics, count: int) -> list[CaseEvent]:
    """The first `count` distinct case.routed events, once that many exist."""

    def enough(records: list[Record]) -> bool:
        return sum(1 for e in events(list(records)) if e.type == "case.routed") >= count

    found = events(consume_until(bootstrap, topics.case_events, enough, timeout=90))
    return [e for e in found if e.type == "case.routed"]


def queue_of(event: CaseEvent) -> tuple[str, list[str]]:
    case: dict[str, Any] = event.payload["case"]
    return case["queue"], case["matched"]


def test_second_case_and_a_channel_switch_route_by_history_and_switches(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    rules_file = tmp_path / "history_rules.yaml"
    rules_file.write_text(RULES)
    with escalator_stack(
        kafka_bootstrap,
        topic_prefix,
        tmp_path,
        ESCALATOR_RULES=str(rules_file),
        ESCALATOR_THREAD_WINDOW=str(THREAD_WINDOW_SECONDS),
        **SECRETS,
    ) as stack:
        stack.start_worker()
        stack.start_ingress()
        send_mail(stack, "Ana Lopez <ana@example.com>", "h1@example.com")
        [first] = routed(kafka_bootstrap, topics, 1)
        time.sleep(THREAD_WINDOW_SECONDS + 1)  # her next email is past the threading window
        send_mail(stack, "ana@example.com", "h2@example.com", Subject="Another problem")
        second = routed(kafka_bootstrap, topics, 2)[-1]
        send_tweet(stack, f"@acme nobody answers my email, case {second.case_id}", "h-tweet")
        switched = routed(kafka_bootstrap, topics, 3)[-1]
        queue_records = consume_until(kafka_bootstrap, topics.queue("tier2"), 1, timeout=60)
    assert first.case_id != second.case_id
    assert first.payload["case"]["customer_id"] == second.payload["case"]["customer_id"]
    assert queue_of(first) == ("general", [])
    assert queue_of(second) == ("returning", ["returning-customer"])
    assert switched.case_id == second.case_id
    assert queue_of(switched) == ("tier2", ["switched-channel"])
    assert switched.payload["case"]["channels"] == ["email", "twitter"]
    assert "(from returning)" in switched.reason
    [on_queue] = queue_records
    assert on_queue.key == second.case_id.encode()
    assert on_queue.json()["priority"] == "high"
