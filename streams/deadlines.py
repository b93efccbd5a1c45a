"""The SLA deadline index of a worker: which cases fall due next, in O(log n) per change.

A heap of `(deadline, partition, key)` with lazy invalidation: rescheduling a case pushes
a new entry and records the case's current deadline; stale entries are skipped when they
surface. A timer tick therefore costs O(due items), not O(open cases). The index is
rebuilt from the restored state whenever partitions are assigned.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import datetime


class DeadlineIndex:
    """Next SLA deadline of every case held by this worker, earliest first."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, bytes]] = []
        self._current: dict[tuple[int, bytes], datetime] = {}

    def __len__(self) -> int:
        return len(self._current)

    def schedule(self, partition: int, key: bytes, deadline: datetime | None) -> None:
        """Set (or clear, with None) the next deadline of a case."""
        if deadline is None:
            self._current.pop((partition, key), None)
            return
        if self._current.get((partition, key)) == deadline:
            return
        self._current[(partition, key)] = deadline
        heapq.heappush(self._heap, (deadline, partition, key))

    def deadline_of(self, partition: int, key: bytes) -> datetime | None:
        """The deadline a case is scheduled for, if any."""
        return self._current.get((partition, key))

    def next_deadline(self) -> datetime | None:
        """The earliest deadline indexed, if any (stale heap entries are dropped on the way)."""
        heap = self._heap
        while heap:
            deadline, partition, key = heap[0]
            if self._current.get((partition, key)) == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def upcoming(self, until: datetime, limit: int) -> list[tuple[int, bytes, datetime]]:
        """Up to `limit` cases due at or before `until`, earliest first, left in the index."""
        heap, found, frontier = self._heap, [], [0] if self._heap else []
        # walk the heap from its root: a child is never earlier than its parent
        candidates: list[tuple[datetime, int, bytes]] = []
        while frontier:
            at = frontier.pop()
            entry = heap[at]
            if entry[0] > until:
                continue
            if self._current.get((entry[1], entry[2])) == entry[0]:
                candidates.append(entry)
            frontier.extend(child for child in (2 * at + 1, 2 * at + 2) if child < len(heap))
        for deadline, partition, key in heapq.nsmallest(limit, candidates):
            found.append((partition, key, deadline))
        return found

    def pop_due(self, now: datetime) -> list[tuple[int, bytes, datetime]]:
        """Remove and return every case whose deadline is at or before `now`."""
        due: list[tuple[int, bytes, datetime]] = []
        while self._heap and self._heap[0][0] <= now:
            deadline, partition, key = heapq.heappop(self._heap)
            if self._current.get((partition, key)) == deadline:
                del self._current[(partition, key)]
                due.append((partition, key, deadline))
        return due

    def replace_partition(self, partition: int, entries: Iterable[tuple[bytes, datetime]]) -> None:
        """Forget a partition's deadlines and index these instead (after a restore)."""
        self.drop_partitions({partition})
        added = [(deadline, partition, key) for key, deadline in entries]
        for deadline, _partition, key in added:
            self._current[(partition, key)] = deadline
        self._heap.extend(added)
        heapq.heapify(self._heap)  # O(n), where pushing one by one is O(n log n)

    def keep_only(self, partitions: Iterable[int]) -> None:
        """Forget every deadline outside these partitions (the others moved elsewhere)."""
        held = set(partitions)
        self.drop_partitions({partition for partition, _key in self._current} - held)

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget every deadline of these partitions (they moved to another worker)."""
        for partition, key in [pk for pk in self._current if pk[0] in partitions]:
            del self._current[(partition, key)]
        if len(self._heap) > 2 * len(self._current) + 1024:
            self._heap = [e for e in self._heap if self._current.get((e[1], e[2])) == e[0]]
            heapq.heapify(self._heap)
