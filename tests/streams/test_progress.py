"""Readiness of the worker's stages: stalled only with input waiting and no progress."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from kafkaio import PublishError
from streams.output import OutputRecord
from streams.progress import PartitionOffsets, StageProgress
from tests.streams.test_poison import TOPICS, Stages, event, inbound

Ends = Mapping[tuple[str, int], int | None]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def high_watermarks(ends: Ends) -> Callable[[], dict[tuple[str, int], PartitionOffsets]]:
    """A consumer that tells only its high watermarks (its positions not known)."""
    return lambda: {tp: PartitionOffsets(end) for tp, end in ends.items()}


def test_a_stage_with_waiting_input_and_no_progress_is_stalled() -> None:
    clock = Clock()
    ends = {("in", 0): 10}
    progress = StageProgress(60, high_watermarks(ends), clock)
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


def test_a_partition_held_back_for_its_restore_is_not_a_stall_and_waits_from_its_restore() -> None:
    clock = Clock()
    ends: dict[tuple[str, int], int | None] = {("in", 0): None, ("in", 1): None}
    progress = StageProgress(60, high_watermarks(ends), clock)
    progress.watch("cases", ["in"])
    progress.restoring([("in", 1)])  # moved here: not fetched until its state is held
    progress.finished({("in", 0): 0})
    ends[("in", 0)] = 1
    clock.now += 600  # a long restore, with records waiting on partition 1
    assert progress.stalled() == {}
    progress.restored([("in", 1)])
    assert progress.stalled_for("cases") == 0  # its records wait from now
    clock.now += 61
    assert progress.stalled() == {"cases": 61}


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
    progress = StageProgress(60, high_watermarks(ends), clock)
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
    progress = StageProgress(60, high_watermarks(ends), clock)
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
    progress = StageProgress(60, high_watermarks(ends), clock)
    progress.watch("cases", ["in"])
    assert progress.stalled() == {}
    clock.now += 61
    assert progress.stalled() == {"cases": 61}
    progress.restart_waits()  # e.g. a new assignment finished restoring its state
    assert progress.stalled() == {}
    ends[("in", 0)] = 0  # fetched: an empty partition
    clock.now += 600
    assert progress.stalled() == {}


def test_an_idle_partition_that_ends_with_a_transaction_marker_is_not_waiting() -> None:
    """Stage C writes in transactions: a commit marker takes the offset after the last record,
    is never delivered, and the fetch position passes it."""
    clock = Clock()
    held = {("in", 0): PartitionOffsets(end=11, position=11, delivered=9)}  # marker at 10
    progress = StageProgress(60, lambda: held, clock)
    progress.watch("cases", ["in"])
    with progress.batch("cases"):
        pass
    progress.finished({("in", 0): 9})
    assert progress.stalled() == {}
    clock.now += 600
    assert progress.stalled_for("cases") == 0
    assert progress.stalled() == {}


def test_records_not_fetched_yet_are_waiting() -> None:
    clock = Clock()
    held = {("in", 0): PartitionOffsets(end=20, position=11, delivered=9)}
    progress = StageProgress(60, lambda: held, clock)
    progress.watch("cases", ["in"])
    progress.finished({("in", 0): 9})
    assert progress.stalled() == {}  # starts waiting now
    clock.now += 61
    assert progress.stalled() == {"cases": 61}
    held[("in", 0)] = PartitionOffsets(end=20, position=20, delivered=18)
    progress.finished({("in", 0): 18})  # fetched and finished, up to the marker at 19
    assert progress.stalled() == {}
    clock.now += 600
    assert progress.stalled() == {}


def test_records_not_fetched_yet_wait_on_a_partition_that_finished_nothing_yet() -> None:
    clock = Clock()
    held = {("in", 0): PartitionOffsets(end=20, position=5, delivered=5)}  # sought to 5
    progress = StageProgress(60, lambda: held, clock)
    progress.watch("cases", ["in"])
    assert progress.stalled() == {}
    clock.now += 61
    assert progress.stalled() == {"cases": 61}


def test_a_record_handed_to_the_stream_and_not_finished_is_waiting() -> None:
    clock = Clock()
    # all fetched up to the marker at 11; record 10 delivered, the stage finished up to 9
    held = {("in", 0): PartitionOffsets(end=12, position=12, delivered=10)}
    progress = StageProgress(60, lambda: held, clock)
    progress.watch("intake", ["in"])
    progress.finished({("in", 0): 9})
    assert progress.stalled() == {}
    clock.now += 61
    assert progress.stalled() == {"intake": 61}
    progress.finished({("in", 0): 10})
    assert progress.stalled() == {}


def test_after_a_rebalance_the_offset_sought_is_not_taken_for_a_record_in_hand() -> None:
    """faust notes the committed offset it seeks to as its read offset."""
    clock = Clock()
    held = {("in", 0): PartitionOffsets(end=13, position=13, delivered=11)}  # marker at 12
    progress = StageProgress(60, lambda: held, clock)
    progress.watch("cases", ["in"])
    progress.finished({("in", 0): 11})
    progress.forget_offsets()  # revoked, then assigned again: sought to the committed 12
    held[("in", 0)] = PartitionOffsets(end=13, position=13, delivered=12)
    assert progress.stalled() == {}
    clock.now += 600
    assert progress.stalled() == {}


def test_a_partition_never_fetched_is_waiting_whatever_its_position() -> None:
    clock = Clock()
    held = {
        ("in", 0): PartitionOffsets(end=None, position=4, delivered=None),
        ("in", 1): PartitionOffsets(end=11, position=11, delivered=9),
    }
    progress = StageProgress(60, lambda: held, clock)
    progress.watch("cases", ["in"])
    progress.finished({("in", 1): 9})
    assert progress.stalled() == {}
    clock.now += 61
    assert progress.stalled() == {"cases": 61}
    progress.restart_waits()
    held[("in", 0)] = PartitionOffsets(end=4, position=4, delivered=4)  # fetched: nothing new
    clock.now += 600
    assert progress.stalled() == {}
