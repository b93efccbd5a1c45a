"""Follow a whole compacted topic without a consumer group: to its end once, then live.

The rules and identity watchers both need every record of their topic in every worker,
so each reads all partitions from the beginning itself instead of sharing a group.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from kafkaio.clients import consumer

Accept = Callable[[bytes], bool]
"""Takes one record's value; True when it was applied (invalid records are logged and skipped)."""


class TopicFollower:
    """Reads a topic to its end with `read_to_end`, then follows it in a background thread."""

    def __init__(
        self, connection: Mapping[str, str | int | float | bool], topic: str, name: str
    ) -> None:
        self.topic = topic
        self._consumer = consumer(
            connection, f"escalator-{name}-unused", {"enable.partition.eof": True}
        )
        self._stop = threading.Event()
        self._name = name
        self._thread: threading.Thread | None = None

    def read_to_end(self, accept: Accept, timeout_seconds: float = 10.0) -> int:
        """Read every partition from the beginning to its end; how many records were applied."""
        metadata = self._consumer.list_topics(self.topic, timeout=timeout_seconds)
        partitions = list(metadata.topics[self.topic].partitions)
        self._consumer.assign(
            [TopicPartition(self.topic, partition, OFFSET_BEGINNING) for partition in partitions]
        )
        at_end: set[int] = set()
        applied = 0
        while len(at_end) < len(partitions):
            message = self._consumer.poll(timeout_seconds)
            if message is None:
                break
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition() or 0)
                continue
            value = message.value()
            if value is not None and accept(value):
                applied += 1
        return applied

    def start(self, accept: Accept) -> None:
        """Hand each new record (tombstones skipped) to `accept` from a background thread."""
        self._thread = threading.Thread(
            target=self._run, args=(accept,), name=self._name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop following and close the consumer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._consumer.close()

    def _run(self, accept: Accept) -> None:
        while not self._stop.is_set():
            message = self._consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            value = message.value()
            if value is not None:
                accept(value)
