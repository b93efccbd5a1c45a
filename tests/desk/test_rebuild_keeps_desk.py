"""`db rebuild --force` replays cases and assignments from the topic and keeps the desk's rows."""

from __future__ import annotations

import uuid

from prometheus_client import CollectorRegistry
from sqlalchemy import select

from queues import Projection, ProjectionMetrics, make_engine, make_session_factory, rebuild
from queues.desk import Strategy
from queues.models import AssignmentRow, CaseEventRow, CaseRow, MessageRow
from schemas import Topics
from tests.desk.conftest import DeskWorld
from tests.kafka_support import create_topics, produce
from tests.queues.case_event_builders import snapshot, to_bytes
from tests.queues.test_assignments_projection import history

PROJECTED = {t.__tablename__ for t in (AssignmentRow, CaseEventRow, CaseRow, MessageRow)}


def test_rebuild_replays_assignments_and_keeps_agents_and_queue_settings(
    kafka_bootstrap: str, topics: Topics, desk_world: DeskWorld
) -> None:
    create_topics(kafka_bootstrap, [topics.case_events], partitions=2)
    produce(kafka_bootstrap, topics.case_events, [(e.case_id, to_bytes(e)) for e in history()])
    token = desk_world.add("ana", "general")
    desk_world.directory.configure_queue("general", strategy=Strategy.ROUND_ROBIN)
    engine = make_engine(desk_world.database_url)
    try:
        with Projection(
            kafka_config={"bootstrap.servers": kafka_bootstrap},
            topic=topics.case_events,
            session_factory=make_session_factory(engine),
            group_id=f"test-{uuid.uuid4().hex[:8]}",
        ) as projection:
            projection.catch_up(timeout_seconds=60)
        before = snapshot(engine)
        assert len(before["assignments"]) == 2
        report = rebuild(
            database_url=desk_world.database_url,
            kafka_config={"bootstrap.servers": kafka_bootstrap},
            topic=topics.case_events,
            force=True,
            timeout_seconds=60,
            metrics=ProjectionMetrics(CollectorRegistry()),
        )
        assert report.cases == 1
        after = snapshot(engine)
        with make_session_factory(engine)() as session:
            assert session.scalars(select(CaseRow.assignee)).one() == "cy"
    finally:
        engine.dispose()
    for table in PROJECTED:
        assert after[table] == before[table], table
    assert after["agents"] == before["agents"]
    assert after["queues"] == before["queues"]
    agent = desk_world.directory.authenticate(token)
    assert agent is not None and agent.queues == {"general"}
    queue = desk_world.directory.queue("general")
    assert queue is not None and queue.strategy is Strategy.ROUND_ROBIN
