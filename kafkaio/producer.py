"""The one async producer: asyncio code awaits the broker's acknowledgement of a batch.

`publish` returns only after every record of the batch was acknowledged by all in-sync
replicas (`acks=all`, idempotent producer). Records that can never be written (too large,
invalid topic name) are reported per index as `RecordsRejectedError`; anything else that
failed is a plain, transient `PublishError`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from kafkaio.errors import PublishError
from kafkaio.failures import BatchFailures

log = logging.getLogger(__name__)

PRODUCER_DEFAULTS: dict[str, str | int | bool] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 2,
    "compression.type": "lz4",
    # The Java client's partitioner, so records keyed alike land alike from every client.
    "partitioner": "murmur2_random",
}
"""Every producer of ours: durable (acks=all, idempotent), and murmur2 like Java clients."""


class RecordLike(Protocol):
    """Anything with a topic, key, value, headers and optional partition can be published."""

    @property
    def topic(self) -> str:
        """Target topic."""
        ...

    @property
    def key(self) -> bytes | None:
        """Record key (partitioned with murmur2, as Java clients do)."""
        ...

    @property
    def value(self) -> bytes:
        """Record value."""
        ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]:
        """Record headers."""
        ...

    @property
    def partition(self) -> int | None:
        """An explicit partition, or None for the key's partition."""
        ...


class AsyncProducer:
    """Produces records and resolves an asyncio future when the broker acknowledged them.

    A background thread serves librdkafka's delivery callbacks, so the event loop is
    never blocked by `poll()`.
    """

    def __init__(
        self,
        connection: Mapping[str, str | int | float | bool],
        delivery_timeout_seconds: float = 5.0,
        extra: Mapping[str, str | int | bool] | None = None,
        name: str = "kafka-poll",
    ) -> None:
        config: dict[str, Any] = {
            **PRODUCER_DEFAULTS,
            **connection,
            "message.timeout.ms": int(delivery_timeout_seconds * 1000),
            "error_cb": self._on_error,
        }
        config.update(extra or {})
        self._producer: Producer | None = Producer(config)
        self._all_brokers_down = threading.Event()
        self._running = True
        self._poller = threading.Thread(target=self._poll_forever, name=name, daemon=True)
        self._poller.start()

    @property
    def brokers_down(self) -> bool:
        """True after librdkafka reported that no broker is reachable, until one answers."""
        return self._all_brokers_down.is_set()

    def _on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._all_brokers_down.set()
        log.warning("kafka client error: %s", error)

    def _poll_forever(self) -> None:
        producer = self._producer
        while self._running and producer is not None:
            producer.poll(0.05)

    async def publish(self, records: Sequence[RecordLike]) -> None:
        """Write every record and wait until all are acknowledged.

        Raises `RecordsRejectedError` naming the index of each record that can never be
        written (the others were written, unless its `transient` is set too), and a plain
        `PublishError` when the failures were all transient.
        """
        producer = self._producer
        if producer is None:
            raise PublishError("the publisher is closed")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        batch = _Batch(loop, done, len(records))
        for index, record in enumerate(records):
            try:
                producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers) or None,
                    on_delivery=batch.callback(index),
                    # -1 is librdkafka's "unassigned": the partitioner decides from the key
                    partition=-1 if record.partition is None else record.partition,
                )
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                batch.settle(index, error, f"could not enqueue record: {exc}")
            except BufferError as exc:  # the local queue is full: transient
                batch.settle(index, None, f"could not enqueue record: {exc}")
        await done
        self._all_brokers_down.clear()

    def check_connection(self, timeout_seconds: float = 2.0) -> bool:
        """True when a broker answers a metadata request within the timeout."""
        if self._producer is None:
            return False
        try:
            self._producer.list_topics(timeout=timeout_seconds)
        except KafkaException:
            return False
        return True

    def close(self, timeout_seconds: float = 10.0) -> None:
        """Deliver what is queued (up to the timeout), stop the poll thread, free the client.

        Dropping the producer destroys the librdkafka handle, which otherwise keeps trying
        to reconnect to a broker that is gone for as long as the object lives.
        """
        if self._producer is None:
            return
        self._producer.flush(timeout_seconds)
        self._running = False
        self._poller.join(timeout=1.0)
        self._producer = None


class _Batch:
    """Counts a publish call's acknowledgements; settles its one future when all are in.

    Delivery callbacks come from librdkafka's poll (the poll thread, or `flush` at close),
    so the count is guarded by a lock and the future is settled on the event loop.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, done: asyncio.Future[None], count: int
    ) -> None:
        self._loop = loop
        self._done = done
        self._remaining = count
        self._failures = BatchFailures()
        self._lock = threading.Lock()
        if count == 0:
            done.set_result(None)

    def callback(self, index: int) -> Any:
        """librdkafka's delivery report callback for the batch's record number `index`."""

        def on_delivery(error: KafkaError | None, _message: Message[Any, Any]) -> None:
            self.settle(index, error, None if error is None else f"not written: {error.str()}")

        return on_delivery

    def settle(self, index: int, error: KafkaError | None, failure: str | None) -> None:
        """Record `index` is settled: written (`failure` None), rejected or failed."""
        with self._lock:
            if failure is not None:
                self._failures.add(index, error, failure)
            self._remaining -= 1
            if self._remaining:
                return
            outcome = self._failures.error()
        self._loop.call_soon_threadsafe(_settle, self._done, outcome)


def _settle(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
