"""The SLA timer across restarts and rebalances, on a fake clock.

A restart is simulated as the worker sees it: the case states as the changelog holds
them, the deadlines indexed from them, and stage C's input partitions with records still
to be replayed (their committed offset behind their end). Nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace

from schemas import AgentAction, AgentActionType, CaseEvent
from streams.case_state import CaseState
from streams.event_time import EventTimeProgress, Position
from streams.output import OutputRecord
from tests.streams.test_sla_timer import CASE, T0, TOPICS, Worker, settle

CHANGELOG = TOPICS.state_changelog("cases")


class ReplayWorker(Worker):
    """The fake-clock worker with stage C's event-time progress, as `build_app` wires it."""

    def __init__(self, start: datetime = T0) -> None:
        super().__init__(prepare_seconds=60)
        self.clock.set(start)
        self.progress = EventTimeProgress((TOPICS.threaded, TOPICS.agent_actions), 0.1)
        self.pipeline.event_time = self.progress
        self.offsets = {TOPICS.threaded: 0, TOPICS.agent_actions: 0}

    def assign(self, ends: dict[str, int], starts: dict[str, int]) -> None:
        self.progress.assign(
            {(topic, 0): Position(starts[topic], ends[topic]) for topic in self.offsets}
        )
        self.offsets = dict(starts)
        self.pipeline.partitions_assigned({0, 1, 2, 3})

    async def send(self, topic: str, value: bytes, stamp: datetime | None = None) -> None:
        stamp = stamp or self.clock.now()
        message = SimpleNamespace(
            topic=topic,
            key=CASE.encode(),
            partition=0,
            value=value,
            offset=self.offsets[topic],
            timestamp=stamp.timestamp(),
        )
        self.offsets[topic] += 1
        await self.pipeline.cases_batch([SimpleNamespace(message=message)])
        self.progress.processed([message])

    def restore(self, records: Sequence[OutputRecord]) -> None:
        """Hold the case as the changelog records say, and index its deadline."""
        [last] = [r for r in records if r.topic == CHANGELOG][-1:]
        state = CaseState.model_validate_json(last.value)
        self.cases.hold(0, [(CASE.encode(), last.value)])
        self.deadlines.replace_partition(0, [(CASE.encode(), state.next_deadline)])


def claim(at: datetime) -> bytes:
    action = AgentAction(
        action_id="a-claim", case_id=CASE, agent_id="sam", type=AgentActionType.CLAIM, at=at
    )
    return action.model_dump_json().encode()


def event_bodies(records: Sequence[OutputRecord]) -> dict[str, str]:
    bodies: dict[str, str] = {}
    for record in records:
        if record.topic == TOPICS.case_events:
            event = CaseEvent.model_validate_json(record.value)
            assert bodies.setdefault(event.event_id, record.value.decode()) == record.value.decode()
    return bodies


async def first_run() -> tuple[Worker, list[OutputRecord]]:
    """The original run: open at 09:00, claim at 09:50, until 18:00; live all along."""
    worker = ReplayWorker()
    worker.assign({TOPICS.threaded: 0, TOPICS.agent_actions: 0}, dict(worker.offsets))
    running = asyncio.create_task(worker.timer.run())
    try:
        await worker.open_case()
        opened = list(worker.publisher.records)
        await worker.run_until(T0 + timedelta(minutes=50))
        await worker.send(TOPICS.agent_actions, claim(worker.clock.now()))
        await worker.run_until(T0 + timedelta(hours=9))
    finally:
        running.cancel()
    return worker, opened


async def test_a_restart_replays_the_claim_before_firing_and_writes_what_the_first_run_wrote() -> (
    None
):
    original, opened = await first_run()
    steps = [
        e for e in original.of("case.escalated") if e["payload"]["escalation"]["on"] != "breach"
    ]
    assert not steps  # claimed at 09:50: the 10:00 unclaimed step never fired
    # The worker had died right after the case opened; it restarts at 18:00, with the
    # claim (stamped 09:50) still on agent.actions, behind the committed offset.
    restarted = ReplayWorker(T0 + timedelta(hours=9))
    restarted.restore(opened)
    restarted.assign(
        ends={TOPICS.threaded: 1, TOPICS.agent_actions: 1},
        starts={TOPICS.threaded: 1, TOPICS.agent_actions: 0},
    )
    running = asyncio.create_task(restarted.timer.run())
    try:
        await settle()
        restarted.clock.advance(1)
        await settle()
        assert not restarted.events()  # nothing fires ahead of the replay
        await restarted.send(
            TOPICS.agent_actions, claim(T0 + timedelta(minutes=50)), T0 + timedelta(minutes=50)
        )
        restarted.clock.advance(1)
        await settle()
    finally:
        running.cancel()
    replayed = event_bodies(opened) | event_bodies(restarted.publisher.records)
    assert replayed == event_bodies(original.publisher.records)


