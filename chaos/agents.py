"""Agents acting on cases while the faults happen: claims, replies and resolutions.

Reads `cases.events`; for a share of the opened cases it schedules a claim, a reply and
sometimes a resolution a few seconds to a minute later, straddling the first-response
deadline, and writes them to `agent.actions` as the desk would (keyed by case id, each
with a stable `action_id`, so a resent action is harmless).
"""

from __future__ import annotations

import heapq
import json
import random
import threading
import time
from datetime import UTC, datetime

from confluent_kafka import Consumer, Producer

from kafkaio.producer import PRODUCER_DEFAULTS
from schemas import Topics


class Agents:
    """A background thread that plays the agents' part."""

    def __init__(self, bootstrap: str, topics: Topics, seed: int = 11) -> None:
        self._bootstrap = bootstrap
        self._topics = topics
        self._rng = random.Random(seed)
        self._schedule: list[tuple[float, str, str]] = []
        self._stop = threading.Event()
        self._accepting = threading.Event()
        self._accepting.set()
        self._thread = threading.Thread(target=self._run, name="chaos-agents", daemon=True)
        self.actions_sent = 0
        self.replies_sent = 0

    def start(self) -> None:
        """Begin acting."""
        self._thread.start()

    def stop_scheduling(self) -> None:
        """Schedule nothing new (what is scheduled is still sent)."""
        self._accepting.clear()

    def stop(self) -> None:
        """Stop at once (a second call does nothing)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def pending(self) -> int:
        """Actions scheduled and not yet sent."""
        return len(self._schedule)

    def _plan(self, case_id: str) -> None:
        now = time.monotonic()
        draw = self._rng.random()
        if draw < 0.6:
            heapq.heappush(self._schedule, (now + self._rng.uniform(1, 8), case_id, "claim"))
        if draw < 0.5:
            heapq.heappush(self._schedule, (now + self._rng.uniform(5, 60), case_id, "reply"))
        if draw < 0.2:
            heapq.heappush(self._schedule, (now + self._rng.uniform(60, 90), case_id, "resolve"))

    def _action(self, case_id: str, kind: str) -> bytes:
        action: dict[str, object] = {
            "action_id": f"chaos-{case_id}-{kind}",
            "case_id": case_id,
            "agent_id": "chaos-agent",
            "type": kind,
            "at": datetime.now(UTC).isoformat(),
        }
        if kind == "reply":
            action["text"] = f"We are on it ({case_id})."
        return json.dumps(action).encode()

    def _run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self._bootstrap,
                "group.id": f"{self._topics.prefix}chaos-agents",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
            }
        )
        consumer.subscribe([self._topics.case_events])
        # the product's producer settings: murmur2 puts an action on its case's partition
        producer = Producer({**PRODUCER_DEFAULTS, "bootstrap.servers": self._bootstrap})
        try:
            while not self._stop.is_set():
                for message in consumer.consume(500, timeout=0.2):
                    value = message.value()
                    if message.error() is not None or not value:
                        continue
                    event = json.loads(value)
                    if event.get("type") == "case.opened" and self._accepting.is_set():
                        self._plan(event["case_id"])
                now = time.monotonic()
                while self._schedule and self._schedule[0][0] <= now:
                    _, case_id, kind = heapq.heappop(self._schedule)
                    producer.produce(
                        self._topics.agent_actions,
                        key=case_id.encode(),
                        value=self._action(case_id, kind),
                    )
                    self.actions_sent += 1
                    self.replies_sent += kind == "reply"
                producer.poll(0)
        finally:
            producer.flush(60)
            consumer.close()
