"""Produce and wait, without an event loop: for commands, CLI tools and worker threads.

`send` returns once the broker acknowledged every record (`acks=all`), and raises
the same errors as the async producer: `RecordsRejectedError` naming the records that can
never be written, a plain `PublishError` for transient failures (including a timeout).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from kafkaio.failures import BatchFailures
from kafkaio.producer import PRODUCER_DEFAULTS, RecordLike

log = logging.getLogger(__name__)


class BlockingProducer:
    """A producer whose `send` blocks until its records are acknowledged or have failed."""

    def __init__(
        self,
        connection: Mapping[str, str | int | float | bool],
        extra: Mapping[str, str | int | bool] | None = None,
    ) -> None:
        self._producer = Producer({**PRODUCER_DEFAULTS, **connection, **(extra or {})})

    def wait_connected(self, topic: str | None = None, timeout_seconds: float = 10.0) -> bool:
        """Whether a broker answered a metadata request (for `topic`) within the timeout."""
        try:
            self._producer.list_topics(topic, timeout=timeout_seconds)
        except KafkaException:
            return False
        return True

    def send(self, records: Sequence[RecordLike], timeout_seconds: float = 30.0) -> None:
        """Write every record and wait until all are acknowledged (or raise, see the module)."""
        outcomes: dict[int, KafkaError | None] = {}
        failures = BatchFailures()
        for index, record in enumerate(records):
            try:
                self._produce(record, _Report(outcomes, index))
            except KafkaException as exc:
                outcomes[index] = None  # settled here: no delivery report will come
                error = exc.args[0] if exc.args else None
                failures.add(index, error, f"could not enqueue record: {exc}")
            except BufferError as exc:
                outcomes[index] = None
                failures.add(index, None, f"could not enqueue record: {exc}")
        undelivered = self._producer.flush(timeout_seconds)
        for index in range(len(records)):
            if index not in outcomes:
                failures.add(index, None, f"delivery timed out ({undelivered} undelivered)")
            elif (report := outcomes[index]) is not None:
                failures.add(index, report, f"not written: {report.str()}")
        failed = failures.error()
        if failed is not None:
            raise failed

    def enqueue(self, records: Sequence[RecordLike]) -> None:
        """Hand records to the producer without waiting (fire and forget; failures are logged)."""
        for record in records:
            self._produce(record, _log_failure)
        self._producer.poll(0)

    def close(self, timeout_seconds: float = 10.0) -> None:
        """Deliver what is queued, up to the timeout."""
        self._producer.flush(timeout_seconds)

    def _produce(self, record: RecordLike, on_delivery: Any) -> None:
        self._producer.produce(
            record.topic,
            value=record.value,
            key=record.key,
            headers=list(record.headers) or None,
            on_delivery=on_delivery,
            partition=-1 if record.partition is None else record.partition,
        )


class _Report:
    """The delivery report of one record of a `send`: stores its outcome by index."""

    def __init__(self, outcomes: dict[int, KafkaError | None], index: int) -> None:
        self._outcomes = outcomes
        self._index = index

    def __call__(self, error: KafkaError | None, _message: Message[Any, Any]) -> None:
        self._outcomes[self._index] = error


def _log_failure(error: KafkaError | None, message: Message[Any, Any]) -> None:
    if error is not None:
        log.warning("record for %s not written: %s", message.topic(), error)


def produce_and_wait(
    connection: Mapping[str, str | int | float | bool],
    records: Sequence[RecordLike],
    timeout_seconds: float = 30.0,
) -> None:
    """Write `records` with a producer of their own and wait for every acknowledgement."""
    BlockingProducer(connection).send(records, timeout_seconds)
