"""The agent action contract on `agent.actions`: what agents do to cases."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, WithJsonSchema, model_validator

from schemas._case import CaseStatus
from schemas._common import Contract, Priority
from schemas.limits import (
    MAX_ACTION_ID_LENGTH,
    MAX_AGENT_ID_LENGTH,
    MAX_REASON_LENGTH,
    MAX_TEXT_LENGTH,
    QUEUE_NAME_PATTERN,
    check_queue_name,
)

QueueName = Annotated[
    str,
    AfterValidator(check_queue_name),
    WithJsonSchema({"type": "string", "pattern": QUEUE_NAME_PATTERN}),
]
"""A queue name `Topics.queue` accepts, so the stream can always route a case there."""

MAX_CASE_ID_LENGTH = 64
"""Characters of a case id in an action (ids are `C-` and 10 characters; the store keeps 64)."""


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
    ASSIGN = "assign"
    """Escalator's assigner (or a lead) gives the case to `to_agent`, who must accept it."""
    ESCALATE = "escalate"
    """An agent escalates the case to `queue` and/or `priority`, saying why in `reason`."""
    ACKNOWLEDGE = "acknowledge"
    """Someone on call acknowledges the case's pages: their repeats stop."""


class AgentAction(Contract):
    """One agent action, keyed by `case_id`. `action_id` makes redelivery harmless."""

    action_id: str = Field(min_length=1, max_length=MAX_ACTION_ID_LENGTH)
    case_id: str = Field(min_length=1, max_length=MAX_CASE_ID_LENGTH)
    agent_id: str = Field(min_length=1, max_length=MAX_AGENT_ID_LENGTH)
    type: AgentActionType
    at: AwareDatetime
    text: str | None = Field(default=None, max_length=MAX_TEXT_LENGTH)
    status: CaseStatus | None = None
    queue: QueueName | None = Field(
        default=None,
        description="The queue a transfer moves the case to; the name must be valid for its "
        "topic (`Topics.queue`).",
    )
    to_agent: str | None = Field(default=None, min_length=1, max_length=MAX_AGENT_ID_LENGTH)
    priority: Priority | None = Field(
        default=None, description="The priority an escalation raises the case to."
    )
    override: bool = Field(
        default=False,
        description="Set by a lead or admin: act on a case another agent owns (reassign).",
    )
    reason: str | None = Field(
        default=None,
        max_length=MAX_REASON_LENGTH,
        description="Why, in words (e.g. the assigner's choice); carried into the events.",
    )
    expected_owner: str | None = Field(
        default=None,
        max_length=MAX_AGENT_ID_LENGTH,
        description="Apply only if the case is still owned by this agent (else rejected).",
    )

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
        if self.type is AgentActionType.ASSIGN and not self.to_agent:
            raise ValueError("an assign action needs `to_agent`")
        if self.type is AgentActionType.ESCALATE:
            if not (self.queue or self.priority):
                raise ValueError("an escalate action needs `queue` or `priority`")
            if not (self.reason and self.reason.strip()):
                raise ValueError("an escalate action needs `reason`")
        return self
