"""Whether each stage makes progress: what `/readyz` and the stall gauge report.

A stage is stalled when it has made no progress for `stall_after_seconds` while its input
is not empty: either one batch has been in flight that long (a write retried without
end, a stuck lookup), or records wait on its partitions (the consumer's high watermark
is past the last offset the stage finished) and no batch has finished for that long.
An idle stage with nothing to read is never stalled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

TopicPartition = tuple[str, int]
"""A topic and partition number."""

Highwaters = Callable[[], Mapping[TopicPartition, int]]
"""The end offsets of the partitions held now, for the topics asked about."""


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
        self._progress: dict[str, float] = {}
        self._finished: dict[TopicPartition, int] = {}
        self._waiting_since: dict[str, float] = {}

    def watch(self, stage: str, topics: Iterable[str]) -> None:
        """Name a stage and the topics it reads."""
        self._topics[stage] = frozenset(topics)
        self._progress.setdefault(stage, self._clock())

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
        self._progress[stage] = self._clock()

    def finished(self, offsets: Mapping[TopicPartition, int]) -> None:
        """The last offsets a finished batch processed, per partition."""
        self._finished.update(offsets)

    def forget_offsets(self) -> None:
        """Forget the finished offsets (on a rebalance: another worker may have moved them on)."""
        self._finished.clear()
        self._waiting_since.clear()

    def stalled_for(self, stage: str) -> float:
        """Seconds the stage has made no progress although its input is not empty (0: fine)."""
        now = self._clock()
        started = self._in_flight.get(stage)
        if started is not None:
            return now - started
        if not self._input_waiting(stage):
            self._waiting_since.pop(stage, None)
            return 0.0
        since = self._waiting_since.setdefault(stage, now)
        return now - max(since, self._progress.get(stage, now))

    def stalled(self) -> dict[str, float]:
        """The stages stalled past `stall_after_seconds`, with for how long."""
        found = {stage: self.stalled_for(stage) for stage in self._topics}
        return {
            stage: seconds
            for stage, seconds in found.items()
            if seconds >= self.stall_after_seconds > 0
        }

    def _input_waiting(self, stage: str) -> bool:
        if self._highwaters is None:
            return False
        topics = self._topics.get(stage, frozenset())
        try:
            ends = self._highwaters()
        except Exception:  # no consumer yet, or between assignments: nothing known to wait
            return False
        for (topic, partition), end in ends.items():
            if topic not in topics:
                continue
            done = self._finished.get((topic, partition))
            if done is not None and end > done + 1:
                return True
        return False
