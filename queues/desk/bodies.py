"""Request bodies of the desk API: validated at the edge, with reasons on bad input."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from queues.desk.directory import Mode, Presence, Strategy
from schemas import CaseStatus, Priority
from schemas.limits import MAX_REASON_LENGTH, QUEUE_NAME_PATTERN

UNPROCESSABLE = 422
"""Status of a well-formed request naming something that does not exist (an agent, a queue).

A literal: Starlette renamed its constant for 422, and both names do not exist in every
supported version.
"""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextBody(_Body):
    """A reply or an internal note."""

    text: str = Field(min_length=1, max_length=100_000)


class StatusBody(_Body):
    """A new status; `waiting_on_customer` pauses the SLA clocks (per the policy)."""

    status: CaseStatus

    @model_validator(mode="after")
    def _not_resolved(self) -> StatusBody:
        if self.status is CaseStatus.RESOLVED:
            raise ValueError("use POST .../resolve to resolve a case")
        return self


class TransferBody(_Body):
    """Move the case to a queue, give it to an agent, or both."""

    queue: str | None = Field(default=None, pattern=QUEUE_NAME_PATTERN)
    to_agent: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _somewhere(self) -> TransferBody:
        if not (self.queue or self.to_agent):
            raise ValueError("a transfer needs `queue` or `to_agent`")
        return self


class AssignBody(_Body):
    """A lead gives the case to an agent, who then accepts it by claiming."""

    to_agent: str = Field(min_length=1, max_length=64)


class EscalateBody(_Body):
    """Escalate the case to a queue and/or a priority; the reason is required.

    Who escalates is the caller's token, never a field of the body.
    """

    queue: str | None = Field(default=None, pattern=QUEUE_NAME_PATTERN)
    priority: Priority | None = None
    reason: str = Field(min_length=1, max_length=MAX_REASON_LENGTH)

    @model_validator(mode="after")
    def _somewhere_and_why(self) -> EscalateBody:
        if not (self.queue or self.priority):
            raise ValueError("an escalation needs `queue` or `priority`")
        if not self.reason.strip():
            raise ValueError("an escalation needs a `reason` (in words)")
        return self


class AcknowledgeBody(_Body):
    """Acknowledge the case's pages; an optional note says what happens next."""

    note: str | None = Field(default=None, max_length=MAX_REASON_LENGTH)


class PresenceBody(_Body):
    """An agent's presence."""

    presence: Presence


class QueueSettingsBody(_Body):
    """Queue settings an admin may change; omitted fields stay as they are."""

    strategy: Strategy | None = None
    mode: Mode | None = None
    skills: list[str] | None = None
    accept_timeout_seconds: int | None = Field(default=None, ge=1, le=86_400)
