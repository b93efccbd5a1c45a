"""The SLA deadline index of a worker: which cases fall due next, in O(log n) per change.

One heap of `(deadline, key)` per input partition, with lazy invalidation: rescheduling a
case pushes a new entry and records the case's current deadline; stale entries are
skipped when they surface. A timer tick therefore costs O(due items + partitions), not
O(open cases). Partitions have their own heaps because each fires up to its own limit
(the event time stage C has reached on it, see `streams.event_time`): a partition still
replaying holds its overdue deadlines back without the others paying for it. The index
is rebuilt from the restored state whenever partitions are assigned.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from datetime import datetime

__all__ = ["DeadlineIndex"]


class DeadlineIndex:
    """Next SLA deadline of every case held by this worker, earliest first per partition."""

    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[datetime, bytes]]] = {}
        # per partition, each case's current deadline: keyed by the case alone, so a million
        # cases cost no million (partition, key) tuples
        self._current: dict[int, dict[bytes, datetime]] = {}

    def __len__(self) -> int:
        return sum(len(current) for current in self._current.values())

    def schedule(self, partition: int, key: bytes, deadline: datetime | None) -> None:
        """Set (or clear, with None) the next deadline of a case."""
        current = self._current.get(partition)
        if deadline is None:
            if current is not None:
                current.pop(key, None)
            return
        if current is None:
            current = self._current[partition] = {}
        elif current.get(key) == deadline:
            return
        current[key] = deadline
        heapq.heappush(self._heaps.setdefault(partition, []), (deadline, key))

    def deadline_of(self, partition: int, key: bytes) -> datetime | None:
        """The deadline a case is scheduled for, if any."""
        current = self._current.get(partition)
        return None if current is None else current.get(key)

    def partition_next(self, partition: int) -> datetime | None:
        """The earliest deadline indexed on one partition (stale entries dropped on the way)."""
        heap = self._heaps.get(partition)
        current = self._current.get(partition, {})
        while heap:
            deadline, key = heap[0]
            if current.get(key) == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def next_deadline(self) -> datetime | None:
        """The earliest deadline indexed, if any."""
        heads = [head for p in list(self._heaps) if (head := self.partition_next(p)) is not None]
        return min(heads, default=None)

    def upcoming(self, until: datetime, limit: int) -> list[tuple[int, bytes, datetime]]:
        """Up to `limit` cases due at or before `until`, earliest first, left in the index."""
        candidates: list[tuple[datetime, int, bytes]] = []
        for partition, heap in self._heaps.items():
            current = self._current.get(partition, {})
            # walk the heap from its root: a child is never earlier than its parent
            frontier = [0] if heap else []
            while frontier:
                at = frontier.pop()
                deadline, key = heap[at]
                if deadline > until:
                    continue
                if current.get(key) == deadline:
                    candidates.append((deadline, partition, key))
                frontier.extend(child for child in (2 * at + 1, 2 * at + 2) if child < len(heap))
        return [(p, key, deadline) for deadline, p, key in heapq.nsmallest(limit, candidates)]

    def pop_due(self, now: datetime) -> list[tuple[int, bytes, datetime]]:
        """Remove and return every case whose deadline is at or before `now`."""
        return self.pop_due_by(lambda _partition: now)

    def pop_due_by(
        self, limit: Callable[[int], datetime | None], most: int | None = None
    ) -> list[tuple[int, bytes, datetime]]:
        """Remove and return, earliest first, cases due at or before `limit(partition)`.

        A partition whose limit is None fires nothing. With `most`, only the `most`
        earliest of them across partitions; the others stay indexed.
        """
        heads: list[tuple[datetime, int, datetime]] = []  # (head deadline, partition, limit)
        for partition, heap in self._heaps.items():
            until = limit(partition) if heap else None
            if until is not None and heap[0][0] <= until:
                heads.append((heap[0][0], partition, until))
        heapq.heapify(heads)
        due: list[tuple[int, bytes, datetime]] = []
        while heads and (most is None or len(due) < most):
            _head, partition, until = heads[0]
            heap = self._heaps[partition]
            deadline, key = heapq.heappop(heap)
            current = self._current.get(partition, {})
            if current.get(key) == deadline:  # else: rescheduled since, a stale entry
                del current[key]
                due.append((partition, key, deadline))
            if heap and heap[0][0] <= until:
                heapq.heapreplace(heads, (heap[0][0], partition, until))
            else:
                heapq.heappop(heads)
        return due

    def replace_partition(self, partition: int, entries: Iterable[tuple[bytes, datetime]]) -> None:
        """Forget a partition's deadlines and index these instead (after a restore).

        A list of entries is consumed (left empty).
        """
        self.drop_partitions({partition})
        heap: list[tuple[datetime, bytes]] = []
        if isinstance(entries, list):
            # the restore's list is emptied as it is read: each entry freed as its heap entry
            # is made, so a million of them are never held twice
            while entries:
                key, deadline = entries.pop()
                heap.append((deadline, key))
        else:
            heap.extend((deadline, key) for key, deadline in entries)
        self._current[partition] = {key: deadline for deadline, key in heap}
        heapq.heapify(heap)  # O(n), where pushing one by one is O(n log n)
        self._heaps[partition] = heap

    def keep_only(self, partitions: Iterable[int]) -> None:
        """Forget every deadline outside these partitions (the others moved elsewhere)."""
        held = set(partitions)
        self.drop_partitions(set(self._heaps) - held)

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget every deadline of these partitions (they moved to another worker)."""
        for partition in partitions:
            self._heaps.pop(partition, None)
            self._current.pop(partition, None)
