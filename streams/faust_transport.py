"""faust's aiokafka transport with a configurable fetch wait (faust hard-codes 1,500 ms).

A consumer's fetch request waits up to `fetch.max.wait.ms` for data. Apache Kafka answers
as soon as records arrive, so the wait costs nothing there; the embedded Tansu broker of
`escalator demo` holds every fetch for its whole wait, so each of the worker's three hops
waited 1.5 s. `escalator demo` sets a short wait (`ESCALATOR_FAUST_FETCH_MAX_WAIT_MS`).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["use_fetch_wait"]


def use_fetch_wait(app: faust.App, fetch_max_wait_ms: int) -> None:
    """Make the worker's consumer wait at most this long per fetch (before it starts)."""

    class FetchWaitThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # read by AIOKafkaConsumer.start() when it builds its fetcher
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class FetchWaitConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return FetchWaitThread(self, loop=self.loop, beacon=self.beacon)

    class FetchWaitTransport(faust_aiokafka.Transport):
        Consumer = FetchWaitConsumer

    app.transport = FetchWaitTransport(app.conf.broker_consumer, app)
