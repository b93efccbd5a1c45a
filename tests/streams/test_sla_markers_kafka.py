"""SLA deadlines fire on time on a partition whose input ends with a transaction's commit
marker (real broker, real worker).

The marker takes the offset after the partition's last record and is never delivered to
the worker's read-committed consumer, so stage C's next offset stays one short of the high
watermark. Before the fix the SLA timer took that for records still to be replayed: an
idle worker held the partition's deadlines at its last record's time, and a worker
restarted at the marker (nothing delivered) fired none of them, until a new record came.
Here nothing more comes: the warning must fire on the idle worker, the breach on the
restarted one, each within a few seconds of its deadline.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas import Topics
from tests.kafka_support import Record, consume_until, high_watermarks, produce_in_a_transaction
from tests.stack_support import escalator_stack
from tests.streams.test_sla_kafka import events, of, open_case

pytestmark = pytest.mark.kafka

RULES = """
version: 1
calendars: {always: 24x7}
sla:
  fast:
    calendar: always
    targets: {normal: {first_response: 32s}}
    warn_at: 25%
queues: {general: {}}
routes: {queue: general, priority: normal, sla: fast}
"""

ON_TIME = timedelta(seconds=5)
"""How soon after its deadline (or the restarted worker's readiness) an event must be
written: generous, where the unfixed worker never writes it at all."""

WAIT = 20.0
"""Seconds past a deadline to wait for its event before failing."""


def written_at(records: list[Record], kind: str) -> tuple[datetime, datetime]:
    """The deadline of the first-response event of this kind, and when it was written."""
    for record in records:
        found = of(events([record]), kind, "first_response")
        if found:
            return found[0].at, datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
    raise AssertionError(f"no {kind} in {[e.type for e in events(records)]}")


def wait_for(bootstrap: str, topics: Topics, kind: str, due: datetime) -> list[Record]:
    """Read the events until the case's first-response event of this kind is written."""
    left = (due - datetime.now(UTC)).total_seconds()
    return consume_until(
        bootstrap,
        topics.case_events,
        lambda rs: bool(of(events(rs), kind, "first_response")),
        timeout=max(left, 0.0) + WAIT,
    )


def test_deadlines_fire_on_time_on_an_input_ending_with_a_commit_marker(
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
        # the case's agent-actions partition ends with a commit marker: a record stage C
        # dead-letters (not an action), written in a transaction by another producer
        produce_in_a_transaction(
            kafka_bootstrap,
            [(topics.agent_actions, case.case_id, "not an action")],
            partitioner="murmur2_random",
        )
        consume_until(kafka_bootstrap, topics.dlq, 1, timeout=60)  # processed
        [action] = consume_until(kafka_bootstrap, topics.agent_actions, 1)
        [threaded] = [
            r
            for r in consume_until(kafka_bootstrap, topics.threaded, 1)
            if r.key == case.case_id.encode()
        ]
        assert action.partition == threaded.partition, "the action must reach the case"
        tp = (topics.agent_actions, action.partition)
        assert high_watermarks(kafka_bootstrap, [tp]) == {tp: action.offset + 2}
        opened = consume_until(
            kafka_bootstrap,
            topics.case_events,
            lambda rs: bool(of(events(rs), "sla.started", "first_response")),
        )
        [started] = of(events(opened), "sla.started", "first_response")
        warning_due = started.at + timedelta(seconds=8)  # 25% of 32 s
        breach_due = started.at + timedelta(seconds=32)
        assert datetime.now(UTC) < warning_due, "the setup took too long for this test"

        # idle, nothing more written: the warning fires on time
        records = wait_for(kafka_bootstrap, topics, "sla.warning", warning_due)
        due, written = written_at(records, "sla.warning")
        assert due == warning_due
        assert written - due < ON_TIME, written - due

        # restarted at the marker (its committed offset), nothing more written: the breach
        worker.stop()
        stack.start_worker()
        ready_at = datetime.now(UTC)
        records = wait_for(kafka_bootstrap, topics, "sla.breached", breach_due)
        due, written = written_at(records, "sla.breached")
        assert due == breach_due
        assert written - max(due, ready_at) < ON_TIME, (written - due, ready_at - due)
