"""What the delivery service reads from `cases.events`: replies to send, notifications to make."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from schemas import AcknowledgementPayload, CaseEvent, CaseEventType, MessageAppendedPayload

AGENT_KEY_PREFIX = "agent:"
"""Message keys of agent replies (`agent:<action_id>`): only these are ever sent out."""


class DeliveryError(Exception):
    """One failed attempt. `reason` is a short, bounded label; `permanent` stops the retries.

    `in_doubt` marks a failure after the request may have reached the provider (a timeout or
    a dropped connection while it answered): the reply may have arrived even so.
    `retry_after` is how long the provider asked us to wait (a 429's `Retry-After`), if it did.
    """

    def __init__(
        self,
        reason: str,
        detail: str,
        permanent: bool = False,
        in_doubt: bool = False,
        retry_after: float | None = None,
    ) -> None:
        detail = detail[:1000]
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.permanent = permanent
        self.in_doubt = in_doubt
        self.retry_after = retry_after


class UnreadableEventError(ValueError):
    """A record the service cannot read: not a case event, or a payload it cannot act on.

    `reason` is the dead letter's short label.
    """

    def __init__(self, detail: str, reason: str = "invalid_payload") -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Reply:
    """An agent's reply to deliver; `key` (`agent:<action_id>`) is its idempotency key."""

    case_id: str
    key: str
    channel: str
    text: str
    recipient: str | None
    subject: str | None
    thread_ref: str | None
    in_reply_to: str | None
    agent_id: str | None
    at: datetime
    auto_submitted: bool = False
    """An acknowledgement, not a person's reply: marked `Auto-Submitted: auto-replied`."""
    update: bool = False
    """An acknowledgement's update (the promise moved earlier): not held back by the window."""
    customer_id: str | None = None
    """An acknowledgement's customer: at most one per customer (and recipient) per window."""

    @property
    def action_id(self) -> str:
        """The agent action's id (the key without its prefix)."""
        return self.key.removeprefix(AGENT_KEY_PREFIX)


@dataclass(frozen=True)
class Notification:
    """An escalation step's notification to its targets (names from the rule's `notify`)."""

    case_id: str
    event_id: str
    targets: tuple[str, ...]
    reason: str
    queue: str | None
    priority: str | None
    at: datetime


def reply_in(event: CaseEvent) -> Reply | None:
    """The agent reply an event carries (a `message.appended` outbound agent message), if any.

    Raises UnreadableEventError for a `message.appended` whose payload is not a message.
    """
    if event.type != CaseEventType.MESSAGE_APPENDED.value:
        return None
    try:
        payload = MessageAppendedPayload.model_validate(event.payload)
    except ValidationError as exc:
        raise UnreadableEventError(f"message.appended payload: {exc}") from exc
    message = payload.message
    if message.direction != "outbound" or not payload.message_key.startswith(AGENT_KEY_PREFIX):
        return None  # customer messages, notes and forum staff posts are never sent
    return Reply(
        case_id=event.case_id,
        key=payload.message_key,
        channel=message.channel,
        text=message.text,
        recipient=message.recipient,
        subject=message.subject,
        thread_ref=message.thread_ref,
        in_reply_to=message.in_reply_to,
        agent_id=message.sender,
        at=message.sent_at,
    )


def acknowledgement_in(event: CaseEvent) -> Reply | None:
    """The acknowledgement a `case.acknowledged` event asks to send, if the event is one.

    Raises UnreadableEventError for a `case.acknowledged` whose payload is not one.
    """
    if event.type != CaseEventType.CASE_ACKNOWLEDGED.value:
        return None
    try:
        payload = AcknowledgementPayload.model_validate(event.payload)
    except ValidationError as exc:
        raise UnreadableEventError(f"case.acknowledged payload: {exc}") from exc
    return Reply(
        case_id=event.case_id,
        key=payload.message_key,
        channel=payload.channel,
        text=payload.text,
        recipient=payload.recipient,
        subject=payload.subject,
        thread_ref=payload.thread_ref,
        in_reply_to=payload.in_reply_to,
        agent_id=None,
        at=event.at,
        auto_submitted=True,
        update=payload.kind == "update",
        customer_id=payload.customer_id,
    )


def notification_in(event: CaseEvent) -> Notification | None:
    """The notification a fired escalation step asks for (`case.escalated` with `notify`)."""
    if event.type != CaseEventType.CASE_ESCALATED.value:
        return None
    escalation = event.payload.get("escalation")
    if not isinstance(escalation, dict):
        return None
    notify = escalation.get("notify") or []
    if not isinstance(notify, list):
        raise UnreadableEventError(f"case.escalated notify is not a list: {notify!r:.200}")
    targets = tuple(str(target) for target in notify)
    if not targets:
        return None
    return Notification(
        case_id=event.case_id,
        event_id=event.event_id,
        targets=targets,
        reason=event.reason,
        queue=_text(event.payload.get("queue")),
        priority=_text(event.payload.get("priority")),
        at=event.at,
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)
