"""Customer effort through the real projection on the real broker: a projection stopped half
way and started again, and one that reads the whole topic again from the beginning, end
with the same totals as a rebuild that reads it once: nothing recounted, nothing lost."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues import Projection, ProjectionMetrics, make_engine, make_session_factory, upgrade
from queues.effort import EffortPolicy
from queues.models import EffortCounterRow
from schemas import CaseEvent, Topics
from tests.kafka_support import create_topics, produce
from tests.queues.case_event_builders import to_bytes
from tests.queues.test_effort import POLICY, _busy_history

pytestmark = pytest.mark.kafka


def publish(bootstrap: str, topic: str, events: Sequence[CaseEvent]) -> None:
    produce(bootstrap, topic, [(event.case_id, to_bytes(event)) for event in events])


def catch_up(
    bootstrap: str, topic: str, sessions: sessionmaker[Session], group: str, policy: EffortPolicy
) -> int:
    with Projection(
        kafka_config={"bootstrap.servers": bootstrap},
        topic=topic,
        session_factory=sessions,
        group_id=group,
        metrics=ProjectionMetrics(CollectorRegistry()),
        batch_size=5,
        batch_timeout_seconds=0.2,
        effort=policy,
    ) as projection:
        return projection.catch_up(timeout_seconds=90)


def totals(sessions: sessionmaker[Session]) -> dict[tuple[str, str, str], int]:
    with sessions() as session:
        return {
            (row.family, row.queue, row.le): row.value
            for row in session.scalars(select(EffortCounterRow))
            if row.family != "event_clock"
        }


def test_a_restarted_and_a_replaying_projection_count_like_one_reading(
    kafka_bootstrap: str,
    topics: Topics,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    create_topics(kafka_bootstrap, [topics.case_events], partitions=3)
    events = _busy_history()
    half = len(events) // 2
    group = f"effort-{uuid.uuid4().hex[:10]}"

    publish(kafka_bootstrap, topics.case_events, events[:half])
    catch_up(kafka_bootstrap, topics.case_events, session_factory, group, POLICY)
    publish(kafka_bootstrap, topics.case_events, events[half:])
    catch_up(kafka_bootstrap, topics.case_events, session_factory, group, POLICY)  # restarted
    once = totals(session_factory)
    # a new group reads every record again: all of them are duplicates now
    replay = f"effort-replay-{uuid.uuid4().hex[:10]}"
    assert catch_up(kafka_bootstrap, topics.case_events, session_factory, replay, POLICY) == len(
        events
    )
    assert totals(session_factory) == once

    url = f"sqlite:///{(tmp_path / 'rebuilt.db').as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    try:
        rebuilt = make_session_factory(engine)
        fresh = f"effort-rebuild-{uuid.uuid4().hex[:10]}"
        catch_up(kafka_bootstrap, topics.case_events, rebuilt, fresh, POLICY)
        assert totals(rebuilt) == once
    finally:
        engine.dispose()
    assert once[("cases_resolved", "general", "")] == 2
    assert once[("repeat_contacts", "billing", "")] == 1
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.delete_consumer_groups([group, replay, fresh]).values():
        future.result(timeout=30)
