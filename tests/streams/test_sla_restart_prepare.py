"""Right after a restart, the SLA timer prepares its soonest firings before it may fire them.

A restarted worker holds its partitions' states and deadlines as soon as the restore is
done, but stage C may not fire them until it has caught up on its inputs (a partition
written in Kafka transactions counts as caught up only after the consumer's first fetch,
see `streams.event_time`). Preparing a firing is a pure function of the held state, so
the timer uses that time to prepare the soonest deadlines; what it then writes must be
byte for byte what firing them at the deadline writes, once, and never ahead of the
replay. Fake clock, in-memory publisher: nothing sleeps.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from prometheus_client import REGISTRY

from streams.event_time import EventTimeProgress, Fetched, Position
from streams.output import OutputRecord
from tests.streams.test_sla_rebalance import ReplayWorker, claim, event_bodies
from tests.streams.test_sla_timer import T0, TOPICS, Worker

STEP_DUE = T0 + timedelta(hours=1)  # the case's first unclaimed step
INPUTS = (TOPICS.threaded, TOPICS.agent_actions)


class RestartedWorker(ReplayWorker):
    """A worker restarted at `start` whose consumer has not fetched stage C's inputs yet.

    Both input partitions end one offset past the committed offset: a transaction's commit
    marker, never delivered. Stage C is caught up once `fetch` says the consumer's fetch
    position passed it.
    """

    def __init__(self, start: datetime, prepare_seconds: float) -> None:
        super().__init__(start)
        self.pipeline.prepare_ahead = timedelta(seconds=prepare_seconds)
        self.fetched: dict[tuple[str, int], Fetched] = {}
        self.progress = EventTimeProgress(
            INPUTS, 0.1, fetched=lambda topic, partition: self.fetched.get((topic, partition))
        )
        self.pipeline.event_time = self.progress

    def restart(self, opened: list[OutputRecord]) -> None:
        """The restore: the case as its changelog says, then the assignment."""
        self.restore(opened)
        self.progress.assign({(topic, 0): Position(1, 2) for topic in INPUTS})
        self.pipeline.partitions_assigned({0, 1, 2, 3})

    def fetch(self) -> None:
        """The consumer's first fetch reaches past the commit markers: nothing to replay."""
        for topic in INPUTS:
            self.fetched[(topic, 0)] = Fetched(position=2)


async def opening() -> list[OutputRecord]:
    """The records of a case opened at T0 (what the changelog holds before the restart)."""
    first = Worker(prepare_seconds=0)
    await first.open_case()
    return list(first.publisher.records)


async def restart_and_fire(prepare_seconds: float) -> RestartedWorker:
    """Restart 30 s before the step is due, fetch only after it is due, then let it fire."""
    opened = await opening()
    worker = RestartedWorker(STEP_DUE - timedelta(seconds=30), prepare_seconds)
    worker.restart(opened)
    running = asyncio.create_task(worker.timer.run())
    try:
        await worker.run_until(STEP_DUE + timedelta(seconds=5), step=timedelta(seconds=1))
        assert not worker.events()  # due, but nothing fires before stage C has caught up
        if prepare_seconds:
            # prepared while the partition could not fire yet: the soonest deadline is ready
            assert len(worker.pipeline.prepared) == 1
        worker.fetch()
        await worker.run_until(STEP_DUE + timedelta(seconds=7), step=timedelta(seconds=1))
    finally:
        running.cancel()
    return worker


async def test_a_restarted_timer_prepares_its_soonest_firings_before_it_may_fire() -> None:
    unprepared = await restart_and_fire(prepare_seconds=0)
    prepared = await restart_and_fire(prepare_seconds=60)
    assert prepared.pipeline.prepared.used == 1  # the step was written from the prepared firing
    [step] = prepared.of("case.escalated")  # once
    assert datetime.fromisoformat(step["at"]) == STEP_DUE
    assert [(r.topic, r.key, r.value, tuple(r.headers)) for r in prepared.publisher.records] == [
        (r.topic, r.key, r.value, tuple(r.headers)) for r in unprepared.publisher.records
    ]
    assert event_bodies(prepared.publisher.records) == event_bodies(unprepared.publisher.records)


async def test_a_firing_prepared_before_the_replay_is_dropped_once_the_replay_changed_it() -> None:
    opened = await opening()
    worker = RestartedWorker(STEP_DUE - timedelta(seconds=30), prepare_seconds=60)
    worker.restart(opened)
    running = asyncio.create_task(worker.timer.run())
    try:
        await worker.run_until(STEP_DUE - timedelta(seconds=20), step=timedelta(seconds=1))
        assert len(worker.pipeline.prepared) == 1
        # the replay: a claim stamped before the step, read back from agent.actions
        worker.offsets = {TOPICS.threaded: 1, TOPICS.agent_actions: 1}
        await worker.send(TOPICS.agent_actions, claim(STEP_DUE - timedelta(minutes=10)))
        worker.fetch()
        await worker.run_until(STEP_DUE + timedelta(hours=3), step=timedelta(seconds=30))
    finally:
        running.cancel()
    assert not worker.of("case.escalated")  # claimed: the prepared step was dropped, not written
    assert worker.pipeline.prepared.used == 0


SLA_COUNTERS = ("escalator_sla_warnings", "escalator_sla_breaches", "escalator_escalations")


def counted() -> dict[str, float]:
    """Every SLA counter's samples now (warnings, breaches, escalation steps)."""
    return {
        f"{sample.name}{sorted(sample.labels.items())}": sample.value
        for metric in REGISTRY.collect()
        if metric.name in SLA_COUNTERS
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


async def test_a_prepared_firing_counts_what_a_firing_at_the_deadline_counts() -> None:
    deltas = []
    for prepare_seconds in (0.0, 600.0):
        worker = Worker(prepare_seconds=prepare_seconds)
        await worker.open_case()
        before = counted()
        await worker.run_timer_until(T0 + timedelta(hours=9))
        after = counted()
        deltas.append({name: after[name] - before.get(name, 0.0) for name in after})
        assert worker.pipeline.prepared.used == (5 if prepare_seconds else 0)
    unprepared, prepared = deltas
    assert prepared == unprepared
    assert sum(unprepared.values()) == 6  # three unclaimed steps, a warning, a breach, its step
