"""Offset lookups that wait out a partition's leader election instead of failing on it.

A partition whose leadership is moving (a topic just created, a broker restarting or
lost) answers NOT_LEADER_FOR_PARTITION or LEADER_NOT_AVAILABLE for a moment, and
librdkafka's `get_watermark_offsets` and `offsets_for_times` return that error at once
rather than waiting for the new leader. Every blocking offset lookup goes through here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, TopicPartition

RETRY_PAUSE_SECONDS = 0.1
"""Between tries of a lookup the broker answered while leadership was moving."""

LEADERSHIP_MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)
"""Errors a lookup answers while a partition's leader is being elected or moved."""

T = TypeVar("T")


def watermarks(
    consumer: Any, topic: str, partition: int, timeout_seconds: float
) -> tuple[int, int]:
    """The partition's (low, high) watermark offsets, once its leader answers."""
    low, high = retrying(
        lambda: consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout_seconds
        ),
        timeout_seconds,
    )
    return int(low), int(high)


def offsets_for_times(
    consumer: Any, wanted: list[TopicPartition], timeout_seconds: float
) -> list[TopicPartition]:
    """`consumer.offsets_for_times(wanted)`, once the partitions' leaders answer."""
    return retrying(
        lambda: consumer.offsets_for_times(wanted, timeout=timeout_seconds), timeout_seconds
    )


def retrying(lookup: Callable[[], T], timeout_seconds: float) -> T:
    """`lookup()`, tried again while the broker says leadership is moving, until the timeout.

    Any other error, and the last one at the timeout, is raised as it came.
    """
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            return lookup()
        except KafkaException as error:
            kafka_error = error.args[0]
            moving = kafka_error.retriable() or kafka_error.code() in LEADERSHIP_MOVING
            if not moving or time.monotonic() >= deadline:
                raise
        time.sleep(RETRY_PAUSE_SECONDS)
