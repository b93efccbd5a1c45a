"""Whether each stage makes progress: what `/readyz` and the stall gauge report.

A stage is stalled when one of its batches has been in flight for `stall_after_seconds`
(a write retried without end, a stuck lookup), or when one of its partitions has had
records waiting that long without the stage finishing any of them: the consumer's high
watermark is past the last offset the stage finished there, or the partition is assigned
and the consumer has never fetched it (no high watermark known). Each partition counts on
its own, so a stuck partition shows even while the stage's other partitions move on. An
idle stage with nothing to read is never stalled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

TopicPartition = tuple[str, int]
"""A topic and partition number."""

Highwaters = Callable[[], Mapping[TopicPartition, int | None]]
"""The end offsets of the partitions held now (None: assigned, never fetched yet)."""


class StageProgress:
    """Tracks each stage's batches and finished offsets, and tells how long one is stuck."""

    def __init__(
        self,
        stall_after_seconds: float,
        highwaters: Highwaters | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stall_after_seconds = stall_after_seconds
        self._highwaters = highwaters
        self._clock = clock
        self._topics: dict[str, frozenset[str]] = {}
        self._in_flight: dict[str, float] = {}
        self._finished: dict[TopicPartition, int] = {}
        self._waiting_since: dict[TopicPartition, tuple[int | None, float]] = {}
        """Partitions with records waiting: the offset finished then, and since when."""

    def watch(self, stage: str, topics: Iterable[str]) -> None:
        """Name a stage and the topics it reads."""
        self._topics[stage] = frozenset(topics)

    def use_highwaters(self, highwaters: Highwaters) -> None:
        """Where the end offsets of the held partitions come from (the stream's consumer)."""
        self._highwaters = highwaters

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
        if self._highwaters is None:
            return 0.0
        topics = self._topics.get(stage, frozenset())
        try:
            ends = self._highwaters()
        except Exception:  # no consumer yet, or between assignments: nothing known to wait
            return 0.0
        longest = 0.0
        for (topic, partition), end in ends.items():
            if topic not in topics:
                continue
            tp = (topic, partition)
            done = self._finished.get(tp)
            # never fetched, or records past the last one finished here (a partition this
            # worker has finished nothing on since it got it may hold nothing new: unknown)
            waiting = end is None or (done is not None and end > done + 1)
            if not waiting:
                self._waiting_since.pop(tp, None)
                continue
            noted = self._waiting_since.get(tp)
            if noted is None or noted[0] != done:  # started waiting, or moved on meanwhile
                noted = (done, now)
                self._waiting_since[tp] = noted
            longest = max(longest, now - noted[1])
        return longest
