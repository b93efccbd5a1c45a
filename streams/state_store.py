"""Stage state kept in memory per partition, backed by a compacted changelog topic we write.

Why not faust Tables: on a restart, faust resumes stream partitions before it seeks them to
their committed offsets while tables recover. Records fetched in that window were dropped,
then taken for an offset gap and acknowledged unprocessed (see faust-streaming #312, #606).
Our kill -9 test lost messages that way. Restoring state here, inside the rebalance and
before any stream resumes, keeps faust on its plain path, where the seek happens first.

Each changelog partition holds the state of the input partition of the same number.
Records are `key → JSON state`, written by `save` only after the stage's outputs were
acknowledged; a restore reads the partition from the beginning to its high watermark.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from pydantic import BaseModel

from streams.output import OutputRecord, ReliableWriter

log = logging.getLogger(__name__)

StateT = TypeVar("StateT", bound=BaseModel)


class ChangelogState:
    """The state of one stage: `partition → key → JSON object`, restored on assignment."""

    def __init__(
        self,
        name: str,
        changelog_topic: str,
        source_topic: str,
        connection: Mapping[str, str | int | float | bool],
    ) -> None:
        self.name = name
        self.changelog_topic = changelog_topic
        self.source_topic = source_topic
        self._connection = dict(connection)
        self._partitions: dict[int, dict[bytes, Any]] = {}
        self._ready = threading.Condition()

    @property
    def partitions(self) -> frozenset[int]:
        """The input partitions whose state is held here."""
        return frozenset(self._partitions)

    def load(self, partition: int, key: bytes, model: type[StateT]) -> StateT | None:
        """The state stored under `key` for an input partition, if any."""
        raw = self._partitions[partition].get(key)
        return None if raw is None else model.model_validate(raw)

    def items(self, partition: int) -> list[tuple[bytes, Any]]:
        """The raw (JSON) states of one held partition."""
        return list(self._partitions.get(partition, {}).items())

    def wait_until_held(self, partitions: Iterable[int], timeout_seconds: float = 300.0) -> None:
        """Block until the state of these partitions is restored (faust does not wait)."""
        wanted = set(partitions)
        with self._ready:
            if not self._ready.wait_for(lambda: wanted <= set(self._partitions), timeout_seconds):
                raise TimeoutError(f"{self.name}: state of {sorted(wanted)} not restored")

    async def save(
        self, writer: ReliableWriter, dirty: Mapping[bytes, tuple[int, BaseModel]]
    ) -> None:
        """Write changed states to the changelog (acknowledged), then keep them in memory."""
        encoded = {
            key: (partition, state.model_dump(mode="json"))
            for key, (partition, state) in dirty.items()
        }
        await writer.write(
            [
                OutputRecord(
                    self.changelog_topic,
                    key,
                    json.dumps(value).encode("utf-8"),
                    partition=partition,
                )
                for key, (partition, value) in encoded.items()
            ]
        )
        for key, (partition, value) in encoded.items():
            self._partitions[partition][key] = value

    def assign(self, partitions: Iterable[int]) -> None:
        """Hold exactly these partitions: drop the others, restore the ones not held yet."""
        wanted = set(partitions)
        with self._ready:
            for gone in set(self._partitions) - wanted:
                del self._partitions[gone]
        missing = sorted(wanted - set(self._partitions))
        if missing:
            restored = self._restore(missing)
            with self._ready:
                self._partitions.update(restored)
                self._ready.notify_all()
            log.info(
                "%s: restored %d keys for partitions %s",
                self.name,
                sum(len(keys) for keys in restored.values()),
                missing,
            )

    def _restore(self, partitions: list[int]) -> dict[int, dict[bytes, Any]]:
        """Read changelog partitions from the start to their high watermarks (blocking)."""
        consumer = Consumer(
            {
                **self._connection,
                "group.id": f"{self.changelog_topic}.restore",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        restored: dict[int, dict[bytes, Any]] = {partition: {} for partition in partitions}
        try:
            ends = {
                partition: consumer.get_watermark_offsets(
                    TopicPartition(self.changelog_topic, partition), timeout=30
                )[1]
                for partition in partitions
            }
            pending = {partition for partition, end in ends.items() if end > 0}
            consumer.assign(
                [
                    TopicPartition(self.changelog_topic, partition, OFFSET_BEGINNING)
                    for partition in pending
                ]
            )
            while pending:
                message = consumer.poll(5.0)
                if message is None:
                    continue
                partition = message.partition() or 0
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"restoring {self.changelog_topic}: {error}")
                elif message.key() is not None:
                    key: bytes = message.key()  # type: ignore[assignment]
                    value = message.value()
                    if value is None:
                        restored[partition].pop(key, None)
                    else:
                        restored[partition][key] = json.loads(value)
                offset = message.offset()
                if offset is not None and offset + 1 >= ends[partition]:
                    pending.discard(partition)
        finally:
            consumer.close()
        return restored
