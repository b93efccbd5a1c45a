"""Every desk write becomes an agent action on `agent.actions`; the stream decides it.

(Presence changes are records on `agents.presence` instead; see `record_presence`.)

The gateway publishes the action (keyed by case id, acknowledged by the broker) and then
waits, bounded, for the stream's verdict to reach the case store: stage C answers every
action with either `case.updated` (applied) or `action.rejected` (refused, with the
reason), both with ids derived from the action id. So the API can tell a caller "done",
"conflict: someone else owns it" or, when the verdict is late, "accepted, pending".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kafkaio import AsyncProducer, PublishError, Record
from queues.desk import metrics
from queues.desk.reads import DeskReads
from schemas import AgentAction, AgentPresence, CaseEventType
from schemas.ids import event_id_for

DEFAULT_OUTCOME_TIMEOUT_SECONDS = 10.0
_OUTCOME_POLL_SECONDS = 0.01
"""How often a waiting request reads the store for its verdict: one indexed lookup per 10 ms
while it waits (a claim's verdict comes in 50-100 ms), not a wait of up to 30 ms after it."""


class Verdict(StrEnum):
    """What became of an action."""

    APPLIED = "applied"
    REJECTED = "rejected"
    PENDING = "pending"
    """Published, but its outcome did not reach the store in time (it will be applied)."""


@dataclass(frozen=True)
class Outcome:
    """The stream's answer to one action."""

    verdict: Verdict
    action: AgentAction
    reason: str = ""
    code: str | None = None
    owner: str | None = None


__all__ = [
    "DEFAULT_OUTCOME_TIMEOUT_SECONDS",
    "ActionGateway",
    "Outcome",
    "PublishError",
    "Verdict",
]


class ActionGateway:
    """Publishes agent actions and waits for the stream's verdict in the store."""

    def __init__(
        self,
        *,
        producer_config: Mapping[str, Any],
        topic: str,
        reads: DeskReads,
        presence_topic: str | None = None,
        outcome_timeout_seconds: float = DEFAULT_OUTCOME_TIMEOUT_SECONDS,
        delivery_timeout_seconds: float = 15.0,
    ) -> None:
        self._topic = topic
        self._presence_topic = presence_topic
        self._reads = reads
        self._outcome_timeout = outcome_timeout_seconds
        self._producer = AsyncProducer(
            producer_config, delivery_timeout_seconds=delivery_timeout_seconds, name="desk-producer"
        )

    async def publish(self, action: AgentAction) -> None:
        """Publish one action and return once the broker acknowledged it."""
        await self._produce(self._topic, action.case_id, action.model_dump_json())

    async def record_presence(self, record: AgentPresence, recorded: Callable[[str], bool]) -> bool:
        """Publish a presence change; whether `recorded(presence_id)` held within the wait."""
        if self._presence_topic is None:
            raise PublishError("this desk has no presence topic configured")
        await self._produce(self._presence_topic, record.agent_id, record.model_dump_json())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._outcome_timeout
        while not await asyncio.to_thread(recorded, record.presence_id):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(_OUTCOME_POLL_SECONDS)
        return True

    async def _produce(self, topic: str, key: str, value: str) -> None:
        record = Record(topic=topic, key=key.encode("utf-8"), value=value.encode("utf-8"))
        await self._producer.publish([record])

    async def submit(self, action: AgentAction, *, wait: bool = True) -> Outcome:
        """Publish the action and wait (bounded) for the stream's verdict."""
        started = asyncio.get_running_loop().time()
        await self.publish(action)
        outcome = await self.verdict(action) if wait else Outcome(Verdict.PENDING, action)
        kind = action.type.value
        metrics.ACTIONS.labels(kind, outcome.verdict.value).inc()
        if outcome.verdict is not Verdict.PENDING:
            metrics.ACTION_SECONDS.labels(kind).observe(asyncio.get_running_loop().time() - started)
        return outcome

    async def verdict(self, action: AgentAction) -> Outcome:
        """Wait for the action's outcome event to reach the store."""
        applied = event_id_for(action.case_id, CaseEventType.CASE_UPDATED.value, action.action_id)
        rejected = event_id_for(
            action.case_id, CaseEventType.ACTION_REJECTED.value, action.action_id
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._outcome_timeout
        while True:
            found = await asyncio.to_thread(self._reads.outcome, [applied, rejected])
            if found is not None:
                if found.event_id == applied:
                    return Outcome(Verdict.APPLIED, action, reason=found.reason)
                payload = found.payload
                return Outcome(
                    Verdict.REJECTED,
                    action,
                    reason=found.reason,
                    code=str(payload.get("code") or "rejected"),
                    owner=payload.get("owner"),
                )
            if loop.time() >= deadline:
                return Outcome(Verdict.PENDING, action)
            await asyncio.sleep(_OUTCOME_POLL_SECONDS)

    def close(self) -> None:
        """Deliver what is in flight, then stop."""
        self._producer.close(10)
