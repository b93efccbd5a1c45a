"""The assigner's decisions on a real store, without Kafka: what one pass proposes, and why."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from queues import EventApplier, SourceRecord, make_engine, make_session_factory
from queues.desk import Mode, Presence, Strategy
from queues.desk.assigner import Assigner
from queues.desk.reads import DeskReads
from schemas import AgentAction, CaseEvent, CaseRoutedPayload, CaseStatus, Priority
from schemas.ids import event_id_for
from tests.desk.conftest import DeskWorld
from tests.queues.case_event_builders import T0, case_id, conversation, routed, to_bytes


class Store:
    """The world's store with an event feed and an assigner whose clock the test moves."""

    def __init__(self, world: DeskWorld) -> None:
        self.world = world
        self.engine = make_engine(world.database_url)
        self.sessions = make_session_factory(engine=self.engine)
        self.offset = 0
        self.now = T0 + timedelta(hours=1)
        self.published: list[AgentAction] = []
        self.assigner = Assigner(
            world.directory,
            DeskReads(self.sessions),
            self.published.extend,
            clock=lambda: self.now,
        )

    def feed(self, *events: CaseEvent) -> None:
        with self.sessions.begin() as session:
            records = []
            for event in events:
                records.append(SourceRecord(to_bytes(event), 0, self.offset))
                self.offset += 1
            EventApplier().apply_batch(session, records)

    def answer(self, action: AgentAction, **case: Any) -> None:
        """What the stream would answer: a snapshot after the action (owner as given)."""
        base = routed(case.pop("customer"), at=action.at, routing=action.action_id)
        payload = CaseRoutedPayload.model_validate(base.payload)
        for field, value in case.items():
            setattr(payload.case, field, value)
        self.feed(
            CaseEvent(
                event_id=event_id_for(action.case_id, "case.updated", action.action_id),
                case_id=action.case_id,
                type="case.updated",
                at=action.at,
                reason=f"after {action.type.value}",
                payload=payload.model_dump(mode="json"),
            )
        )

    def run(self) -> list[AgentAction]:
        before = len(self.published)
        self.assigner.run_once()
        return self.published[before:]


@pytest.fixture
def store(desk_world: DeskWorld) -> Iterator[Store]:
    created = Store(desk_world)
    yield created
    created.engine.dispose()


def test_capacity_counts_assignments_in_flight_and_urgency_goes_first(store: Store) -> None:
    store.world.directory.configure_queue("general", strategy=Strategy.LEAST_LOADED, mode=Mode.PUSH)
    store.world.add("ana", "general", capacity={"email": 1})
    store.world.directory.set_presence("ana", Presence.ONLINE)
    store.feed(*conversation("low", messages=1), *conversation("high", messages=1))
    store.feed(routed("high", priority=Priority.URGENT, routing="urgent"))
    [first] = store.run()
    assert (first.type.value, first.case_id, first.to_agent) == ("assign", case_id("high"), "ana")
    assert first.reason is not None and first.reason.startswith("least loaded: ana")
    assert store.run() == []  # still in flight: ana's one email slot is taken
    store.answer(first, customer="high", assignee="ana", assignment_pending=True)
    assert store.run() == []  # now the store says so
    store.now += timedelta(seconds=5)
    resolved = first.model_copy(update={"action_id": "resolve-1", "at": store.now})
    store.answer(resolved, customer="high", assignee="ana", status=CaseStatus.RESOLVED)
    [second] = store.run()
    assert (second.case_id, second.to_agent) == (case_id("low"), "ana")


def test_offline_agents_cases_are_released_on_condition(store: Store) -> None:
    store.world.add("olga", "general")
    store.world.directory.set_presence("olga", Presence.ONLINE)
    store.feed(*conversation("c1", messages=1))
    claim = AgentAction(
        action_id="claim-1", case_id=case_id("c1"), agent_id="olga", type="claim", at=store.now
    )
    store.answer(claim, customer="c1", assignee="olga")
    assert store.run() == []
    store.world.directory.set_presence("olga", Presence.AWAY)
    assert store.run() == []  # away keeps the case
    store.world.directory.set_presence("olga", Presence.OFFLINE)
    [release] = store.run()
    assert (release.type.value, release.expected_owner) == ("release", "olga")
    assert release.reason == "olga went offline: back to queue general"
    assert store.run() == []  # in flight: not released twice


def test_an_unaccepted_assignment_goes_back_and_to_someone_else(store: Store) -> None:
    store.world.directory.configure_queue("general", accept_timeout_seconds=60)
    store.world.add("tia", "general")
    store.world.directory.set_presence("tia", Presence.ONLINE)
    store.feed(*conversation("slow", messages=1))
    [assign] = store.run()
    store.answer(assign, customer="slow", assignee="tia", assignment_pending=True)
    store.now += timedelta(seconds=59)
    assert store.run() == []
    store.now += timedelta(seconds=2)
    [release] = store.run()
    assert release.reason == "not accepted by tia within 60s"
    store.answer(release, customer="slow", assignee=None)
    store.world.add("tom", "general")
    store.world.directory.set_presence("tom", Presence.ONLINE)
    [again] = store.run()
    assert again.to_agent == "tom"  # not tia again


def test_pull_queues_are_never_pushed(store: Store) -> None:
    store.world.directory.configure_queue("general", mode=Mode.PULL)
    store.world.add("ana", "general")
    store.world.directory.set_presence("ana", Presence.ONLINE)
    store.feed(*conversation("pull", messages=1))
    assert store.run() == []
