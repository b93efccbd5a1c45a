"""Stage C fires a case's deadlines before a record stamped after them, whenever the timer runs.

The first run's timer fires a warning at its deadline; a replay after a crash may meet the
customer's next message (stamped later) before its timer gets to the warning. Either way
the warning must be written as of the case before that message, so the replay writes the
same events as the first run (the chaos harness caught warnings written twice with two
different queues).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from rules import compile_sources
from schemas import CaseEvent, InboundMessage
from streams.deadlines import DeadlineIndex
from streams.output import ReliableWriter
from streams.pipeline import Pipeline
from streams.rebalance import case_store
from streams.records import ThreadedMessage
from streams.worker_config import RuleSetHolder, WorkerConfig
from tests.streams.test_poison import T0, TOPICS, MemoryPublisher, event

RULES = """
version: 1
calendars: {always: 24x7}
sla:
  fast:
    calendar: always
    targets:
      normal: {first_response: 60s}
      high: {first_response: 40s}
    warn_at: 50%
queues: {general: {}, billing: {}}
routes:
  queue: general
  priority: normal
  sla: fast
  routes:
    - name: billing
      when: {text: {any: [invoice]}}
      queue: billing
      priority: high
"""
CASE = "C-AAAAAAAAAA"


def threaded(external_id: str, text: str, seconds: float, opens: bool) -> bytes:
    message = InboundMessage(
        channel="chat",
        external_id=external_id,
        sender="ana",
        text=text,
        sent_at=T0 + timedelta(seconds=seconds),
    )
    record = ThreadedMessage(
        case_id=CASE,
        customer_id="cus-ana",
        opens_case=opens,
        evidence="test",
        message=message,
        ingested_at=T0 + timedelta(seconds=seconds),
    )
    return record.model_dump_json().encode()


def run(timer_first: bool) -> list[CaseEvent]:
    """Open a case at T0, then a message at T0+45s (after the warning at T0+30s)."""
    config = WorkerConfig(broker_url="kafka://unused", topics=TOPICS)
    publisher = MemoryPublisher()
    cases = case_store(config)
    for partition in range(4):
        cases.hold(partition, [])
    pipeline = Pipeline(
        config,
        RuleSetHolder(compile_sources({"rules.yaml": RULES})),
        ReliableWriter(publisher, first_backoff=0.001),
        cases,
        cases,
        DeadlineIndex(),
    )
    opened = event(TOPICS.threaded, CASE.encode(), threaded("m-1", "hello", 0, True), 0)
    opened.message.timestamp = T0.timestamp()
    asyncio.run(pipeline.cases_batch([opened]))
    if timer_first:  # the first run: the timer fired the warning when it fell due
        asyncio.run(pipeline.fire_due(T0 + timedelta(seconds=31)))
    later = event(TOPICS.threaded, CASE.encode(), threaded("m-2", "my invoice", 45, False), 1)
    later.message.timestamp = (T0 + timedelta(seconds=45)).timestamp()
    asyncio.run(pipeline.cases_batch([later]))
    asyncio.run(pipeline.fire_due(T0 + timedelta(seconds=46)))
    return [
        CaseEvent.model_validate_json(r.value)
        for r in publisher.records
        if r.topic == TOPICS.case_events
    ]


def test_a_replay_writes_the_warning_as_the_first_run_did() -> None:
    first, replay = run(timer_first=True), run(timer_first=False)
    warnings = [[e for e in events if e.type == "sla.warning"] for events in (first, replay)]
    assert len(warnings[0]) == 1 and warnings[0] == warnings[1]
    assert warnings[1][0].payload["queue"] == "general"  # as the case stood at T0+30s
    assert [e.event_id for e in first] == [e.event_id for e in replay]
    assert first == replay
