"""Stage C's event-time progress per partition: what the SLA timer may fire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from streams.deadlines import DeadlineIndex
from streams.event_time import EventTimeProgress, Position

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=5)


def record(topic: str, offset: int, at: datetime, partition: int = 0) -> SimpleNamespace:
    return SimpleNamespace(
        topic=topic, partition=partition, offset=offset, timestamp=at.timestamp()
    )


def test_a_partition_fires_by_the_wall_clock_only_once_stage_c_reached_its_end() -> None:
    highwater: dict[str, int] = {}
    progress = EventTimeProgress(("m", "a"), 0.5, lambda topic, _p: highwater.get(topic))
    assert progress.limit(0, NOW) is None  # not assigned
    progress.assign({("m", 0): Position(2, 2), ("a", 0): Position(0, 2)})
    assert progress.limit(0, NOW) is None  # `a` has two records to replay, none processed
    progress.processed([record("a", 0, T0 + timedelta(hours=1))])
    assert progress.limit(0, NOW) == T0 + timedelta(hours=1) - timedelta(seconds=0.5)
    progress.processed([record("a", 1, T0 + timedelta(hours=2))])
    assert progress.limit(0, NOW) == NOW  # both at their ends: the wall clock
    highwater["m"] = 3  # a new message came in: `m` is behind again
    assert progress.limit(0, NOW + timedelta(seconds=5)) == NOW  # never goes back
    progress.processed([record("m", 2, NOW + timedelta(seconds=4))])
    assert progress.limit(0, NOW + timedelta(seconds=9)) == NOW + timedelta(seconds=9)


def test_records_processed_while_the_positions_were_read_count() -> None:
    # stage C finished a batch of a kept partition while the rebalance read its offsets
    progress = EventTimeProgress(("m", "a"))
    progress.processed([record("m", 0, T0)])
    progress.assign({("m", 0): Position(0, 1), ("a", 0): Position(0, 0)})
    assert progress.limit(0, NOW) == NOW  # caught up, not waiting for offset 0 again


def test_revoked_partitions_have_no_limit_until_assigned_again() -> None:
    progress = EventTimeProgress(("m", "a"))
    progress.assign({(t, p): Position(0, 0) for t in ("m", "a") for p in (0, 1)})
    progress.revoke({0})
    assert progress.limit(0, NOW) is None
    assert progress.limit(1, NOW) == NOW
    progress.processed([record("a", 5, NOW, partition=0)])  # late, after the revoke: ignored
    progress.keep_only({0})
    assert progress.partitions == frozenset()


def test_deadlines_pop_per_partition_up_to_each_limit() -> None:
    index = DeadlineIndex()
    for partition in (0, 1):
        for hour in (1, 2, 3):
            index.schedule(partition, f"c{hour}".encode(), T0 + timedelta(hours=hour))
    limits = {0: T0 + timedelta(hours=2), 1: None}
    due = index.pop_due_by(limits.get)
    assert due == [(0, b"c1", T0 + timedelta(hours=1)), (0, b"c2", T0 + timedelta(hours=2))]
    assert index.next_deadline() == T0 + timedelta(hours=1)  # partition 1 kept its own
    assert index.partition_next(0) == T0 + timedelta(hours=3)
    index.keep_only({0})
    assert len(index) == 1
