"""The agent presence contract on `agents.presence`: who is online, away or offline."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from schemas._common import Contract


class PresenceState(StrEnum):
    """Online agents get new cases, away agents keep theirs, offline agents give theirs back."""

    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class AgentPresence(Contract):
    """One presence change of one agent, keyed by `agent_id` on a compacted topic.

    The latest record per agent is the agent's presence; the desk's projection applies
    the records in log order, so `escalator db rebuild` restores presence from the topic.
    """

    presence_id: str = Field(
        min_length=1, max_length=128, description="Unique per change; the desk waits for it."
    )
    agent_id: str = Field(min_length=1, max_length=64)
    presence: PresenceState
    at: AwareDatetime
    by: str = Field(
        min_length=1,
        max_length=64,
        description="Who changed it: the agent, a lead, or `escalator` (heartbeat expiry).",
    )
    reason: str | None = Field(default=None, max_length=1000, description="Why, in words.")
    expected_presence_id: str | None = Field(
        default=None,
        max_length=128,
        description="Apply only if the agent's current presence is still this record's "
        "(the heartbeat expiry uses it, so it never undoes a change made meanwhile).",
    )
