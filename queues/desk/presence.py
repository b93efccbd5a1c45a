"""Presence expiry: an agent whose console or client went silent goes offline.

Signs of life are the agent's heartbeats (the console posts one every 30 s; an open
event stream counts too; API clients `POST /v1/me/heartbeat`) and their own presence
changes. Only the elected assigner applies `expired`, so two desks never disagree; what
it decides is published as an `AgentPresence` record like any other presence change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from queues.desk.directory import Agent, Presence
from schemas import AgentPresence

DEFAULT_PRESENCE_TIMEOUT = timedelta(seconds=90)
"""Silence after which an online or away agent goes offline."""

HEARTBEAT_SECONDS = 30
"""How often the console sends a heartbeat (a third of the default timeout)."""


def last_sign_of_life(agent: Agent) -> datetime:
    """The agent's latest heartbeat or presence change, whichever is later."""
    if agent.heartbeat_at is None:
        return agent.presence_at
    return max(agent.heartbeat_at, agent.presence_at)


@dataclass(frozen=True)
class Expiry:
    """An agent who has been silent for longer than the timeout."""

    agent: Agent
    silent_since: datetime

    def record(self, by: str, now: datetime, timeout: timedelta) -> AgentPresence:
        """The presence change that takes the agent offline, conditional on nothing newer."""
        seconds = int(timeout.total_seconds())
        return AgentPresence(
            presence_id=str(uuid.uuid4()),
            agent_id=self.agent.name,
            presence=Presence.OFFLINE,
            at=now,
            by=by,
            reason=f"no heartbeat from {self.agent.name} for {seconds}s "
            f"(last at {self.silent_since.isoformat()}): offline, cases back to their queues",
            expected_presence_id=self.agent.presence_id,
        )


def expired(agents: Iterable[Agent], now: datetime, timeout: timedelta) -> list[Expiry]:
    """The agents not offline whose last sign of life is at least `timeout` old."""
    found = []
    for agent in agents:
        if agent.presence is Presence.OFFLINE:
            continue
        since = last_sign_of_life(agent)
        if now - since >= timeout:
            found.append(Expiry(agent, since))
    return found
