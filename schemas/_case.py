"""The case contract: a case as published, routed, on `queue.<name>`."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from schemas._common import ChannelName, Contract, Priority


class CaseStatus(StrEnum):
    """Where a case stands. `waiting_on_customer` is the usual SLA pause status."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESOLVED = "resolved"


class ClockState(StrEnum):
    """State of one SLA clock."""

    RUNNING = "running"
    PAUSED = "paused"
    WARNING = "warning"
    BREACHED = "breached"
    MET = "met"


class SlaClockView(Contract):
    """One SLA clock as an agent sees it: when it is due and how it stands."""

    due_at: AwareDatetime | None = None
    state: ClockState = ClockState.RUNNING
    warn_at: AwareDatetime | None = Field(
        default=None, description="When the clock turns to `warning` (the policy's `warn_at`)."
    )


class CaseMessage(Contract):
    """One message in a case's history (customer or agent)."""

    channel: ChannelName
    text: str
    sent_at: AwareDatetime
    sender: str | None = None
    external_id: str | None = None
    subject: str | None = None
    direction: str = Field(default="inbound", pattern=r"^(inbound|outbound|note)$")
    thread_ref: str | None = None
    in_reply_to: str | None = Field(
        default=None, description="Outbound: the channel id of the message this answers."
    )
    recipient: str | None = Field(
        default=None, description="Outbound: who receives it (address, number, user id)."
    )
    tags: list[str] = Field(default_factory=list, description="E.g. `auto_reply`, `staff`.")


class Case(Contract):
    """A case as published on `queue.<name>` (keyed by `case_id`).

    `messages` holds at least the latest message; `sla` has one entry per clock.
    """

    case_id: str = Field(pattern=r"^C-[0-9A-Z]{6,16}$")
    queue: str
    priority: Priority
    tags: list[str] = Field(default_factory=list)
    customer_id: str
    channels: list[ChannelName] = Field(default_factory=list)
    status: CaseStatus = CaseStatus.NEW
    sla: dict[str, SlaClockView] = Field(default_factory=dict)
    matched: list[str] = Field(default_factory=list)
    messages: list[CaseMessage] = Field(min_length=1)
    opened_at: AwareDatetime | None = None
    rules_version: str | None = None
    assignee: str | None = Field(
        default=None, description="The agent who owns the case (claimed or assigned), if any."
    )
    assignment_pending: bool = Field(
        default=False, description="True while an assignment waits for the assignee to accept."
    )
