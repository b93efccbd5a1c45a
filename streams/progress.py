"""Whether each stage makes progress: what `/readyz` and the stall gauge report.

A stage is stalled when one of its batches has been in flight for `stall_after_seconds` (a
write retried without end, a stuck lookup), or when one of its partitions has had records
waiting that long without the stage finishing any of them. Records wait on a partition when
the stream's consumer holds it but has never fetched it (no high watermark known), when its
fetch position is behind the high watermark (records not fetched yet), or when the consumer
has handed the stream a record past the last offset the stage finished there. The high
watermark alone cannot tell: a partition written in Kafka transactions ends with a commit
marker, which takes an offset but is never delivered, while the fetch position moves past it
(a transaction still open holds the position back until it ends). Where the position is not
known, records wait when the high watermark is past the offset after the last one finished.
Each partition counts on its own, so a stuck partition shows even while the stage's other
partitions move on. An idle stage with nothing to read is never stalled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

TopicPartition = tuple[str, int]
"""A topic and partition number."""


@dataclass(frozen=True)
class PartitionOffsets:
    """What the stream's consumer knows of one partition it holds."""

    end: int | None
    """The high watermark from its last fetch (None: never fetched)."""
    position: int | None = None
    """Its fetch position: the next offset it hands on, past any transaction marker (None:
    not known)."""
    delivered: int | None = None
    """The offset of the last record handed to the stream (None: none yet).

    After an assignment faust seeks to the committed offset and notes that instead; the
    finished offsets were forgotten on the revocation before (`forget_offsets`), once faust
    had waited for every batch to be acknowledged, so no earlier one is compared with it.
    """


ConsumerOffsets = Callable[[], Mapping[TopicPartition, PartitionOffsets]]
"""The offsets of the partitions the stream's consumer holds now."""


def records_waiting(offsets: PartitionOffsets, done: int | None) -> bool:
    """Whether a partition holds records the stage has not finished.

    `done` is the last offset the stage finished there since it got the partition (None:
    none yet); with none, the partition may hold nothing new, so only records not fetched
    yet wait there.
    """
    end, position = offsets.end, offsets.position
    if end is None:  # held, never fetched
        return True
    if position is None:  # not known: the high watermark alone, as if markers were records
        return done is not None and end > done + 1
    if position < end:  # records (or markers) not fetched yet
        return True
    # a record handed to the stream and not finished
    return done is not None and offsets.delivered is not None and offsets.delivered > done


class StageProgress:
    """Tracks each stage's batches and finished offsets, and tells how long one is stuck."""

    def __init__(
        self,
        stall_after_seconds: float,
        consumer_offsets: ConsumerOffsets | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stall_after_seconds = stall_after_seconds
        self._consumer_offsets = consumer_offsets
        self._clock = clock
        self._topics: dict[str, frozenset[str]] = {}
        self._in_flight: dict[str, float] = {}
        self._finished: dict[TopicPartition, int] = {}
        self._waiting_since: dict[TopicPartition, tuple[int | None, float]] = {}
        """Partitions with records waiting: the offset finished then, and since when."""
        self._restoring: set[TopicPartition] = set()
        """Partitions not fetched while their state restores: their records wait, no stall."""

    def watch(self, stage: str, topics: Iterable[str]) -> None:
        """Name a stage and the topics it reads."""
        self._topics[stage] = frozenset(topics)

    def use_consumer_offsets(self, consumer_offsets: ConsumerOffsets) -> None:
        """Where the offsets of the held partitions come from (the stream's consumer)."""
        self._consumer_offsets = consumer_offsets

    @contextmanager
    def batch(self, stage: str) -> Iterator[None]:
        """Around one batch of a stage: in flight while inside, progress when it finished."""
        self._in_flight[stage] = self._clock()
        try:
            yield
        finally:
            del self._in_flight[stage]

    def finished(self, offsets: Mapping[TopicPartition, int]) -> None:
        """The last offsets a finished batch processed, per partition."""
        self._finished.update(offsets)

    def forget_offsets(self) -> None:
        """Forget the finished offsets (on a rebalance: another worker may have moved them on)."""
        self._finished.clear()
        self._waiting_since.clear()
        self._restoring.clear()

    def restoring(self, partitions: Iterable[TopicPartition]) -> None:
        """These partitions are not fetched until their state is restored: not a stall."""
        self._restoring.update(partitions)

    def restored(self, partitions: Iterable[TopicPartition]) -> None:
        """These partitions' state is restored: their records wait from now."""
        for tp in partitions:
            self._restoring.discard(tp)
            self._waiting_since.pop(tp, None)

    def restart_waits(self) -> None:
        """Count waits from now (an assignment restored its state: fetching starts now)."""
        self._waiting_since.clear()

    def stalled_for(self, stage: str) -> float:
        """Seconds the stage has made no progress although its input is not empty (0: fine).

        The longest of: the batch in flight, and each partition's wait since its records
        started waiting (or since the stage last finished one of them there).
        """
        now = self._clock()
        started = self._in_flight.get(stage)
        in_flight = 0.0 if started is None else now - started
        return max(in_flight, self._longest_wait(stage, now))

    def stalled(self) -> dict[str, float]:
        """The stages stalled past `stall_after_seconds`, with for how long."""
        found = {stage: self.stalled_for(stage) for stage in self._topics}
        return {
            stage: seconds
            for stage, seconds in found.items()
            if seconds >= self.stall_after_seconds > 0
        }

    def _longest_wait(self, stage: str, now: float) -> float:
        if self._consumer_offsets is None:
            return 0.0
        topics = self._topics.get(stage, frozenset())
        try:
            held = self._consumer_offsets()
        except Exception:  # no consumer yet, or between assignments: nothing known to wait
            return 0.0
        longest = 0.0
        for (topic, partition), offsets in held.items():
            tp = (topic, partition)
            if topic not in topics or tp in self._restoring:
                continue
            done = self._finished.get(tp)
            if not records_waiting(offsets, done):
                self._waiting_since.pop(tp, None)
                continue
            noted = self._waiting_since.get(tp)
            if noted is None or noted[0] != done:  # started waiting, or moved on meanwhile
                noted = (done, now)
                self._waiting_since[tp] = noted
            longest = max(longest, now - noted[1])
        return longest
