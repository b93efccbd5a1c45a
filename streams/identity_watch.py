"""Every worker follows the compacted `customers.identity` topic into its `IdentityDirectory`.

Like the rules watcher, each worker reads the whole topic itself (no consumer group): at
start-up to its end before stage A runs, then in a background thread, so operators' merges
and splits and other workers' links take effect within moments everywhere.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from pydantic import ValidationError

from schemas import IdentityRecord
from streams.identity import IdentityDirectory

log = logging.getLogger(__name__)


class IdentityWatcher:
    """Feeds a directory from the identity topic: `load_current` once, then `start`."""

    def __init__(
        self,
        connection: Mapping[str, str | int | float | bool],
        topic: str,
        directory: IdentityDirectory,
    ) -> None:
        self._topic = topic
        self.directory = directory
        self._consumer = Consumer(
            {
                **connection,
                "group.id": "escalator-identity-watch-unused",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="identity-watch", daemon=True)

    def load_current(self, timeout_seconds: float = 10.0) -> int:
        """Read the topic to its end (at start-up); returns how many records were applied."""
        metadata = self._consumer.list_topics(self._topic, timeout=timeout_seconds)
        partitions = list(metadata.topics[self._topic].partitions)
        self._consumer.assign(
            [TopicPartition(self._topic, partition, OFFSET_BEGINNING) for partition in partitions]
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
            applied += self._accept(message.value())
        return applied

    def start(self) -> None:
        """Follow new records in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop following and close the consumer."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            self._accept(message.value())

    def _accept(self, raw: bytes | None) -> int:
        if raw is None:
            return 0
        try:
            record = IdentityRecord.model_validate_json(raw)
        except ValidationError as exc:
            log.error("ignoring an invalid identity record on %s: %s", self._topic, exc)
            return 0
        self.directory.apply(record)
        return 1
