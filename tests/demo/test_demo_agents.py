"""The demo's simulated agents answer, resolve, escalate and acknowledge pages through Kafka;
its rules are valid and page on-call until acknowledged."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from prometheus_client import CollectorRegistry

from escalator.demo.agents import DEMO_RULES, ESCALATION_REASON, REPLY_SHARE, DemoAgents
from queues import ProjectionMetrics, make_engine, make_session_factory, upgrade
from queues.apply import SourceRecord
from queues.writer import BatchWriter
from rules import compile_sources
from schemas import AgentAction, AgentActionType, Topics
from tests.kafka_support import create_topics
from tests.queues.case_event_builders import appended, case_id, opened, routed, to_bytes


def test_demo_rules_compile_with_an_sla_on_every_route() -> None:
    ruleset = compile_sources({"demo.yaml": DEMO_RULES})
    assert set(ruleset.queues) == {"general", "billing", "legal", "social", "tier2"}
    assert "demo" in ruleset.sla_policies
    paging = [step for step in ruleset.escalation_policies["demo"] if step.page]
    assert [(s.page, s.until, s.on) for s in paging] == [("oncall", "acknowledged", "breach")]
    assert paging[0].page_levels[0].targets[0].via == "slack"


@pytest.mark.kafka
def test_agents_reply_to_most_cases_and_resolve_some(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    upgrade(url)
    customers = [f"cust{n}" for n in range(40)]
    events = [e for c in customers for e in (opened(c), appended(c, 1), routed(c))]
    writer = BatchWriter(
        make_session_factory(make_engine(url)), ProjectionMetrics(CollectorRegistry())
    )
    writer.write([SourceRecord(to_bytes(event), 0, n) for n, event in enumerate(events)])
    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, [topics.agent_actions])

    agents = DemoAgents(kafka_bootstrap, topics, url, seed=1)
    now = datetime.now(UTC)
    agents.step(now)  # plans every open case; nothing is due yet
    assert agents.replies == 0
    agents.step(now + timedelta(hours=1))  # every planned reply and resolution is due
    assert 0.5 * REPLY_SHARE * len(customers) < agents.replies < len(customers)
    assert 0 < agents.resolutions < agents.replies
    assert 0 < agents.escalations < agents.replies
    paged = {case_id(c) for c in customers[:3]}
    agents.acknowledge_pages(paged, now)  # seen: acknowledged a few seconds later
    assert agents.acknowledgements == 0
    agents.acknowledge_pages(paged, now + timedelta(seconds=10))
    assert agents.acknowledgements == len(paged)
    agents.close()
    expected = agents.replies + agents.resolutions + agents.escalations + len(paged)

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"{topic_prefix}check",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topics.agent_actions])
    received: list[AgentAction] = []
    deadline = time.monotonic() + 30
    while len(received) < expected and time.monotonic() < deadline:
        record = consumer.poll(0.5)
        if record is not None and record.error() is None:
            action = AgentAction.model_validate_json(record.value() or b"")
            assert record.key() == action.case_id.encode()
            received.append(action)
    consumer.close()
    replies = {a.case_id for a in received if a.type is AgentActionType.REPLY}
    resolved = {a.case_id for a in received if a.type is AgentActionType.RESOLVE}
    assert len(replies) == agents.replies and len(resolved) == agents.resolutions
    assert resolved <= replies <= {case_id(c) for c in customers}
    escalated = [a for a in received if a.type is AgentActionType.ESCALATE]
    assert len(escalated) == agents.escalations
    assert all(a.reason == ESCALATION_REASON and a.queue == "tier2" for a in escalated)
    assert {a.case_id for a in escalated} <= replies
    acknowledged = {a.case_id for a in received if a.type is AgentActionType.ACKNOWLEDGE}
    assert acknowledged == paged