async def test_a_replaying_partition_fires_up_to_the_records_processed() -> None:
    worker = ReplayWorker(T0 + timedelta(hours=9))
    opening = Worker(prepare_seconds=0)
    await opening.open_case()
    worker.restore(opening.publisher.records)
    worker.assign(
        ends={TOPICS.threaded: 1, TOPICS.agent_actions: 3},
        starts={TOPICS.threaded: 1, TOPICS.agent_actions: 0},
    )
    running = asyncio.create_task(worker.timer.run())
    try:
        await settle()
        worker.clock.advance(1)
        await settle()
        assert not worker.events()
        assert await worker.timer.step() > 0  # held back: the timer polls, it does not spin
        # a note stamped 11:30 (offset 0 of 3): the steps of 10:00 and 11:00 may fire now
        note = AgentAction(
            action_id="a-note",
            case_id=CASE,
            agent_id="sam",
            type=AgentActionType.NOTE,
            text="looking",
            at=T0 + timedelta(hours=2, minutes=30),
        )
        await worker.send(TOPICS.agent_actions, note.model_dump_json().encode(), note.at)
        worker.clock.advance(1)
        await settle()
        fired = sorted(datetime.fromisoformat(e["at"]) for e in worker.of("case.escalated"))
        assert fired == [T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
        assert not worker.of("sla.warning")  # 13:00 is past the records processed
    finally:
        running.cancel()


async def test_a_revoked_partition_stops_firing_until_assigned_again() -> None:
    worker = ReplayWorker()
    worker.assign({TOPICS.threaded: 0, TOPICS.agent_actions: 0}, dict(worker.offsets))
    running = asyncio.create_task(worker.timer.run())
    try:
        await worker.open_case()
        await worker.run_until(T0 + timedelta(minutes=59, seconds=30))
        assert len(worker.pipeline.prepared) == 1  # the 10:00 step, ready
        await worker.pipeline.partitions_revoked({0})
        assert len(worker.pipeline.prepared) == 0
        await worker.run_until(T0 + timedelta(hours=3))
        assert not worker.of("case.escalated")
        worker.assign(
            {TOPICS.threaded: 1, TOPICS.agent_actions: 0},
            {TOPICS.threaded: 1, TOPICS.agent_actions: 0},
        )
        worker.clock.advance(1)
        await settle()
        assert len(worker.of("case.escalated")) == 3  # 10:00, 11:00, 12:00
    finally:
        running.cancel()


class HeldPublisher:
    """Acknowledges nothing until released."""

    def __init__(self) -> None:
        self.records: list[OutputRecord] = []
        self.release = asyncio.Event()

    async def publish(self, records: Sequence[OutputRecord]) -> None:
        await self.release.wait()
        self.records.extend(records)


async def test_a_rebalance_during_a_burst_does_not_crash_the_timer() -> None:
    worker = Worker(prepare_seconds=0)
    await worker.open_case()
    held = HeldPublisher()
    worker.pipeline.writer._publisher = held
    worker.clock.set(T0 + timedelta(hours=1, seconds=1))
    firing = asyncio.create_task(worker.pipeline.fire_due(worker.clock.now()))
    await settle()
    assert not firing.done()  # waiting for its events to be acknowledged
    worker.cases.assign({1, 2, 3})  # the rebalance takes partition 0 away meanwhile
    held.release.set()
    await firing  # used to raise KeyError in save, and the worker exited
    assert 0 not in worker.cases.partitions
    assert not [r for r in held.records if r.topic == CHANGELOG]  # not ours to write
    assert worker.deadlines.deadline_of(0, CASE.encode()) is None


async def test_revoking_waits_for_the_burst_being_written() -> None:
    worker = Worker(prepare_seconds=0)
    await worker.open_case()
    held = HeldPublisher()
    worker.pipeline.writer._publisher = held
    worker.clock.set(T0 + timedelta(hours=1, seconds=1))
    firing = asyncio.create_task(worker.pipeline.fire_due(worker.clock.now()))
    await settle()
    revoking = asyncio.create_task(worker.pipeline.partitions_revoked({0}))
    await settle()
    assert not revoking.done()
    held.release.set()
    await asyncio.gather(firing, revoking)
    kinds = [json.loads(r.value)["type"] for r in held.records if r.topic == TOPICS.case_events]
    assert "case.escalated" in kinds
    assert [r for r in held.records if r.topic == CHANGELOG]  # written before the revoke
    worker.clock.advance(timedelta(hours=2))
    await worker.pipeline.fire_due(worker.clock.now())
    assert len([r for r in held.records if r.topic == TOPICS.case_events]) == len(kinds)
