"""Stage C's event-time progress per partition: what the SLA timer may fire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from streams.deadlines import DeadlineIndex
from streams.event_time import EventTimeProgress, Fetched, Position

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


def marker_ended(
    fetched: dict[str, Fetched], lateness: float = 0.5
) -> tuple[EventTimeProgress, dict[str, int]]:
    """Progress over `m` (three records, 0 to 2, then a commit marker at 3) and an empty `a`."""
    highwater = {"m": 4}
    progress = EventTimeProgress(
        ("m", "a"), lateness, lambda topic, _p: highwater.get(topic), lambda t, _p: fetched.get(t)
    )
    return progress, highwater


def test_a_partition_ending_with_a_commit_marker_is_caught_up_once_fetched_past_it() -> None:
    # idle: every record processed, the fetch position past the marker
    fetched = {"m": Fetched(position=4, last_record=2), "a": Fetched(position=0)}
    progress, _ = marker_ended(fetched)
    progress.assign({("m", 0): Position(0, 4), ("a", 0): Position(0, 0)})
    progress.processed([record("m", n, T0 + timedelta(hours=n)) for n in range(3)])
    assert progress.limit(0, NOW) == NOW


def test_a_restart_at_a_commit_marker_is_caught_up_without_a_record() -> None:
    # the committed offset is the marker's: nothing is delivered, the position passes it
    fetched: dict[str, Fetched] = {}
    progress, _ = marker_ended(fetched)
    progress.assign({("m", 0): Position(3, 4), ("a", 0): Position(0, 0)})
    assert progress.limit(0, NOW) is None  # no fetch yet: the committed offset alone
    fetched["m"] = Fetched(position=3)
    assert progress.limit(0, NOW) is None  # the marker not fetched yet
    fetched["m"] = Fetched(position=4)
    assert progress.limit(0, NOW) == NOW


def test_records_fetched_and_not_processed_keep_the_partition_on_record_time() -> None:
    fetched = {"m": Fetched(position=4, last_record=2)}  # all three fetched (and the marker)
    progress, _ = marker_ended(fetched)
    progress.assign({("m", 0): Position(0, 4), ("a", 0): Position(0, 0)})
    assert progress.limit(0, NOW) is None  # fetched, none processed yet
    progress.processed([record("m", n, T0 + timedelta(hours=n)) for n in range(2)])
    # record 2 is still on its way to stage C (in the stream's buffer, or in a batch)
    assert progress.limit(0, NOW) == T0 + timedelta(hours=1, seconds=-0.5)
    progress.processed([record("m", 2, T0 + timedelta(hours=2))])
    assert progress.limit(0, NOW) == NOW


def test_a_fetch_position_behind_the_end_keeps_the_partition_on_record_time() -> None:
    fetched = {"m": Fetched(position=4, last_record=2)}
    progress, highwater = marker_ended(fetched)
    progress.assign({("m", 0): Position(0, 4), ("a", 0): Position(0, 0)})
    progress.processed([record("m", n, T0 + timedelta(hours=n)) for n in range(3)])
    assert progress.limit(0, NOW) == NOW
    highwater["m"] = 6  # a record and its marker written, not fetched yet
    later = NOW + timedelta(seconds=5)
    assert progress.limit(0, later) == NOW  # on record time, and never back
    fetched["m"] = Fetched(position=6, last_record=4)  # fetched, not processed
    assert progress.limit(0, later) == NOW
    progress.processed([record("m", 4, later - timedelta(seconds=1))])
    assert progress.limit(0, later) == later


def test_an_unknown_fetch_position_falls_back_to_the_offsets_processed() -> None:
    progress, _ = marker_ended({})  # no fetch noted (e.g. since the latest rebalance)
    progress.assign({("m", 0): Position(0, 4), ("a", 0): Position(0, 0)})
    progress.processed([record("m", n, T0 + timedelta(hours=n)) for n in range(3)])
    assert progress.limit(0, NOW) == T0 + timedelta(hours=2, seconds=-0.5)  # the marker counts
    progress.processed([record("m", 3, T0 + timedelta(hours=3))])  # a record, not a marker
    assert progress.limit(0, NOW) == NOW


def test_records_set_aside_do_not_count_as_processed() -> None:
    # a batch set aside after a rebalance: fetched again later, processed then
    fetched = {"m": Fetched(position=4, last_record=2)}
    progress, _ = marker_ended(fetched)
    progress.assign({("m", 0): Position(0, 4), ("a", 0): Position(0, 0)})
    aside = [record("m", n, T0 + timedelta(hours=n)) for n in range(3)]
    for message in aside:
        message.acked = True
    progress.processed(aside)
    assert progress.limit(0, NOW) is None


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
