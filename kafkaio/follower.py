"""Follow a whole compacted topic without a consumer group: to its end once, then live.

The rules and identity watchers both need every record of their topic in every worker,
so each reads all partitions from the beginning itself instead of sharing a group.
A record the watcher cannot take (it raises) is handed to `on_poison` (a dead letter) and
the follower goes on: one bad record neither stops a worker from starting nor ends the
following.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, Message, TopicPartition

from kafkaio.clients import consumer
from kafkaio.record import ConsumedRecord

log = logging.getLogger(__name__)

Accept = Callable[[bytes], bool]
"""Takes one record's value; True when it was applied; raises when it cannot be taken."""

OnPoison = Callable[[ConsumedRecord, Exception], None]
"""Called with a record `Accept` raised on, and the error (it writes the dead letter)."""


class TopicFollower:
    """Reads a topic to its end with `read_to_end`, then follows it in a background thread."""

    def __init__(
        self,
        connection: Mapping[str, str | int | float | bool],
        topic: str,
        name: str,
        on_poison: OnPoison | None = None,
    ) -> None:
        self.topic = topic
        self._consumer = consumer(
            connection, f"escalator-{name}-unused", {"enable.partition.eof": True}
        )
        self._stop = threading.Event()
        self._name = name
        self._on_poison = on_poison
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
            if message.value() is not None and self._take(accept, message):
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
            if message.value() is not None:
                self._take(accept, message)

    def _take(self, accept: Accept, message: Message[Any, Any]) -> bool:
        """Apply one record; one that raises is logged, dead-lettered and skipped."""
        value: bytes = message.value()  # type: ignore[assignment]
        try:
            return accept(value)
        except MemoryError:
            raise
        except Exception as error:  # the record's content: set it aside, go on
            record = raw_record(message)
            log.error(
                "%s: record %s[%d]@%d cannot be taken, skipped: %s",
                self._name,
                record.topic,
                record.partition,
                record.offset,
                error,
            )
            if self._on_poison is not None:
                self._on_poison(record, error)
            return False


def raw_record(message: Message[Any, Any]) -> ConsumedRecord:
    """A confluent-kafka message as a plain consumed record."""
    _kind, millis = message.timestamp()
    return ConsumedRecord(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        timestamp=datetime.fromtimestamp(max(millis, 0) / 1000, UTC),
    )
