"""The ingress's /readyz asks Kafka from a thread: a slow broker never stalls other requests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import httpx

from connectors.http_ingress import create_app
from connectors.ingress_auth import IngressAuth
from connectors.publisher import OutboundRecord
from schemas import Topics


class SlowBroker:
    """A publisher whose metadata request hangs until the test lets it answer."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.answer = threading.Event()
        self.finished = threading.Event()

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        raise AssertionError("nothing is published here")

    def check_connection(self, timeout_seconds: float = 2.0) -> bool:
        self.asked.set()
        answered = self.answer.wait(10)
        self.finished.set()
        return answered

    def close(self, timeout_seconds: float = 10.0) -> None:
        self.answer.set()


async def test_readiness_waiting_on_kafka_does_not_block_the_event_loop() -> None:
    broker = SlowBroker()
    app = create_app(broker, Topics(), auth=IngressAuth.without_keys())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as http:
        readiness = asyncio.create_task(http.get("/readyz"))
        while not broker.asked.is_set():
            await asyncio.sleep(0.01)
        # the metadata request is still hanging: the loop must still serve other requests
        alive = await asyncio.wait_for(http.get("/healthz"), timeout=20)
        answered_while_waiting = not broker.finished.is_set()
        broker.answer.set()
        ready = await readiness
    assert alive.status_code == 200
    assert answered_while_waiting, "/healthz waited for /readyz's metadata request"
    assert ready.status_code == 200
