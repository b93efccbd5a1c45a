"""A restarted worker replays agent actions before it fires the deadlines they stop (real broker).

The worker dies right after a case opens; the agent claims the case while no worker
runs; the unclaimed step falls due before the worker comes back. The original run would
never have fired it (the claim came first), so the restarted worker must not either.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from schemas import CaseEvent, Topics
from tests.kafka_support import consume_until, produce
from tests.stack_support import escalator_stack
from tests.streams.test_pipeline_kafka import message
from tests.streams.test_sla_kafka import act, events, of, open_case

pytestmark = pytest.mark.kafka

BACKLOG = 20_000

RULES = """
version: 1
calendars: {always: 24x7}
sla:
  fast:
    calendar: always
    targets: {normal: {first_response: 600s}}
escalations:
  fast:
    - {on: unclaimed, after: 30s, notify: [duty-manager], repeat: 2}
queues: {general: {}}
routes: {queue: general, priority: normal, sla: fast, escalation: fast}
"""


def test_a_claim_made_while_no_worker_ran_stops_the_step_that_fell_due_meanwhile(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    with escalator_stack(
        kafka_bootstrap, topic_prefix, tmp_path, ESCALATOR_RULES=str(rules)
    ) as stack:
        worker = stack.start_worker()
        stack.start_ingress()
        case = open_case(stack, kafka_bootstrap, topics)
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
        # a backlog ahead of the claim on its partition (records stage C dead-letters), so
        # that the replay takes a while: a timer that did not wait for it would fire first
        key = case.case_id.encode()
        produce(
            kafka_bootstrap, topics.agent_actions, ((key, b"not an action") for _ in range(BACKLOG))
        )
        act(stack, case.case_id, "claim", "--agent", "sam")
        claimed_at = datetime.now(UTC)
        first = events(consume_until(kafka_bootstrap, topics.case_events, 1, timeout=30))
        step_due = first[0].at + timedelta(seconds=30)  # routed when it opened
        assert claimed_at < step_due, "the claim must be stamped before the step's deadline"
        time.sleep(max(0.0, (step_due - datetime.now(UTC)).total_seconds()) + 2)
        stack.start_worker()  # the step is overdue; the claim waits on agent.actions
        records = consume_until(
            kafka_bootstrap,
            topics.case_events,
            lambda rs: bool(of(events(rs), "case.claimed")),
            timeout=180,
        )
        time.sleep(3)  # anything the timer would fire after the claim comes within this
        records = consume_until(kafka_bootstrap, topics.case_events, len(records), timeout=10)
    found = events(records)
    assert of(found, "case.claimed")
    assert not of(found, "case.escalated"), [e.reason for e in of(found, "case.escalated")]


TWO_WORKER_RULES = """
version: 1
calendars: {always: 24x7}
sla:
  fast:
    calendar: always
    targets: {normal: {first_response: 12s}}
    warn_at: 50%
escalations:
  fast:
    - {on: unclaimed, after: 4s, notify: [duty-manager], repeat: 2}
queues: {general: {}}
routes: {queue: general, priority: normal, sla: fast, escalation: fast}
"""


def test_timers_fire_once_each_while_a_second_worker_joins_and_leaves(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    rules = tmp_path / "rules.yaml"
    rules.write_text(TWO_WORKER_RULES)
    senders = [f"customer{n}@example.com" for n in range(8)]
    with escalator_stack(
        kafka_bootstrap, topic_prefix, tmp_path, ESCALATOR_RULES=str(rules)
    ) as stack:
        stack.start_worker()
        stack.start_ingress()
        for n, sender in enumerate(senders):
            answer = httpx.post(
                f"{stack.ingress_url}/v1/messages", json=message(f"two-{n}", sender), timeout=30
            )
            assert answer.status_code == 202
        consume_until(kafka_bootstrap, topics.queue("general"), len(senders), timeout=60)
        joined = stack.start_worker()  # a rebalance while every clock runs
        records = consume_until(
            kafka_bootstrap,
            topics.case_events,
            lambda rs: len(of(events(rs), "sla.breached")) >= len(senders),
            timeout=120,
        )
        joined.stop()  # and another: its partitions go back to the first worker
        time.sleep(5)
        records = consume_until(  # everything written by now
            kafka_bootstrap, topics.case_events, 10**9, timeout=10, raise_on_timeout=False
        )
    found = events(records)
    bodies: dict[str, bytes] = {}
    for record in records:  # a deadline fired twice wrote the very same event
        event_id = CaseEvent.model_validate_json(record.value or b"").event_id
        assert bodies.setdefault(event_id, record.value or b"") == record.value
    cases = {e.case_id for e in of(found, "case.opened")}
    assert len(cases) == len(senders)
    for case_id in cases:
        mine = [e for e in found if e.case_id == case_id]
        [started] = of(mine, "sla.started", "first_response")
        [warning] = of(mine, "sla.warning", "first_response")
        [breach] = of(mine, "sla.breached", "first_response")
        assert (warning.at - started.at, breach.at - started.at) == (
            timedelta(seconds=6),
            timedelta(seconds=12),
        )
        steps = [e.payload["escalation"]["firing"] for e in of(mine, "case.escalated")]
        timeline = "\n".join(f"{e.type} {e.at} {e.reason[:90]}" for e in mine)
        assert sorted(steps) == [0, 1, 2], timeline
