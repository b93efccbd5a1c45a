"""The case store projection: consumes `cases.events` into the database.

Each batch (up to `batch_size` records or `batch_timeout_seconds`) is applied in one
database transaction, and the Kafka offsets are committed only after that transaction
commits. A crash between the two redelivers the batch, which the store skips event by
event (it is idempotent on event id), so nothing is lost or applied twice. Events of a
case share a partition, so they are applied in order.

The commit after each batch is sent without waiting for the broker's answer (a
synchronous one was a fifth of a catch-up's time); the offsets of the batches in the
database are committed again and waited for when partitions are revoked, when a catch-up
ends and when the projection closes. A commit lost in between (a crash) only redelivers
batches the store skips.

Construct it in the composition root with plain parameters::

    projection = Projection(
        kafka_config=kafka_settings.librdkafka(),
        topic=kafka_settings.topics.case_events,
        session_factory=make_session_factory(make_engine(settings.effective_database_url)),
        metrics=ProjectionMetrics(),  # the default registry, served on /metrics
    )
    projection.run_until_stopped()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from kafkaio import clients
from kafkaio.catchup import EndOffsets
from queues.apply import Applied, EventApplier, Outcome, SourceRecord
from queues.effort import EffortPolicy
from queues.metrics import ErrorReason, ProjectionMetrics
from queues.writer import BatchResult, BatchWriter, TransientDatabaseError
from schemas import DeadLetter

log = logging.getLogger(__name__)

DeadLetterSink = Callable[[Sequence[tuple[bytes | None, DeadLetter]]], None]
"""Writes (key, letter) pairs to the dead-letter topic and returns once they are acknowledged."""

DEFAULT_GROUP_ID = "escalator-projection"
"""The consumer group of the long-running projection."""

_FILL_SECONDS = 0.02
"""How long a batch that has its first record waits for more."""
_METADATA_TIMEOUT_SECONDS = 10.0
_METADATA_RETRY_SECONDS = 0.5


class Projection:
    """Consumes case events into the case store, committing offsets after the database.

    `run_until_stopped` serves forever (until `stop`, which a signal handler may call);
    `catch_up` processes what the topic held when it was called, then returns.
    """

    def __init__(
        self,
        *,
        kafka_config: Mapping[str, Any],
        topic: str,
        session_factory: sessionmaker[Session],
        group_id: str = DEFAULT_GROUP_ID,
        metrics: ProjectionMetrics | None = None,
        batch_size: int = 500,
        batch_timeout_seconds: float = 0.5,
        retry_backoff_seconds: float = 1.0,
        dead_letters: DeadLetterSink | None = None,
        max_record_bytes: int = 900_000,
        effort: EffortPolicy | None = None,
    ) -> None:
        """Configure the projection; nothing connects until it first runs.

        `kafka_config` holds the connection settings (librdkafka keys); the projection
        adds its own consumer settings. Without `metrics`, a private registry is used.
        Records it cannot apply go to `dead_letters` (written before the offsets are
        committed), each as a `DeadLetter` of stage `projection` under `max_record_bytes`.
        `effort` sets the repeat-contact window of the customer-effort figures.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.topic = topic
        self.group_id = group_id
        self.metrics = metrics or ProjectionMetrics(CollectorRegistry())
        self._consumer_config: dict[str, Any] = {
            **kafka_config,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "on_commit": self._on_commit,
        }
        self._writer = BatchWriter(session_factory, self.metrics, EventApplier(effort))
        self._batch_size = batch_size
        self._batch_timeout = batch_timeout_seconds
        self._retry_backoff = retry_backoff_seconds
        self._stopping = threading.Event()
        self._consumer: Consumer | None = None
        self._warned_missing_topic = False
        self.assigned: frozenset[int] = frozenset()
        """Partitions of the topic this projection holds now (for readiness checks)."""
        self.totals = BatchResult()
        """Outcomes of every record this projection has handled, across batches."""
        self._in_store: dict[int, int] = {}
        """Next offset per partition of the batches in the database, to commit and wait for."""
        self._dead_letters = dead_letters
        self._max_record_bytes = max_record_bytes
        self._batch_started: float | None = None
        self.metrics.stalled.set_function(self.stalled_seconds)

    def stalled_seconds(self) -> float:
        """How long the batch in progress has been at it (0 when between batches).

        A batch in progress holds records the projection read: while the database is away
        it retries the batch, and this grows.
        """
        started = self._batch_started
        return 0.0 if started is None else time.monotonic() - started

    def stop(self) -> None:
        """Ask the projection to stop after the current batch. Safe from signal handlers."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Whether `stop` was called."""
        return self._stopping.is_set()

    def run_until_stopped(self) -> None:
        """Consume and apply batches until `stop` is called, then leave the group."""
        log.info("projection of %s (group %s) running", self.topic, self.group_id)
        try:
            while not self._stopping.is_set():
                records = self._poll(None)
                if records:
                    self._process(records, deadline=None)
        finally:
            self.close()

    def catch_up(self, timeout_seconds: float = 60.0) -> int:
        """Apply everything up to the topic's end offsets as seen now; return records read.

        Assumes this consumer gets every partition (a group of its own, as in tests and
        rebuilds). Raises `TimeoutError` if the end is not reached within the timeout.
        """
        deadline = time.monotonic() + timeout_seconds
        target = self._measure_end_offsets(deadline)
        handled = 0
        while not target.reached() and not self._stopping.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"projection of {self.topic} not caught up after {timeout_seconds}s; "
                    f"partitions still behind: {target.behind()}"
                )
            records = self._poll(target)
            if records:
                self._process(records, deadline)
                handled += len(records)
                for record in records:
                    if record.partition is not None and record.offset is not None:
                        target.advance(record.partition, record.offset + 1)
        self._commit_and_wait()
        return handled

    def _measure_end_offsets(self, deadline: float) -> EndOffsets:
        """The end offsets to reach, retried while the broker or the group coordinator blips."""
        consumer = self._ensure_consumer()
        while True:
            try:
                return EndOffsets.measure(consumer, self.topic, _METADATA_TIMEOUT_SECONDS)
            except KafkaException as error:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"cannot read the end offsets of {self.topic}") from error
                log.warning("reading the end offsets of %s failed, retrying: %s", self.topic, error)
                self._stopping.wait(_METADATA_RETRY_SECONDS)

    def close(self) -> None:
        """Leave the consumer group and release the consumer. Idempotent."""
        if self._consumer is not None:
            self._commit_and_wait()
            consumer, self._consumer = self._consumer, None
            consumer.close()

    def __enter__(self) -> Projection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _ensure_consumer(self) -> Consumer:
        if self._consumer is None:
            consumer = clients.consumer(self._consumer_config, self.group_id)
            consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
            self._consumer = consumer
        return self._consumer

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned = self.assigned | {tp.partition for tp in partitions}

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {tp.partition for tp in partitions}
        self._commit_and_wait(revoked)  # while the partitions are still ours
        self.assigned = self.assigned - revoked

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The broker's answer to a commit sent without waiting (served by `poll`)."""
        failed = error or next((tp.error for tp in partitions if tp.error is not None), None)
        if failed is not None:
            # The database holds the batches; redelivery will be skipped as duplicates.
            self.metrics.errors.labels(ErrorReason.OFFSET_COMMIT.value).inc()
            log.warning("offset commit failed after the database commit: %s", failed)

    def _poll(self, target: EndOffsets | None) -> list[SourceRecord]:
        """One batch of records; end-of-partition markers advance `target`."""
        consumer = self._ensure_consumer()
        # Wait (up to the timeout) for a first record, then only briefly for the batch to
        # fill: a lone event (an agent's claim) is applied within milliseconds instead of
        # after the whole timeout, while under load the batch still fills at once.
        first = consumer.poll(self._batch_timeout)
        if first is None:
            return []
        rest = (
            consumer.consume(num_messages=self._batch_size - 1, timeout=_FILL_SECONDS)
            if self._batch_size > 1
            else []
        )
        messages = [first, *rest]
        records: list[SourceRecord] = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(_source_record(message))
            elif error.code() == KafkaError._PARTITION_EOF:
                partition, offset = message.partition(), message.offset()
                if target is not None and partition is not None and offset is not None:
                    target.advance(partition, offset)
            else:
                self._on_consumer_error(error)
        return records

    def _on_consumer_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            # Normal before the worker has created the topic: wait for it quietly.
            if not self._warned_missing_topic:
                log.warning("topic %s does not exist yet; waiting for it", self.topic)
                self._warned_missing_topic = True
            return
        self.metrics.errors.labels(ErrorReason.KAFKA.value).inc()
        if error.fatal():
            raise KafkaException(error)
        log.warning("consumer error on %s: %s", self.topic, error)

    def _process(self, records: Sequence[SourceRecord], deadline: float | None = None) -> None:
        """Apply a batch (retrying transient database errors), then commit its offsets.

        Retries go on until `stop` or, when given, the monotonic `deadline`. Either way
        the offsets stay uncommitted, so the batch is redelivered next time.
        """
        self._batch_started = time.monotonic()
        try:
            self._apply_and_commit(records, deadline)
        finally:
            self._batch_started = None

    def _apply_and_commit(self, records: Sequence[SourceRecord], deadline: float | None) -> None:
        while True:
            try:
                result = self._writer.write(records)
                break
            except TransientDatabaseError as error:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"database unavailable: {error}") from error
                log.error("database unavailable, retrying the batch: %s", error)
                if self._stopping.wait(self._retry_backoff):
                    return
        self.totals.outcomes.update(result.outcomes)
        if result.outcomes[Outcome.MALFORMED]:
            log.warning("batch had %d malformed records", result.outcomes[Outcome.MALFORMED])
        if result.refused and self._dead_letters is not None:
            self._dead_letters([self._letter(record, why) for record, why in result.refused])
        self._commit(records)

    def _letter(self, record: SourceRecord, why: Applied) -> tuple[bytes | None, DeadLetter]:
        """The dead letter of a record the store did not take as it should have."""
        millis = record.timestamp_ms if record.timestamp_ms is not None else 0
        letter = DeadLetter.of(
            stage="projection",
            reason=why.outcome.value,
            detail=why.detail or f"{why.outcome.value} ({why.event_type or 'no event type'})",
            topic=self.topic,
            partition=-1 if record.partition is None else record.partition,
            offset=-1 if record.offset is None else record.offset,
            key=record.key,
            value=record.value,
            at=datetime.fromtimestamp(max(millis, 0) / 1000, UTC),
            max_bytes=self._max_record_bytes,
        )
        self.metrics.dead_letters.labels(letter.reason).inc()
        return (record.key if letter.original_key_b64 is not None else None), letter

    def _commit(self, records: Sequence[SourceRecord]) -> None:
        next_offsets: dict[int, int] = {}
        for record in records:
            if record.partition is None or record.offset is None:
                continue
            next_offsets[record.partition] = max(
                next_offsets.get(record.partition, 0), record.offset + 1
            )
        if not next_offsets or self._consumer is None:
            return
        for partition, offset in next_offsets.items():
            self._in_store[partition] = max(self._in_store.get(partition, 0), offset)
        self._send_offsets(sorted(next_offsets.items()), wait=False)

    def _commit_and_wait(self, partitions: Collection[int] | None = None) -> None:
        """Commit the offsets of the batches in the database (of `partitions`, default all)
        and wait for the broker's answer."""
        chosen = sorted(
            partition
            for partition in self._in_store
            if partitions is None or partition in partitions
        )
        if not chosen or self._consumer is None:
            return
        self._send_offsets([(p, self._in_store.pop(p)) for p in chosen], wait=True)

    def _send_offsets(self, offsets: Sequence[tuple[int, int]], *, wait: bool) -> None:
        """Commit these (partition, next offset) pairs, waiting for the answer or not."""
        consumer = self._consumer
        if consumer is None:
            return
        committed = [TopicPartition(self.topic, p, offset) for p, offset in offsets]
        try:
            if wait:
                consumer.commit(offsets=committed, asynchronous=False)
            else:
                consumer.commit(offsets=committed, asynchronous=True)
        except KafkaException as error:
            # The database already holds the batches; redelivery will be skipped as duplicates.
            self.metrics.errors.labels(ErrorReason.OFFSET_COMMIT.value).inc()
            log.warning("offset commit failed after the database commit: %s", error)


def _source_record(message: Message) -> SourceRecord:
    return SourceRecord(
        value=message.value(),
        partition=message.partition(),
        offset=message.offset(),
        key=message.key(),
        timestamp_ms=message.timestamp()[1],
    )
