"""Consumer lag, dead-letter queue size and unrouted messages, read from Kafka's own offsets.

A background thread asks the broker every `refresh_seconds` (an AdminClient for start/end
offsets and the offsets at a timestamp; a non-joining consumer per watched group for its
committed offsets),
and the collector serves the last answer, so a scrape never waits on Kafka.

- `escalator_consumer_lag_records{group,topic,partition}`: end offset minus committed offset
  (a partition the group never committed counts from its start offset: the groups read
  from the earliest record).
- `escalator_dead_letter_records`: records held on the dead-letter topic (end minus start).
- `escalator_messages_unrouted`: records on the worker's input topics written more than
  `unrouted_after_seconds` ago that the worker group has not yet consumed: messages with
  no routed case after that long.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin._listoffsets import OffsetSpec  # the class admin re-exports
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kafkaio import clients

log = logging.getLogger(__name__)

_TIMEOUT_SECONDS = 5.0

MARKER_PROBE_LIMIT = 16
"""A partition with at most this many old offsets unread (and none recent) is read to tell
records from transaction markers; more than that is a backlog whatever markers it holds."""


@dataclass(frozen=True)
class WatchedGroup:
    """A consumer group and the topics whose lag it is answerable for."""

    group: str
    topics: Sequence[str]


@dataclass
class LagSnapshot:
    """One reading of the offsets."""

    lag: dict[tuple[str, str, int], int] = field(default_factory=dict)
    dead_letters: int | None = None
    unrouted: int | None = None


class KafkaLagCollector(Collector):
    """Serves lag, DLQ size and unrouted counts measured by a background thread."""

    def __init__(
        self,
        admin_config: Mapping[str, str | int | float | bool],
        groups: Sequence[WatchedGroup],
        *,
        dead_letter_topic: str | None = None,
        unrouted: WatchedGroup | None = None,
        unrouted_after_seconds: float = 60.0,
        refresh_seconds: float = 5.0,
    ) -> None:
        self._admin = clients.admin(admin_config)
        self._config = dict(admin_config)
        self._group_readers: dict[str, Consumer] = {}
        self._tail_reader: Consumer | None = None
        self._groups = list(groups)
        self._dead_letter_topic = dead_letter_topic
        self._unrouted = unrouted
        self._unrouted_after = unrouted_after_seconds
        self._refresh = refresh_seconds
        self._snapshot = LagSnapshot()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-lag", daemon=True)

    def start(self) -> KafkaLagCollector:
        """Start measuring in the background; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop measuring."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._snapshot = self.measure()
            except (KafkaException, RuntimeError, ValueError) as error:
                log.warning("could not measure consumer lag: %s", error)
            self._stop.wait(self._refresh)
        for consumer in self._group_readers.values():
            consumer.close()
        if self._tail_reader is not None:
            self._tail_reader.close()

    def measure(self) -> LagSnapshot:
        """Read the offsets now (blocking, a few broker round trips)."""
        snapshot = LagSnapshot()
        topics = {t for g in self._groups for t in g.topics}
        if self._unrouted:
            topics |= set(self._unrouted.topics)
        if self._dead_letter_topic:
            topics.add(self._dead_letter_topic)
        partitions = self._partitions(topics)
        start = self._offsets(partitions, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        end = self._offsets(partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        committed_by_group: dict[str, dict[tuple[str, int], int]] = {}
        for watched in self._groups:
            own = [tp for tp in partitions if tp.topic in watched.topics]
            committed = self._committed(watched.group, own)
            committed_by_group[watched.group] = committed
            for tp in own:
                position = _position(committed, start, tp)
                snapshot.lag[(watched.group, tp.topic, tp.partition)] = max(
                    0, end[_k(tp)] - position
                )
        if self._dead_letter_topic:
            snapshot.dead_letters = sum(
                end[_k(tp)] - start[_k(tp)]
                for tp in partitions
                if tp.topic == self._dead_letter_topic
            )
        if self._unrouted:
            snapshot.unrouted = self._count_unrouted(partitions, start, end, committed_by_group)
        return snapshot

    def _count_unrouted(
        self,
        partitions: Sequence[TopicPartition],
        start: Mapping[tuple[str, int], int],
        end: Mapping[tuple[str, int], int],
        committed_by_group: Mapping[str, Mapping[tuple[str, int], int]],
    ) -> int:
        assert self._unrouted is not None
        own = [tp for tp in partitions if tp.topic in self._unrouted.topics]
        committed = committed_by_group.get(self._unrouted.group)
        if committed is None:
            committed = self._committed(self._unrouted.group, own)
        cutoff_ms = int((time.time() - self._unrouted_after) * 1000)
        # the first offset written at or after the cutoff: everything before it is older
        at_cutoff = self._offsets(own, OffsetSpec.for_timestamp(cutoff_ms))
        total = 0
        for tp in own:
            first_recent = at_cutoff[_k(tp)]
            if first_recent < 0:  # no record that recent: every record is older
                first_recent = end[_k(tp)]
            position = _position(committed, start, tp)
            unread = max(0, first_recent - position)
            if 0 < unread <= MARKER_PROBE_LIMIT and first_recent == end[_k(tp)]:
                unread = self._records_after(tp, position, unread)
            total += unread
        return total

    def _records_after(self, tp: TopicPartition, position: int, offsets: int) -> int:
        """How many of the last `offsets` offsets from `position` hold committed records.

        Stage C writes `messages.threaded` in transactions, so a partition ends with a commit
        marker (an offset no consumer ever gets) and the group's committed offset stays one
        short of the end. Reading the tail tells records from markers and aborted writes.
        """
        if self._tail_reader is None:
            # never subscribes nor commits: the group id is only librdkafka's requirement
            self._tail_reader = clients.consumer(
                self._config, "escalator-lag-tail-reader", {"enable.partition.eof": True}
            )
        reader = self._tail_reader
        reader.assign([TopicPartition(tp.topic, tp.partition, position)])
        found = 0
        deadline = time.monotonic() + _TIMEOUT_SECONDS
        try:
            while time.monotonic() < deadline and found < offsets:
                message = reader.poll(0.5)
                if message is None:
                    continue
                error = message.error()
                if error is None:
                    found += 1
                    continue
                if error.code() == KafkaError._PARTITION_EOF:
                    return found
                return offsets  # cannot tell: count them all
            return found if found == offsets else offsets
        finally:
            reader.unassign()

    def _partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        metadata = self._admin.list_topics(timeout=_TIMEOUT_SECONDS)
        found: list[TopicPartition] = []
        for topic in sorted(topics):
            described = metadata.topics.get(topic)
            if described is None or described.error is not None:
                continue  # not created yet
            found.extend(TopicPartition(topic, p) for p in sorted(described.partitions))
        return found

    def _offsets(
        self, partitions: Sequence[TopicPartition], spec: OffsetSpec
    ) -> dict[tuple[str, int], int]:
        if not partitions:
            return {}
        futures = self._admin.list_offsets(
            dict.fromkeys(partitions, spec), request_timeout=_TIMEOUT_SECONDS
        )
        return {_k(tp): future.result().offset for tp, future in futures.items()}

    def _committed(
        self, group: str, partitions: Sequence[TopicPartition]
    ) -> dict[tuple[str, int], int]:
        """The group's committed offsets, asked through a consumer of that group.

        Not the admin API's ListConsumerGroupOffsets: librdkafka (2.16 and before) dereferences
        a null consumer group when that call's OffsetFetch meets NOT_COORDINATOR or a loading
        coordinator (confluentinc/librdkafka#5040), which happens after every coordinator move
        and killed the whole process with SIGSEGV. A consumer that never subscribes has a
        group handle that retries those errors, and does not join the group.
        """
        if not partitions:
            return {}
        consumer = self._group_readers.get(group)
        if consumer is None:
            consumer = clients.consumer(self._config, group)
            self._group_readers[group] = consumer
        answer = consumer.committed(list(partitions), timeout=_TIMEOUT_SECONDS)
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in answer
            if tp.error is None and tp.offset >= 0
        }

    def collect(self) -> Iterable[Metric]:
        """The last measurement as Prometheus gauges."""
        snapshot = self._snapshot
        lag = GaugeMetricFamily(
            "escalator_consumer_lag_records",
            "Records between a consumer group's committed offset and the end of a partition.",
            labels=["group", "topic", "partition"],
        )
        for (group, topic, partition), value in sorted(snapshot.lag.items()):
            lag.add_metric([group, topic, str(partition)], value)
        yield lag
        if self._dead_letter_topic is not None:
            dlq = GaugeMetricFamily(
                "escalator_dead_letter_records",
                "Records held on the dead-letter topic (end offset minus start offset).",
            )
            if snapshot.dead_letters is not None:
                dlq.add_metric([], snapshot.dead_letters)
            yield dlq
        if self._unrouted is not None:
            unrouted = GaugeMetricFamily(
                "escalator_messages_unrouted",
                "Messages on the worker's input topics not consumed within the unrouted window.",
            )
            if snapshot.unrouted is not None:
                unrouted.add_metric([], snapshot.unrouted)
            yield unrouted


def _k(tp: TopicPartition) -> tuple[str, int]:
    return (tp.topic, tp.partition)


def _position(
    committed: Mapping[tuple[str, int], int],
    start: Mapping[tuple[str, int], int],
    tp: TopicPartition,
) -> int:
    """Where the group resumes: its committed offset, or the start when it has none."""
    offset = committed.get(_k(tp), -1)
    return max(offset, start[_k(tp)]) if offset >= 0 else start[_k(tp)]
