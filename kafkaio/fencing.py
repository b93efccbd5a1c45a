"""Fenced changelog writes: one Kafka transactional producer per changelog partition held.

Each partition's state is written under the transactional id `<prefix>.<partition>`. The
worker that is assigned a partition calls `init_transactions` with that id before it
restores the partition: Kafka bumps the id's epoch, aborts whatever transaction the
previous owner left open, and from then on refuses every write of the previous owner's
producer (it is fenced). A stalled old owner that wakes up and writes late therefore gets
an error instead of overwriting the new owner's state, and a restore (which reads only
committed records, librdkafka's default `read_committed`) never sees a fenced write.
A fenced worker stops (`FencedError`): it no longer owns what it was writing.

A partition's transaction may carry other records besides its states: a stage writes the
records a batch caused together with the states they came from (`write_partition`), so a
crash leaves either both or neither, and readers that read committed records only (every
confluent-kafka consumer by default, and the worker's faust consumer) never see outputs of
a state that was lost. A record in it that can never be written (too large, an invalid
topic) aborts the transaction and is reported as `RecordsRejectedError`, so the caller can
write it another way instead of retrying for ever.

Why transactions rather than a generation number in a header: the changelog is compacted,
and compaction keeps a key's *last* record whatever its header says, so a zombie's late
record would outlive the new owner's; a fenced write never lands at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from kafkaio.errors import RecordsRejectedError
from kafkaio.failures import describe, is_permanent
from kafkaio.producer import PRODUCER_DEFAULTS
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
                    **PRODUCER_DEFAULTS,  # murmur2: outputs land where every other writer puts them
                    "transactional.id": self.transactional_id(partition),
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
        """Write changelog records, one transaction per partition, in parallel.

        Raises FencedError, or RecordsRejectedError when a record can never be written.
        """
        by_partition: dict[int, list[Record]] = {}
        for record in records:
            by_partition.setdefault(record.partition or 0, []).append(record)
        await asyncio.gather(
            *(self.write_partition(partition, batch) for partition, batch in by_partition.items())
        )

    async def write_partition(self, partition: int, records: Sequence[Record]) -> None:
        """Write these records (any topics) in one transaction of the partition's producer.

        Retried until it commits. Raises FencedError when a newer owner took the partition,
        RecordsRejectedError (indices into `records`) when some record can never be written:
        nothing of the transaction was committed then.
        """
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._commit, partition, list(records))

    def _commit(self, partition: int, records: list[Record]) -> None:
        """One partition's batch in one transaction, retried until it commits (blocking)."""
        producer = self._producers.get(partition)
        if producer is None:
            raise FencedError(f"changelog partition {partition} is not held by this worker")
        backoff = 0.2
        while True:
            rejected: dict[int, str] = {}
            try:
                self._transaction(producer, records, rejected)
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.fatal() or error.code() in _FENCED_CODES:
                    raise FencedError(
                        f"{self.transactional_id(partition)} was fenced by a newer owner: {error}"
                    ) from exc
                if error.txn_requires_abort() or rejected:
                    producer.abort_transaction(self._timeout)
                    if rejected:
                        raise RecordsRejectedError(rejected) from exc
                elif not error.retriable():
                    raise
                log.warning("changelog transaction failed, retrying in %.1fs: %s", backoff, error)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _transaction(
        self, producer: Producer, records: list[Record], rejected: dict[int, str]
    ) -> None:
        """Produce and commit; records refused for good are noted in `rejected` by index."""

        def delivered(index: int) -> Callable[[KafkaError | None, Any], None]:
            def report(error: KafkaError | None, _message: Any) -> None:
                if error is not None and is_permanent(error):
                    rejected[index] = describe(error)

            return report

        producer.begin_transaction()
        for index, record in enumerate(records):
            while True:
                try:
                    producer.produce(
                        record.topic,
                        key=record.key,
                        value=record.value,
                        headers=list(record.headers),
                        partition=record.partition if record.partition is not None else -1,
                        on_delivery=delivered(index),
                    )
                    break
                except BufferError:
                    producer.poll(0.1)
                except KafkaException as exc:  # refused on the spot (e.g. over the size limit)
                    error: KafkaError = exc.args[0]
                    if not is_permanent(error):
                        raise
                    rejected[index] = describe(error)
                    raise
        while True:
            try:
                producer.commit_transaction(self._timeout)
                return
            except KafkaException as exc:
                error = exc.args[0]
                producer.poll(0)  # run the delivery reports: which records were refused
                if not error.retriable() or error.txn_requires_abort() or error.fatal():
                    raise
                time.sleep(0.1)  # a commit that timed out may be retried as it is
