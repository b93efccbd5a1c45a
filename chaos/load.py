"""Steady inbound load through the ingress, paced, with every accepted message remembered.

A message counts as sent once the ingress answered 202 for it. A 503 (Kafka unavailable)
or a connection error is retried after the Retry-After the ingress gave, as a well-behaved
client does; a 4xx is a refusal and is reported (the load only sends valid messages).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

CHANNELS = ("email", "chat", "webform")
TEXTS = (
    "Where is my order? It has been a week.",
    "I was charged twice, please refund the second payment.",
    "The app logs me out every few minutes.",
    "Can you send me the invoice for last month?",
    "Still waiting for an answer to my last message.",
    "How do I change the delivery address?",
)


@dataclass(frozen=True)
class Plan:
    """How much load: messages, distinct customers, messages per second, per request."""

    messages: int
    customers: int
    rate: float
    batch: int = 20


def traffic(run: str, plan: Plan, seed: int = 7) -> Iterator[dict[str, Any]]:
    """The inbound messages of one run, deterministic for a seed: customers write again."""
    rng = random.Random(seed)
    for seq in range(plan.messages):
        customer = rng.randrange(plan.customers)
        channel = CHANNELS[customer % len(CHANNELS)]
        sender = f"c{customer}@chaos.example" if channel == "email" else f"chaos-user-{customer}"
        yield {
            "channel": channel,
            "external_id": f"{run}-{seq}",
            "sender": sender,
            "text": rng.choice(TEXTS),
            "sent_at": datetime.now(UTC).isoformat(),
            **({"subject": "Help"} if channel == "email" else {}),
        }


@dataclass
class LoadReport:
    """What the ingress said to the load."""

    accepted: set[tuple[str, str]] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)
    unavailable: int = 0
    unavailable_with_retry_after: int = 0
    connection_errors: int = 0


class Load:
    """Posts a run's traffic to the ingress from a background thread until it is all sent."""

    def __init__(self, ingress_url: str, run: str, plan: Plan, concurrency: int = 8) -> None:
        self.report = LoadReport()
        self._url = f"{ingress_url}/v1/messages"
        self._plan = plan
        self._messages = traffic(run, plan)
        self._concurrency = concurrency
        self._lock = threading.Lock()
        self._ingress_url = ingress_url
        self._thread = threading.Thread(target=self._run, name="chaos-load", daemon=True)
        self.done = threading.Event()

    def set_ingress(self, ingress_url: str) -> None:
        """Send the rest to another ingress (after a restart on a new port)."""
        self._url = f"{ingress_url}/v1/messages"

    def start(self) -> None:
        """Begin sending."""
        self._thread.start()

    def wait(self, timeout: float) -> bool:
        """Wait until every message was accepted; False on timeout."""
        return self.done.wait(timeout)

    @property
    def sent(self) -> int:
        """Messages accepted so far."""
        with self._lock:
            return len(self.report.accepted)

    def _next_batch(self) -> list[dict[str, Any]]:
        with self._lock:
            batch: list[dict[str, Any]] = []
            for message in self._messages:
                batch.append(message)
                if len(batch) >= self._plan.batch:
                    break
            return batch

    def _run(self) -> None:
        asyncio.run(self._send_all())
        self.done.set()

    async def _send_all(self) -> None:
        started = time.monotonic()
        posted = [0]
        async with httpx.AsyncClient(timeout=30.0) as client:
            await asyncio.gather(
                *(self._sender(client, started, posted) for _ in range(self._concurrency))
            )

    async def _sender(self, client: httpx.AsyncClient, started: float, posted: list[int]) -> None:
        while batch := self._next_batch():
            posted[0] += len(batch)
            ahead = posted[0] / self._plan.rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
            await self._post_until_accepted(client, batch)

    async def _post_until_accepted(
        self, client: httpx.AsyncClient, batch: list[dict[str, Any]]
    ) -> None:
        while True:
            try:
                response = await client.post(self._url, json=batch)
            except httpx.HTTPError:
                self.report.connection_errors += 1
                await asyncio.sleep(1.0)
                continue
            if response.status_code == 202:
                with self._lock:
                    self.report.accepted.update((m["channel"], m["external_id"]) for m in batch)
                return
            if response.status_code == 503:
                self.report.unavailable += 1
                retry_after = response.headers.get("Retry-After")
                if retry_after:
                    self.report.unavailable_with_retry_after += 1
                await asyncio.sleep(float(retry_after or 1))
                continue
            self.report.refused.append(f"{response.status_code}: {response.text[:300]}")
            return
