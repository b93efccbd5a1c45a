"""The agent action contract on `agent.actions`: what agents do to cases."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field, model_validator

from schemas._case import CaseStatus
from schemas._common import Contract


class AgentActionType(StrEnum):
    """What an agent can do to a case."""

    CLAIM = "claim"
    RELEASE = "release"
    REPLY = "reply"
    NOTE = "note"
    STATUS = "status"
    TRANSFER = "transfer"
    RESOLVE = "resolve"
    REOPEN = "reopen"


class AgentAction(Contract):
    """One agent action, keyed by `case_id`. `action_id` makes redelivery harmless."""

    action_id: str = Field(min_length=1, max_length=128)
    case_id: str
    agent_id: str = Field(min_length=1)
    type: AgentActionType
    at: AwareDatetime
    text: str | None = None
    status: CaseStatus | None = None
    queue: str | None = None
    to_agent: str | None = None

    @model_validator(mode="after")
    def _fields_match_type(self) -> AgentAction:
        needs = {
            AgentActionType.REPLY: ("text", self.text),
            AgentActionType.NOTE: ("text", self.text),
            AgentActionType.STATUS: ("status", self.status),
        }
        if self.type in needs:
            field, value = needs[self.type]
            if not value:
                raise ValueError(f"a {self.type.value} action needs `{field}`")
        if self.type is AgentActionType.TRANSFER and not (self.queue or self.to_agent):
            raise ValueError("a transfer action needs `queue` or `to_agent`")
        return self
