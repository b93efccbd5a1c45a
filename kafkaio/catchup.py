"""End offsets to catch up to: how a bounded replay knows it has read everything.

Measured once, at the start: records written later are left for the next run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition

from kafkaio.watermarks import watermarks


@dataclass
class EndOffsets:
    """Per partition, the offset to reach, and the next offset the consumer will read."""

    ends: dict[int, int]
    positions: dict[int, int] = field(default_factory=dict)

    @classmethod
    def measure(cls, consumer: Consumer, topic: str, timeout_seconds: float) -> EndOffsets:
        """The topic's high watermarks now, and where the consumer's group already stands.

        A topic that does not exist yet has nothing to catch up to.
        """
        metadata = consumer.list_topics(topic, timeout=timeout_seconds)
        topic_metadata = metadata.topics.get(topic)
        if topic_metadata is None or topic_metadata.error is not None:
            return cls(ends={})
        ends: dict[int, int] = {}
        positions: dict[int, int] = {}
        for partition in sorted(topic_metadata.partitions):
            low, high = watermarks(consumer, topic, partition, timeout_seconds)
            ends[partition] = high
            positions[partition] = low
        committed = consumer.committed(
            [TopicPartition(topic, partition) for partition in ends], timeout=timeout_seconds
        )
        for topic_partition in committed:
            if topic_partition.offset >= 0:
                positions[topic_partition.partition] = max(
                    positions[topic_partition.partition], topic_partition.offset
                )
        return cls(ends=ends, positions=positions)

    def advance(self, partition: int, next_offset: int) -> None:
        """Note that the consumer will next read `next_offset` of `partition`."""
        self.positions[partition] = max(self.positions.get(partition, 0), next_offset)

    def behind(self) -> dict[int, int]:
        """Partitions not yet at their end, with how many offsets remain."""
        return {
            partition: end - self.positions.get(partition, 0)
            for partition, end in self.ends.items()
            if self.positions.get(partition, 0) < end
        }

    def reached(self) -> bool:
        """Whether every partition is at (or past) its end offset."""
        return not self.behind()
