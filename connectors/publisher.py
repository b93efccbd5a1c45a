"""A confluent-kafka producer wrapper that lets asyncio code await the broker's acknowledgement.

The ingress answers 202 only after `publish` returns, i.e. after every record of the
request was acknowledged by all in-sync replicas (`acks=all`, idempotent producer).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

log = logging.getLogger(__name__)

PRODUCER_DEFAULTS: dict[str, str | int | bool] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 2,
    "compression.type": "lz4",
    # The Java client's partitioner, so records keyed alike land alike from every client.
    "partitioner": "murmur2_random",
}


if TYPE_CHECKING:
    DeliveryCallback = Callable[[KafkaError | None, Message[Any, Any]], None]


class PublishError(Exception):
    """The broker did not acknowledge a record; nothing may be reported as accepted."""


class RecordLike(Protocol):
    """Anything with a topic, key, value and headers can be published."""

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


@dataclass(frozen=True)
class OutboundRecord:
    """One record to write: topic, key and value bytes, optional headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()
    partition: int | None = None


class KafkaPublisher:
    """Produces records and resolves asyncio futures when the broker acknowledges them.

    A background thread serves librdkafka's delivery callbacks, so the event loop is
    never blocked by `poll()`.
    """

    def __init__(
        self,
        connection: Mapping[str, str | int | float | bool],
        delivery_timeout_seconds: float = 5.0,
        extra: Mapping[str, str | int | bool] | None = None,
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
        self._poller = threading.Thread(target=self._poll_forever, name="kafka-poll", daemon=True)
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
        """Write every record and wait until all are acknowledged; raise PublishError if not."""
        producer = self._producer
        if producer is None:
            raise PublishError("the publisher is closed")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        for record in records:
            future: asyncio.Future[None] = loop.create_future()
            futures.append(future)
            try:
                producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers) or None,
                    on_delivery=_resolver(loop, future),
                    # -1 is librdkafka's "unassigned": the partitioner decides from the key
                    partition=-1 if record.partition is None else record.partition,
                )
            except (BufferError, KafkaException) as exc:
                future.set_exception(PublishError(f"could not enqueue record: {exc}"))
        results = await asyncio.gather(*futures, return_exceptions=True)
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            raise PublishError(str(failures[0]))
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


def _resolver(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> DeliveryCallback:
    def on_delivery(error: KafkaError | None, _message: Message[Any, Any]) -> None:
        if error is None:
            loop.call_soon_threadsafe(_settle, future, None)
        else:
            loop.call_soon_threadsafe(_settle, future, PublishError(f"not written: {error.str()}"))

    return on_delivery


def _settle(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
