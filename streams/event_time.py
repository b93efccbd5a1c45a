"""How far stage C has come on each input partition, in event time: what the SLA timer may fire.

A deadline of a case on partition `p` may fire only once stage C has processed, on `p`,
every input that could stop it. Stage C reads two topics per partition (threaded
messages and agent actions). For each, its progress is:

- the wall clock, when stage C is caught up there: nothing older is waiting to be
  processed. It is caught up when the consumer's fetch position has reached the end of
  the partition (the high watermark known at assignment, or a newer one the consumer has
  seen) and stage C has processed every record the consumer fetched there since the
  assignment. The fetch position, not stage C's next offset, is compared with the end: a
  partition written in Kafka transactions (stage C's own outputs, moved messages included,
  or any other transactional writer) ends with a commit marker, which takes an offset but
  is never delivered, so the offset after the last record processed stays one short of
  the high watermark, while the fetch position moves past the marker. Where the fetch
  position is not known (no fetch yet since the assignment), stage C is caught up only
  when the offset after the last record it processed has reached the end;
- otherwise the timestamp of the newest record processed there (the record's own Kafka
  timestamp, which a replay reads again unchanged), or nothing at all before the first
  record: a partition still replaying fires nothing ahead of its records.

The partition's limit is the earlier of the two topics' progress, less the allowed
lateness (an action stamped just before a deadline may follow a newer record), and never
goes back. A revoked partition has no limit until it is assigned again.

Because the limit follows the records, a worker that restarts or takes over a partition
replays the agent actions stamped before a deadline before it fires that deadline, as
the first owner did: the replay writes the same events as the original run. Neither rule
counts a record as processed before stage C has finished it: one fetched and still on its
way to stage C (in the consumer's hands, in the stream's buffer or in a batch) keeps the
partition on its records' time, and so does one not fetched yet or one set aside after a
rebalance (see `streams.generations`: it is fetched again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["EventTimeProgress", "Fetched", "Position"]


@dataclass
class Position:
    """Where stage C stands on one topic partition."""

    next_offset: int
    """The offset of the next record to process."""
    end_offset: int
    """The partition's end (high watermark) when it was assigned."""
    newest: datetime | None = None
    """The newest record timestamp processed since the assignment."""


@dataclass(frozen=True)
class Fetched:
    """What the stream's consumer has fetched of one topic partition in its assignment."""

    position: int
    """Its fetch position: the offset after everything fetched, transaction markers
    included."""
    last_record: int | None = None
    """The offset of the last record it fetched there since the partition was assigned
    (None: none)."""


FetchedOf = Callable[[str, int], "Fetched | None"]
"""What the consumer has fetched of a topic partition (None: not known)."""


class EventTimeProgress:
    """Event-time progress of stage C per input partition, over its `topics`."""

    def __init__(
        self,
        topics: Sequence[str],
        lateness_seconds: float = 0.0,
        highwater: Callable[[str, int], int | None] | None = None,
        fetched: FetchedOf | None = None,
    ) -> None:
        self.topics = tuple(topics)
        self._lateness = timedelta(seconds=lateness_seconds)
        self._highwater = highwater or (lambda _topic, _partition: None)
        self._fetched = fetched or (lambda _topic, _partition: None)
        self._positions: dict[tuple[str, int], Position] = {}
        # offsets processed, whatever the assignment: a batch may finish during a rebalance
        self._processed_to: dict[tuple[str, int], int] = {}
        self._limits: dict[int, datetime] = {}

    @property
    def partitions(self) -> frozenset[int]:
        """The partitions assigned on every topic (those that may fire at all)."""
        counts: dict[int, int] = {}
        for _topic, partition in self._positions:
            counts[partition] = counts.get(partition, 0) + 1
        return frozenset(p for p, n in counts.items() if n == len(self.topics))

    def assign(self, positions: Mapping[tuple[str, int], Position]) -> None:
        """Start following these topic partitions from these positions (after an assignment).

        A position behind what stage C has already processed there starts from the latter
        (stage C may process a kept partition while its committed offset is being read).
        """
        for (topic, partition), position in positions.items():
            if topic in self.topics:
                done = self._processed_to.get((topic, partition), 0)
                position.next_offset = max(position.next_offset, done)
                self._positions[(topic, partition)] = position
                self._limits.pop(partition, None)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Stop following these partitions: nothing of theirs fires until assigned again."""
        gone = set(partitions)
        for topic, partition in [tp for tp in self._positions if tp[1] in gone]:
            del self._positions[(topic, partition)]
        for partition in gone:
            self._limits.pop(partition, None)

    def keep_only(self, partitions: Iterable[int]) -> None:
        """Stop following every partition but these."""
        held = set(partitions)
        self.revoke({partition for _topic, partition in self._positions} - held)

    def processed(self, records: Iterable[Any]) -> None:
        """Stage C has processed (and acknowledged the outputs of) these faust messages.

        A message set aside (marked acknowledged, see `streams.generations`) was not
        processed: it is fetched again and counts once stage C has processed it then.
        """
        for message in records:
            if getattr(message, "acked", False):
                continue
            tp = (message.topic, message.partition)
            self._processed_to[tp] = max(self._processed_to.get(tp, 0), message.offset + 1)
            position = self._positions.get(tp)
            if position is None:
                continue  # a partition revoked meanwhile
            position.next_offset = max(position.next_offset, message.offset + 1)
            stamp = datetime.fromtimestamp(message.timestamp, UTC)
            if position.newest is None or stamp > position.newest:
                position.newest = stamp

    def limit(self, partition: int, now: datetime) -> datetime | None:
        """Fire this partition's deadlines at or before this instant (None: nothing yet).

        `now` is the wall clock less the lateness, as the timer fires.
        """
        reached: list[datetime] = []
        for topic in self.topics:
            position = self._positions.get((topic, partition))
            if position is None:
                return None  # not (or no longer) assigned
            if self._caught_up(topic, partition, position):
                reached.append(now)
            elif position.newest is not None:
                reached.append(position.newest - self._lateness)
            else:
                return self._limits.get(partition)
        found = min(*reached, now)
        previous = self._limits.get(partition)
        if previous is not None and previous > found:
            return previous
        self._limits[partition] = found
        return found

    def _caught_up(self, topic: str, partition: int, position: Position) -> bool:
        """Whether stage C has processed everything before the end of this topic partition."""
        end = max(position.end_offset, self._highwater(topic, partition) or 0)
        if position.next_offset >= end:
            return True
        fetched = self._fetched(topic, partition)
        if fetched is None or fetched.position < end:  # not known, or records not fetched
            return False
        # fetched to the end, markers included: caught up once no fetched record is pending
        return fetched.last_record is None or fetched.last_record < position.next_offset
