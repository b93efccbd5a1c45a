"""Fenced changelog writes: one Kafka transactional producer per changelog partition held.

Each partition's state is written under the transactional id `<prefix>.<partition>`. The
worker that is assigned a partition calls `init_transactions` with that id before it
restores the partition: Kafka bumps the id's epoch, aborts whatever transaction the
previous owner left open, and from then on refuses every write of the previous owner's
producer (it is fenced). A stalled old owner that wakes up and writes late therefore gets
an error instead of overwriting the new owner's state, and a restore (which reads only
committed records, librdkafka's default `read_committed`) never sees a fenced write.
A fenced worker stops (`FencedError`): it no longer owns what it was writing.

Why transactions rather than a generation number in a header: the changelog is compacted,
and compaction keeps a key's *last* record whatever its header says, so a zombie's late
record would outlive the new owner's; a fenced write never lands at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence

from confluent_kafka import KafkaError, KafkaException, Producer

from kafkaio.record import Record

__all__ = ["FencedError", "FencedWriter"]

log = logging.getLogger(__name__)

_FENCED_CODES = frozenset(
    code
    for code in (
        getattr(KafkaError, "_FENCED", None),
        getattr(KafkaError, "PRODUCER_FENCED", None),
        getattr(KafkaError, "INVALID_PRODUCER_EPOCH", None),
        getattr(KafkaError, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", None),
    )
    if code is not None
)


class FencedError(RuntimeError):
    """Another worker has taken this changelog partition: this one must stop writing it."""


class FencedWriter:
    """Writes changelog records partition by partition, each batch in one transaction."""

    def __init__(
        self,
        connection: Mapping[str, str | int | float | bool],
        transactional_prefix: str,
        timeout_seconds: float = 60.0,
    ) -> None:
        self._connection = dict(connection)
        self._prefix = transactional_prefix
        self._timeout = timeout_seconds
        self._producers: dict[int, Producer] = {}

    def transactional_id(self, partition: int) -> str:
        """The transactional id a partition's state is written under."""
        return f"{self._prefix}.{partition}"

    def open(self, partitions: Iterable[int]) -> None:
        """Take these partitions over (blocking): fences their previous writers.

        Call before restoring them, so the restore sees the previous owner's last
        transaction committed or aborted, never still open.
        """
        for partition in partitions:
            old = self._producers.pop(partition, None)
            if old is not None:
                old.flush(self._timeout)
            producer = Producer(
                {
                    **self._connection,
                    "transactional.id": self.transactional_id(partition),
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                }
            )
            producer.init_transactions(self._timeout)
            self._producers[partition] = producer

    def keep_only(self, partitions: Iterable[int]) -> None:
        """Let go of every partition but these (their new owners fence them anyway)."""
        held = set(partitions)
        for partition in set(self._producers) - held:
            self._producers.pop(partition).flush(self._timeout)

    @property
    def partitions(self) -> frozenset[int]:
        """The partitions this writer may write."""
        return frozenset(self._producers)

    async def write(self, records: Sequence[Record]) -> None:
        """Write the records, one transaction per partition, in parallel; raise FencedError."""
        by_partition: dict[int, list[Record]] = {}
        for record in records:
            by_partition.setdefault(record.partition or 0, []).append(record)
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(
                loop.run_in_executor(None, self._commit, partition, batch)
                for partition, batch in by_partition.items()
            )
        )

    def _commit(self, partition: int, records: list[Record]) -> None:
        """One partition's batch in one transaction, retried until it commits (blocking)."""
        producer = self._producers.get(partition)
        if producer is None:
            raise FencedError(f"changelog partition {partition} is not held by this worker")
        backoff = 0.2
        while True:
            try:
                self._transaction(producer, records)
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.fatal() or error.code() in _FENCED_CODES:
                    raise FencedError(
                        f"{self.transactional_id(partition)} was fenced by a newer owner: {error}"
                    ) from exc
                if error.txn_requires_abort():
                    producer.abort_transaction(self._timeout)
                elif not error.retriable():
                    raise
                log.warning("changelog transaction failed, retrying in %.1fs: %s", backoff, error)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _transaction(self, producer: Producer, records: list[Record]) -> None:
        producer.begin_transaction()
        for record in records:
            while True:
                try:
                    producer.produce(
                        record.topic,
                        key=record.key,
                        value=record.value,
                        headers=list(record.headers),
                        partition=record.partition if record.partition is not None else -1,
                    )
                    break
                except BufferError:
                    producer.poll(0.1)
        while True:
            try:
                producer.commit_transaction(self._timeout)
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if not error.retriable() or error.txn_requires_abort() or error.fatal():
                    raise
                time.sleep(0.1)  # a commit that timed out may be retried as it is
