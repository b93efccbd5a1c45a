"""The case event envelope on `cases.events`: the audit log of every decision, with its reason."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field

from schemas._case import Case, CaseMessage
from schemas._common import Contract


class CaseEventType(StrEnum):
    """Every kind of case event. Consumers must ignore types they do not know."""

    CASE_OPENED = "case.opened"
    MESSAGE_APPENDED = "message.appended"
    CASE_ROUTED = "case.routed"
    CASE_UPDATED = "case.updated"
    """The case after a change that is not a routing decision (payload as `case.routed`)."""
    CASE_CLAIMED = "case.claimed"
    CASE_ASSIGNED = "case.assigned"
    """Escalator's assigner or a lead gave the case to an agent, who has yet to accept it."""
    ACTION_REJECTED = "action.rejected"
    """An agent action was refused (e.g. the case is owned by someone else); nothing changed."""
    CASE_RELEASED = "case.released"
    CASE_STATUS_CHANGED = "case.status_changed"
    CASE_TRANSFERRED = "case.transferred"
    CASE_RESOLVED = "case.resolved"
    CASE_REOPENED = "case.reopened"
    SLA_STARTED = "sla.started"
    SLA_PAUSED = "sla.paused"
    SLA_RESUMED = "sla.resumed"
    SLA_MET = "sla.met"
    SLA_WARNING = "sla.warning"
    SLA_BREACHED = "sla.breached"
    CASE_ESCALATED = "case.escalated"
    REPLY_FAILED = "reply.failed"
    """An agent reply that could not be delivered on its channel, after every retry."""
    NOTIFICATION_FAILED = "notification.failed"
    """An escalation notification that could not be delivered, after every retry."""
    CASE_ACKNOWLEDGED_BY_AGENT = "case.acknowledged_by_agent"
    """Someone on call acknowledged the case's pages (desk, CLI or the pager's own webhook)."""
    CASE_PAGES_RESOLVED = "case.pages_resolved"
    """The case was claimed or resolved: its open pages are resolved at their providers."""
    PAGE_FAILED = "page.failed"
    """A page (trigger, acknowledge or resolve) that could not be delivered, after every retry."""
    CASE_ACKNOWLEDGED = "case.acknowledged"
    """The customer is told when they will hear back (payload: `AcknowledgementPayload`)."""
    CASE_CUSTOMER_ESCALATED = "case.customer_escalated"
    """The customer asked to escalate the case through their acknowledgement's link."""
    ACKNOWLEDGEMENT_SUPPRESSED = "acknowledgement.suppressed"
    """The reply service did not send an acknowledgement (one went to the customer lately)."""


class CaseEvent(Contract):
    """One event about one case, keyed by `case_id`.

    `event_id` is deterministic: replaying the same input gives the same id, so
    consumers deduplicate on it. `reason` says in words why the decision was made.
    """

    event_id: str = Field(min_length=8, max_length=64)
    case_id: str
    type: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    at: AwareDatetime
    reason: str
    payload: dict[str, Any] = Field(default_factory=dict)


class CaseOpenedPayload(Contract):
    """Payload of `case.opened`: who opened the case, on which channel, and on what evidence."""

    customer_id: str
    channel: str
    opened_at: AwareDatetime
    message_key: str
    evidence: str = Field(description="Why a new case: e.g. 'no open case for customer'.")


class MessageAppendedPayload(Contract):
    """Payload of `message.appended`: one message joined the case."""

    customer_id: str
    message_key: str
    message: CaseMessage
    evidence: str = Field(description="Threading evidence: 'new case', 'thread_ref', 'open case'.")
    identity_evidence: str | None = Field(
        default=None, description="Why the sender is this customer (handle, verified link, merge)."
    )
    auth: dict[str, Any] | None = Field(
        default=None,
        description="Mail: what SPF, DKIM and DMARC said (the message's `metadata.auth`).",
    )


class CaseRoutedPayload(Contract):
    """Payload of `case.routed`: the routed case as published, and the rule decision behind it."""

    case: Case
    rules_version: str
    decision: dict[str, Any] = Field(default_factory=dict)
    ingested_at: AwareDatetime | None = None


class PromiseView(Contract):
    """What a customer was promised: when they will hear back, in UTC and in their own time."""

    clock: str = Field(description="The clock the promise is about (`first_response`).")
    due_at: str = Field(description="ISO 8601 UTC, exactly as `rules explain --json` gives it.")
    local: str = Field(description="The due time as the customer read it, in `timezone`.")
    timezone: str


class AcknowledgementPayload(Contract):
    """Payload of `case.acknowledged`: the message sent to the customer and its promise.

    `kind` is `opened`, `reopened` or `update` (the promise moved earlier). The reply service
    delivers it like an agent's reply, to `recipient` on `channel`, threaded to `in_reply_to`.
    """

    kind: str = Field(pattern=r"^(opened|reopened|update)$")
    template: str
    message_key: str = Field(description="`ack:<event id>`: the delivery's idempotency key.")
    customer_id: str
    channel: str
    recipient: str | None = None
    subject: str | None = None
    text: str
    thread_ref: str | None = None
    in_reply_to: str | None = None
    language: str | None = None
    promise: PromiseView
    previous_due_at: str | None = Field(
        default=None, description="With `update`: the due time promised before."
    )
