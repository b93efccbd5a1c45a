"""faust's aiokafka transport, with the worker's consumer reading committed records only and
a configurable fetch wait (faust hard-codes 1,500 ms).

Read committed: stage C writes its outputs (events, queue records, messages moved to another
case on `messages.threaded`) in one transaction with the case states they came from (see
`ChangelogState.save`). A transaction that a crash left open is aborted by the partition's
next owner; a consumer reading uncommitted records would process its moved messages anyway.
faust reads committed records only when it runs its own transactions, which the worker does
not use, so the isolation is set here.

Fetch wait: a consumer's fetch request waits up to `fetch.max.wait.ms` for data. Apache
Kafka answers as soon as records arrive, so the wait costs nothing there; the embedded Tansu
broker of `escalator demo` holds every fetch for its whole wait, so each of the worker's
three hops waited 1.5 s. `escalator demo` sets a short wait
(`ESCALATOR_FAUST_FETCH_MAX_WAIT_MS`).

Offsets for the stall check: `consumer_offsets` reads, without waiting, what the consumer
knows of each partition it holds (see `streams.progress`).
"""

from __future__ import annotations

from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.progress import PartitionOffsets, TopicPartition

__all__ = ["consumer_offsets", "use_worker_consumer"]


def use_worker_consumer(app: faust.App, fetch_max_wait_ms: int | None = None) -> None:
    """Make the worker's consumer read committed records only, and wait at most this long
    per fetch when given (call before anything creates the transport)."""

    class WorkerConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # both read by AIOKafkaConsumer.start() when it builds its fetcher
            consumer._isolation_level = "read_committed"
            if fetch_max_wait_ms is not None:
                consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class WorkerConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return WorkerConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class WorkerTransport(faust_aiokafka.Transport):
        Consumer = WorkerConsumer

    app.transport = WorkerTransport(app.conf.broker_consumer, app)


def consumer_offsets(app: faust.App) -> dict[TopicPartition, PartitionOffsets]:
    """The high watermark, fetch position and last delivered offset of each partition the
    worker's consumer holds, as its last fetches left them (never waits on the broker).

    Raises while the consumer is not started.
    """
    consumer = cast(faust_aiokafka.Consumer, app.consumer)  # use_worker_consumer's
    # faust's aiokafka driver keeps the aiokafka consumer on its consumer thread
    subscription = consumer._thread._ensure_consumer()._subscription.subscription
    assignment = subscription.assignment if subscription is not None else None
    delivered = consumer._read_offset  # a defaultdict: `get` adds nothing
    found: dict[TopicPartition, PartitionOffsets] = {}
    for tp in consumer.assignment():
        state = assignment.state_value(tp) if assignment is not None else None
        position = state.position if state is not None and state.has_valid_position else None
        found[tp.topic, tp.partition] = PartitionOffsets(
            consumer.highwater(tp), position, delivered.get(tp)
        )
    return found
