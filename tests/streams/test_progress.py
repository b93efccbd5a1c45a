"""Readiness of the worker's stages: stalled only with input waiting and no progress."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from kafkaio import PublishError
from streams.output import OutputRecord
from streams.progress import StageProgress
from tests.streams.test_poison import TOPICS, Stages, event, inbound


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_stage_with_waiting_input_and_no_progress_is_stalled() -> None:
    clock = Clock()
    ends = {("in", 0): 10}
    progress = StageProgress(60, lambda: ends, clock)
    progress.watch("intake", ["in"])
    with progress.batch("intake"):
        clock.now += 1
    progress.finished({("in", 0): 9})
    clock.now += 600
    assert progress.stalled() == {}  # idle: everything read
    ends[("in", 0)] = 20  # records arrive and nothing takes them
    assert progress.stalled_for("intake") == 0
    clock.now += 59
    assert progress.stalled() == {}
    clock.now += 2
    assert progress.stalled() == {"intake": 61}
    with progress.batch("intake"):
        pass
    progress.finished({("in", 0): 19})
    assert progress.stalled() == {}


def test_a_batch_stuck_on_a_write_stalls_its_stage_until_it_is_written() -> None:
    class Down:
        """A broker that is down until `up` is set."""

        def __init__(self) -> None:
            self.up = False

        async def publish(self, records: Sequence[OutputRecord]) -> None:
            if not self.up:
                raise PublishError("all brokers down")

    async def scenario() -> None:
        down = Down()
        stages = Stages(down)
        clock = Clock()
        progress = StageProgress(60, clock=clock)
        progress.watch("intake", [TOPICS.inbound])
        stages.pipeline.progress = progress
        message = inbound("s-1")
        batch = [event(TOPICS.inbound, b"ana", message.model_dump_json().encode(), 0)]
        task = asyncio.ensure_future(stages.pipeline.intake_batch(batch))
        await asyncio.sleep(0.01)
        clock.now += 61
        assert progress.stalled() == {"intake": 61}
        down.up = True
        await asyncio.wait_for(task, 10)
        assert progress.stalled() == {}

    asyncio.run(scenario())


def test_after_a_rebalance_offsets_finished_before_are_not_taken_for_waiting_input() -> None:
    clock = Clock()
    ends = {("in", 0): 10}
    progress = StageProgress(60, lambda: ends, clock)
    progress.watch("cases", ["in"])
    with progress.batch("cases"):
        pass
    progress.finished({("in", 0): 4})
    progress.forget_offsets()  # the partition went away and came back: another worker read on
    clock.now += 600
    assert progress.stalled() == {}


def test_one_stuck_partition_stalls_its_stage_while_the_others_move_on() -> None:
    clock = Clock()
    ends: dict[tuple[str, int], int | None] = {("in", 0): 10, ("in", 1): 10}
    progress = StageProgress(60, lambda: ends, clock)
    progress.watch("cases", ["in"])
    progress.finished({("in", 0): 4, ("in", 1): 9})
    assert progress.stalled() == {}  # partition 0 starts waiting now
    for _ in range(7):  # partition 1 keeps taking new records; partition 0 none
        clock.now += 10
        ends[("in", 1)] = (ends[("in", 1)] or 0) + 5
        with progress.batch("cases"):
            pass
        progress.finished({("in", 1): (ends[("in", 1)] or 0) - 1})
    assert progress.stalled() == {"cases": 70}


def test_a_partition_assigned_but_never_fetched_stalls_its_stage() -> None:
    """The chaos harness once saw a worker hold partitions it never fetched for 15 minutes."""
    clock = Clock()
    ends: dict[tuple[str, int], int | None] = {("in", 0): None}
    progress = StageProgress(60, lambda: ends, clock)
    progress.watch("cases", ["in"])
    assert progress.stalled() == {}
    clock.now += 61
    assert progress.stalled() == {"cases": 61}
    progress.restart_waits()  # e.g. a new assignment finished restoring its state
    assert progress.stalled() == {}
    ends[("in", 0)] = 0  # fetched: an empty partition
    clock.now += 600
    assert progress.stalled() == {}
