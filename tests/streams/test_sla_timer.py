"""The SLA timer driven by a fake clock: hours of SLA time pass in milliseconds.

The worker's own pipeline (stage C, the deadline index, the timer loop, prepared firings)
runs against an in-memory publisher and state held without a changelog; only the clock is
fake. Nothing sleeps: the test moves the clock and lets the event loop run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from rules import compile_sources
from schemas import AgentAction, AgentActionType, InboundMessage, Topics
from streams.clock import FakeClock
from streams.deadlines import DeadlineIndex
from streams.output import OutputRecord, ReliableWriter
from streams.pipeline import Pipeline
from streams.rebalance import case_store
from streams.records import ThreadedMessage
from streams.timer import SlaTimer
from streams.worker_config import RuleSetHolder, WorkerConfig

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
CASE = "C-TIMER00001"
TOPICS = Topics("fake.")
RULES = """
version: 1
calendars: {always: 24x7}
sla:
  standard:
    calendar: always
    targets: {normal: {first_response: 8h}}
    warn_at: 50%
escalations:
  standard:
    - {on: breach, queue: tier2, priority: +1}
    - {on: unclaimed, after: 1h, notify: [duty-manager], repeat: 2}
queues: {general: {}, tier2: {}}
routes: {queue: general, priority: normal, sla: standard, escalation: standard}
"""


class MemoryPublisher:
    """Keeps every record it is given, as acknowledged."""

    def __init__(self) -> None:
        self.records: list[OutputRecord] = []

    async def publish(self, records: Sequence[OutputRecord]) -> None:
        self.records.extend(records)


class Worker:
    """Stage C and its SLA timer on a fake clock."""

    def __init__(self, prepare_seconds: float) -> None:
        config = WorkerConfig(
            broker_url="kafka://unused", topics=TOPICS, sla_prepare_seconds=prepare_seconds
        )
        self.clock = FakeClock(T0)
        self.publisher = MemoryPublisher()
        self.cases = case_store(config)
        for partition in range(4):
            self.cases.hold(partition, [])
        self.deadlines = DeadlineIndex()
        self.pipeline = Pipeline(
            config,
            RuleSetHolder(compile_sources({"rules.yaml": RULES})),
            ReliableWriter(self.publisher),
            self.cases,
            self.cases,
            self.deadlines,
            clock=self.clock,
        )
        self.timer = SlaTimer(
            self.pipeline.fire_due,
            self.deadlines.next_deadline,
            self.clock,
            0.2,
            prepare=self.pipeline.prepare_upcoming,
            lateness_seconds=config.sla_lateness_seconds,
        )

    async def send(self, topic: str, value: bytes) -> None:
        message = SimpleNamespace(
            topic=topic, key=CASE.encode(), partition=0, offset=0, value=value, timestamp=0.0
        )
        await self.pipeline.cases_batch([SimpleNamespace(message=message)])

    async def open_case(self) -> None:
        inbound = InboundMessage(
            channel="email", external_id="m-1", sender="ana@example.com", text="hi", sent_at=T0
        )
        threaded = ThreadedMessage(
            case_id=CASE,
            customer_id="cus_1",
            opens_case=True,
            evidence="test",
            message=inbound,
            ingested_at=self.clock.now(),
        )
        await self.send(TOPICS.threaded, threaded.model_dump_json().encode())

    async def act(self, kind: AgentActionType, **fields: Any) -> None:
        action = AgentAction(
            action_id=f"a-{kind.value}",
            case_id=CASE,
            agent_id="sam",
            type=kind,
            at=self.clock.now(),
            **fields,
        )
        await self.send(TOPICS.agent_actions, action.model_dump_json().encode())

    async def run_until(self, moment: datetime, step: timedelta = timedelta(seconds=30)) -> None:
        """Move the fake clock to `moment` in steps, letting the timer run at each."""
        while self.clock.now() < moment:
            self.clock.set(min(moment, self.clock.now() + step))
            await settle()

    async def run_timer_until(
        self, moment: datetime, step: timedelta = timedelta(minutes=4)
    ) -> None:
        """Run the SLA timer while the clock moves to `moment` in steps smaller than the
        preparation horizon (so firings are prepared before they are due), off the whole
        second (so a step lands within the lateness after a deadline)."""
        running = asyncio.create_task(self.timer.run())
        try:
            self.clock.advance(0.1)
            await self.run_until(moment, step=step)
        finally:
            running.cancel()

    def events(self) -> list[dict[str, Any]]:
        return [
            json.loads(r.value) for r in self.publisher.records if r.topic == TOPICS.case_events
        ]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["type"] == kind]


async def settle() -> None:
    """Let every runnable task run until all wait (on the fake clock or a future)."""
    for _ in range(200):
        await asyncio.sleep(0)


def at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["at"])


async def test_fake_clock_fires_warning_breach_and_steps_at_their_event_times() -> None:
    worker = Worker(prepare_seconds=60)
    await worker.open_case()
    running = asyncio.create_task(worker.timer.run())
    try:
        await worker.run_until(T0 + timedelta(hours=3, minutes=59))
        assert [at(e) for e in worker.of("case.escalated")] == [
            T0 + timedelta(hours=1),
            T0 + timedelta(hours=2),
            T0 + timedelta(hours=3),
        ]  # the unclaimed step and its two repeats
        assert not worker.of("sla.warning")
        await worker.run_until(T0 + timedelta(hours=4))
        assert not worker.of("sla.warning")  # due now, but fired only after the lateness
        await worker.run_until(T0 + timedelta(hours=4, seconds=1))
        [warning] = worker.of("sla.warning")
        assert at(warning) == T0 + timedelta(hours=4)
        await worker.run_until(T0 + timedelta(hours=9))
        [breach] = worker.of("sla.breached")
        assert at(breach) == T0 + timedelta(hours=8)
        moved = [r for r in worker.publisher.records if r.topic == TOPICS.queue("tier2")]
        assert json.loads(moved[-1].value)["priority"] == "high"
        assert worker.deadlines.next_deadline() is None  # nothing left to time
    finally:
        running.cancel()


async def test_prepared_firings_write_exactly_what_firing_at_the_deadline_writes() -> None:
    runs = []
    for prepare_seconds in (0.0, 600.0):
        worker = Worker(prepare_seconds=prepare_seconds)
        await worker.open_case()
        await worker.run_timer_until(T0 + timedelta(hours=9))
        runs.append(worker.publisher.records)
        if prepare_seconds:
            assert len(worker.of("case.escalated")) == 4  # three unclaimed, one breach
            # unclaimed x3, warning, breach: each was ready when its deadline came
            assert worker.pipeline.prepared.used == 5
    unprepared, prepared = runs
    assert [(r.topic, r.key, r.value, tuple(r.headers)) for r in prepared] == [
        (r.topic, r.key, r.value, tuple(r.headers)) for r in unprepared
    ]


async def test_claim_after_a_firing_was_prepared_still_stops_the_step() -> None:
    worker = Worker(prepare_seconds=600)
    await worker.open_case()
    running = asyncio.create_task(worker.timer.run())
    try:
        await worker.run_until(T0 + timedelta(minutes=55))
        assert len(worker.pipeline.prepared) == 1  # the unclaimed step due at 10:00
        await worker.act(AgentActionType.CLAIM)
        await worker.run_until(T0 + timedelta(hours=9))
    finally:
        running.cancel()
    assert not worker.of("case.escalated")[:-1]  # only the breach step fired
    [step] = worker.of("case.escalated")
    assert step["payload"]["escalation"]["on"] == "breach"
    assert at(step) == T0 + timedelta(hours=8)


async def test_a_change_after_a_firing_was_prepared_is_not_lost() -> None:
    worker = Worker(prepare_seconds=600)
    await worker.open_case()
    running = asyncio.create_task(worker.timer.run())
    try:
        await worker.run_until(T0 + timedelta(minutes=55))
        assert len(worker.pipeline.prepared) == 1  # the unclaimed step due at 10:00
        await worker.act(AgentActionType.NOTE, text="calling them back")  # same deadline
        await worker.run_until(T0 + timedelta(hours=1, seconds=1))
    finally:
        running.cancel()
    [step] = worker.of("case.escalated")
    assert at(step) == T0 + timedelta(hours=1)
    case = worker.of("case.updated")[-1]["payload"]["case"]
    assert [m["direction"] for m in case["messages"]] == ["inbound", "note"]
