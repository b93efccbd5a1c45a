"""Where stage C starts on newly assigned partitions: the group's committed offsets and ends.

Read from Kafka during the rebalance (blocking; run it in an executor), before stage C
processes anything on the partitions, so the SLA timer knows how much of each partition
is still to be replayed (see `streams.event_time`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confluent_kafka import TopicPartition

from kafkaio import clients
from kafkaio.watermarks import watermarks
from streams.event_time import Position

__all__ = ["source_positions"]


def source_positions(
    connection: Mapping[str, str | int | float | bool],
    group_id: str,
    partitions: Iterable[tuple[str, int]],
    timeout_seconds: float = 30.0,
) -> dict[tuple[str, int], Position]:
    """Per topic partition: the group's next offset to process and the partition's end.

    A partition the group never committed starts at its earliest offset, as the worker's
    consumer does (`auto.offset.reset` earliest). The consumer made here never joins the
    group: it only reads the group's committed offsets.
    """
    wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
    if not wanted:
        return {}
    consumer = clients.consumer(connection, group_id)
    try:
        committed = consumer.committed(wanted, timeout=timeout_seconds)
        found: dict[tuple[str, int], Position] = {}
        for tp in committed:
            low, high = watermarks(consumer, tp.topic, tp.partition, timeout_seconds)
            start = tp.offset if tp.offset is not None and tp.offset >= 0 else low
            found[(tp.topic, tp.partition)] = Position(max(start, low), high)
        return found
    finally:
        consumer.close()
