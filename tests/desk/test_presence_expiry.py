"""Presence expiry and the presence projection, on a real store without Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from queues import make_engine, make_session_factory
from queues.desk import Presence
from queues.desk.assigner import ASSIGNER_AGENT_ID, Assigner
from queues.desk.directory import Agent, Role
from queues.desk.presence import expired, last_sign_of_life
from queues.desk.reads import DeskReads
from queues.presence_projection import apply_presence
from schemas import AgentAction, AgentPresence, PresenceState
from tests.desk.conftest import DeskWorld

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
TIMEOUT = timedelta(seconds=90)


def agent(
    name: str, presence: Presence, presence_at: datetime, heartbeat_at: datetime | None
) -> Agent:
    return Agent(
        name=name,
        role=Role.AGENT,
        skills=frozenset(),
        capacity={},
        presence=presence,
        presence_at=presence_at,
        heartbeat_at=heartbeat_at,
        presence_id="p-1",
    )


def test_silent_online_and_away_agents_expire_offline_ones_do_not() -> None:
    now = T0 + timedelta(minutes=10)
    agents = [
        agent("beating", Presence.ONLINE, T0, now - timedelta(seconds=30)),
        agent("silent", Presence.ONLINE, T0, now - timedelta(seconds=90)),
        agent("away", Presence.AWAY, T0, now - timedelta(seconds=200)),
        agent("never", Presence.ONLINE, now - timedelta(seconds=91), None),
        agent("just-set", Presence.ONLINE, now - timedelta(seconds=10), now - timedelta(hours=1)),
        agent("gone", Presence.OFFLINE, T0, None),
    ]
    found = {e.agent.name: e.silent_since for e in expired(agents, now, TIMEOUT)}
    assert found == {
        "silent": now - timedelta(seconds=90),
        "away": now - timedelta(seconds=200),
        "never": now - timedelta(seconds=91),
    }
    assert last_sign_of_life(agents[4]) == now - timedelta(seconds=10)


def test_the_expiry_record_is_offline_conditional_and_says_why() -> None:
    now = T0 + timedelta(minutes=5)
    [expiry] = expired([agent("ana", Presence.ONLINE, T0, T0)], now, TIMEOUT)
    record = expiry.record("escalator", now, TIMEOUT)
    assert record.presence is PresenceState.OFFLINE
    assert record.agent_id == "ana" and record.by == "escalator" and record.at == now
    assert record.expected_presence_id == "p-1"
    assert record.reason is not None and "no heartbeat from ana for 90s" in record.reason


class World:
    """A store, its directory, and an assigner whose clock and publications the test sees."""

    def __init__(self, desk_world: DeskWorld) -> None:
        self.desk = desk_world
        self.engine = make_engine(desk_world.database_url)
        self.sessions = make_session_factory(self.engine)
        self.now = T0
        self.actions: list[AgentAction] = []
        self.presence: list[AgentPresence] = []
        self.assigner = Assigner(
            desk_world.directory,
            DeskReads(self.sessions),
            self.actions.extend,
            clock=lambda: self.now,
            publish_presence=self.presence.extend,
            presence_timeout=TIMEOUT,
        )

    def apply(self, record: AgentPresence) -> bool:
        with self.sessions.begin() as session:
            return apply_presence(session, record)


def change(name: str, presence: PresenceState, at: datetime, **fields: object) -> AgentPresence:
    return AgentPresence(
        presence_id=str(uuid.uuid4()),
        agent_id=name,
        presence=presence,
        at=at,
        by=name,
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def world(desk_world: DeskWorld) -> Iterator[World]:
    created = World(desk_world)
    yield created
    created.engine.dispose()


def test_the_assigner_expires_a_silent_agent_once_and_the_record_applies(world: World) -> None:
    world.desk.add("ana", "general")
    world.desk.add("bo", "general")
    for name in ("ana", "bo"):
        assert world.apply(change(name, PresenceState.ONLINE, T0))
    world.now = T0 + timedelta(seconds=60)
    world.desk.directory.heartbeat("bo", now=world.now)
    world.assigner.run_once()
    assert world.presence == []

    world.now = T0 + timedelta(seconds=100)
    world.assigner.run_once()
    [record] = world.presence
    assert record.agent_id == "ana" and record.by == ASSIGNER_AGENT_ID
    world.now += timedelta(seconds=1)
    world.assigner.run_once()  # not applied yet: not published twice
    assert len(world.presence) == 1

    assert world.apply(record)
    ana = world.desk.directory.agent("ana")
    assert ana is not None and ana.presence is Presence.OFFLINE and ana.presence_at == record.at
    bo = world.desk.directory.agent("bo")
    assert bo is not None and bo.presence is Presence.ONLINE
    world.now = T0 + timedelta(seconds=160)  # bo silent since 60 s: 100 s now
    world.assigner.run_once()
    assert [r.agent_id for r in world.presence] == ["ana", "bo"]


def test_an_expiry_decided_before_the_agent_came_back_does_not_apply(world: World) -> None:
    world.desk.add("ana", "general")
    assert world.apply(change("ana", PresenceState.ONLINE, T0))
    world.now = T0 + timedelta(seconds=95)
    world.assigner.run_once()
    [expiry] = world.presence
    back = change("ana", PresenceState.ONLINE, world.now)  # ana set online meanwhile
    assert world.apply(back)
    assert not world.apply(expiry)
    ana = world.desk.directory.agent("ana")
    assert (
        ana is not None and ana.presence is Presence.ONLINE and ana.presence_id == back.presence_id
    )


def test_records_of_unknown_agents_are_skipped(world: World) -> None:
    assert not world.apply(change("nobody", PresenceState.ONLINE, T0))
