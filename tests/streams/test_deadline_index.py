"""The deadline index keeps each case's current deadline per partition, earliest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.deadlines import DeadlineIndex

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def test_a_restored_partition_fires_its_cases_in_deadline_order_and_its_list_is_consumed() -> None:
    entries = [(f"C-{n}".encode(), T0 + timedelta(seconds=(n * 7) % 10)) for n in range(10)]
    expected = sorted((deadline, key) for key, deadline in entries)
    index = DeadlineIndex()
    index.schedule(2, b"C-other", T0)
    index.replace_partition(1, list(entries))
    restored = list(entries)
    index.replace_partition(1, restored)  # again: the first one's entries are forgotten
    assert restored == []  # consumed, never held twice
    assert len(index) == 11
    assert index.deadline_of(1, b"C-3") == T0 + timedelta(seconds=1)
    index.schedule(1, b"C-3", None)  # no longer timed
    index.schedule(1, b"C-4", T0 + timedelta(hours=1))  # moved later
    due = index.pop_due_by(lambda partition: T0 + timedelta(seconds=9) if partition == 1 else None)
    assert [(deadline, key) for _p, key, deadline in due] == [
        entry for entry in expected if entry[1] not in (b"C-3", b"C-4")
    ]
    assert index.deadline_of(2, b"C-other") == T0  # the other partition held back
    index.drop_partitions({1})
    assert len(index) == 1 and index.next_deadline() == T0


def test_at_most_n_due_cases_are_popped_earliest_first_across_partitions() -> None:
    index = DeadlineIndex()
    for n in range(12):
        index.schedule(n % 3, f"C-{n}".encode(), T0 + timedelta(seconds=n))
    index.schedule(0, b"C-3", T0 + timedelta(hours=2))  # moved later: its old entry is stale
    index.schedule(2, b"C-later", T0 + timedelta(hours=1))
    until = T0 + timedelta(minutes=1)
    first = index.pop_due_by(lambda _partition: until, most=4)
    assert [key for _p, key, _d in first] == [b"C-0", b"C-1", b"C-2", b"C-4"]
    rest = index.pop_due_by(lambda partition: until if partition != 1 else None, most=100)
    assert [key for _p, key, _d in rest] == [b"C-5", b"C-6", b"C-8", b"C-9", b"C-11"]
    assert index.pop_due_by(lambda _partition: until) == [
        (1, b"C-7", T0 + timedelta(seconds=7)),
        (1, b"C-10", T0 + timedelta(seconds=10)),
    ]
    assert len(index) == 2  # C-3 and C-later, not due
