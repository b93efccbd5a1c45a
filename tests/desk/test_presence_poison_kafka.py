"""The presence projection sets aside records it cannot apply and applies the others."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from queues import make_engine, make_session_factory
from queues import presence_projection as module
from queues.dead_letters import KafkaDeadLetters
from queues.desk import Presence
from queues.presence_projection import PresenceProjection
from schemas import AgentPresence, DeadLetter, Topics
from tests.desk.conftest import DeskWorld
from tests.kafka_support import consume_until, create_topics, produce


def change(agent: str, presence: str, number: int) -> bytes:
    record = AgentPresence(
        presence_id=f"p-{agent}-{number}",
        agent_id=agent,
        presence=presence,  # type: ignore[arg-type]
        at=datetime.now(UTC),
        by=agent,
    )
    return record.model_dump_json().encode()


def test_malformed_and_failing_presence_records_are_dead_lettered(
    kafka_bootstrap: str, topics: Topics, desk_world: DeskWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_topics(kafka_bootstrap, [topics.agent_presence], partitions=1)
    for name in ("ana", "bo", "cy"):
        desk_world.add(name, "general")
    apply = module.apply_presence

    def fragile(session: Session, record: AgentPresence) -> bool:
        if record.agent_id == "bo":
            raise ValueError("a value the database refuses")
        return apply(session, record)

    monkeypatch.setattr(module, "apply_presence", fragile)
    produce(
        kafka_bootstrap,
        topics.agent_presence,
        [
            (b"ana", change("ana", "online", 1)),
            (b"x", b"{not json"),
            (b"bo", change("bo", "online", 1)),
            (b"cy", change("cy", "away", 1)),
        ],
    )
    dlq = topics.dlq
    create_topics(kafka_bootstrap, [dlq], partitions=1)
    sink = KafkaDeadLetters({"bootstrap.servers": kafka_bootstrap}, dlq)
    engine = make_engine(desk_world.database_url)
    projection = PresenceProjection(
        kafka_config={"bootstrap.servers": kafka_bootstrap},
        topic=topics.agent_presence,
        session_factory=make_session_factory(engine),
        group_id=f"{topics.agent_presence}.test",
        dead_letters=sink,
    )
    try:
        assert projection.catch_up(timeout_seconds=60) == 4
    finally:
        projection.stop()
        sink.close()
        engine.dispose()
    letters = [
        (r.key, DeadLetter.model_validate_json(r.value or b""))
        for r in consume_until(kafka_bootstrap, dlq, 2, timeout=30)
    ]
    assert sorted((d.reason, d.source_offset, key) for key, d in letters) == [
        ("failed", 2, b"bo"),
        ("malformed", 1, b"x"),
    ]
    assert all(d.stage == "presence-projection" for _, d in letters)
    presences = {n: desk_world.directory.agent(n).presence for n in ("ana", "bo", "cy")}  # type: ignore[union-attr]
    assert presences == {"ana": Presence.ONLINE, "bo": Presence.OFFLINE, "cy": Presence.AWAY}
