"""What stage C keeps per case: its routing, history, facts for rules and SLA clock state."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rules import CaseFacts
from schemas import CaseMessage, CaseStatus, Priority, SlaClockView

MESSAGES_KEPT = 20
"""Latest messages a case carries in its state and on its queue record."""

ACTIONS_REMEMBERED = 200
"""Agent action ids remembered per case, so a redelivered action is applied once."""


class CaseState(BaseModel):
    """What stage C keeps per case (a faust table row, JSON in the changelog)."""

    model_config = ConfigDict(extra="ignore")

    case_id: str
    customer_id: str
    opened_at: datetime
    status: CaseStatus = CaseStatus.NEW
    queue: str | None = None
    decided_queue: str | None = None
    priority: Priority | None = None
    tags: list[str] = Field(default_factory=list)
    matched: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    messages: list[CaseMessage] = Field(default_factory=list)
    message_keys: list[str] = Field(default_factory=list)
    contacts: int = 0
    agent_replies: int = 0
    reopened: int = 0
    last_customer_message_at: datetime | None = None
    awaiting_reply_since: datetime | None = None
    last_agent_reply_at: datetime | None = None
    resolved_at: datetime | None = None
    rules_version: str | None = None
    sla: dict[str, SlaClockView] = Field(default_factory=dict)
    sla_policy: str | None = None
    escalation_policy: str | None = None
    policy_rule: str | None = None
    clocks: dict[str, Any] | None = None
    next_deadline: datetime | None = None
    claimed_by: str | None = None
    assignment_pending: bool = False
    processed_actions: list[str] = Field(default_factory=list)

    def facts(self, at: datetime) -> CaseFacts:
        """The `case.*` facts the rules see for a message arriving at `at`."""
        waiting = self.awaiting_reply_since
        return CaseFacts(
            contacts=self.contacts,
            channels=tuple(self.channels),
            age=at - self.opened_at,
            reopened=self.reopened,
            status=self.status.value,
            unanswered_for=at - waiting if waiting else timedelta(0),
            agent_replies=self.agent_replies,
            priority=self.priority,
        )
