"""Presence is a stream: the desk records it on `agents.presence`, and a rebuild restores it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from queues import ProjectionMetrics, rebuild
from queues.desk import Presence, Role
from schemas import Topics
from tests.desk.conftest import DeskWorld, desk_client
from tests.kafka_support import create_topics


def presence(world: DeskWorld, name: str) -> Presence:
    agent = world.directory.agent(name)
    assert agent is not None
    return agent.presence


def test_presence_goes_through_kafka_and_db_rebuild_restores_it(
    kafka_bootstrap: str, topics: Topics, desk_world: DeskWorld
) -> None:
    create_topics(
        kafka_bootstrap,
        [topics.agent_presence],
        partitions=2,
        config={"cleanup.policy": "compact"},
    )
    create_topics(kafka_bootstrap, [topics.case_events, topics.agent_actions], partitions=2)
    desk_world.add("ana", "general")
    desk_world.add("bo", "general")
    desk_world.add("cy", "general")
    desk_world.add("lee", "general", role=Role.LEAD)
    with desk_client(
        desk_world,
        kafka_bootstrap,
        topics.agent_actions,
        presence_topic=topics.agent_presence,
    ) as client:
        for name, value in (("ana", "online"), ("bo", "online"), ("ana", "away")):
            answer = client.put(
                "/v1/me/presence", json={"presence": value}, headers=desk_world.auth(name)
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["presence"] == value  # in the store when the desk answers
        by_lead = client.put(
            "/v1/agents/bo/presence", json={"presence": "away"}, headers=desk_world.auth("lee")
        )
        assert by_lead.status_code == 200 and by_lead.json()["presence"] == "away"
        refused = client.put(
            "/v1/agents/ana/presence", json={"presence": "offline"}, headers=desk_world.auth("bo")
        )
        assert refused.status_code == 403
        beat = client.post("/v1/me/heartbeat", headers=desk_world.auth("cy"))
        assert beat.status_code == 200 and beat.json()["presence"] == "offline"
    cy = desk_world.directory.agent("cy")
    assert cy is not None and cy.heartbeat_at is not None  # a heartbeat keeps presence as is

    # the store forgets (or a stray write changes) presence; the topic still knows
    desk_world.directory.set_presence("ana", Presence.OFFLINE)
    desk_world.directory.set_presence("cy", Presence.ONLINE)
    rebuild(
        database_url=desk_world.database_url,
        kafka_config={"bootstrap.servers": kafka_bootstrap},
        topic=topics.case_events,
        presence_topic=topics.agent_presence,
        force=True,
        timeout_seconds=60,
        metrics=ProjectionMetrics(CollectorRegistry()),
    )
    assert {name: presence(desk_world, name) for name in ("ana", "bo", "cy", "lee")} == {
        "ana": Presence.AWAY,
        "bo": Presence.AWAY,
        "cy": Presence.OFFLINE,
        "lee": Presence.OFFLINE,
    }
