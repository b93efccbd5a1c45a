"""Builders of the case events that customer effort is made of: cases of one customer on
several channels, agent replies, resolutions and reopens, at chosen times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas import (
    Case,
    CaseEvent,
    CaseMessage,
    CaseOpenedPayload,
    CaseRoutedPayload,
    MessageAppendedPayload,
    Priority,
)
from schemas.ids import case_id_for, event_id_for
from schemas.limits import MAX_ID_LENGTH


@dataclass
class Story:
    """One case of one customer, told as events; each method appends one or two events."""

    customer: str
    number: int = 1
    queue: str = "general"
    events: list[CaseEvent] = field(default_factory=list)
    _messages: int = 0
    _steps: int = 0

    @property
    def case_id(self) -> str:
        """The case's id (deterministic per customer and case number)."""
        return case_id_for(self.customer, f"email:{self.customer}-case-{self.number}")

    def _event(self, kind: str, at: datetime, payload: dict[str, object], reason: str) -> None:
        self._steps += 1
        self.events.append(
            CaseEvent(
                event_id=event_id_for(self.case_id, kind, str(self._steps)),
                case_id=self.case_id,
                type=kind,
                at=at,
                reason=reason,
                payload=payload,
            )
        )

    def _snapshot(self, at: datetime, status: str, kind: str = "case.updated") -> None:
        case = Case(
            case_id=self.case_id,
            queue=self.queue,
            priority=Priority.NORMAL,
            customer_id=self.customer,
            status=status,
            messages=[CaseMessage(channel="email", text="…", sent_at=at)],
            opened_at=at,
        )
        payload = CaseRoutedPayload(case=case, rules_version="v1").model_dump(mode="json")
        self._event(kind, at, payload, f"snapshot: {status}")

    def opens(self, at: datetime, channel: str = "email", text: str = "help") -> Story:
        """The customer's first message opens the case, which is routed to the queue."""
        key = f"{channel}:{self.customer}-{self.number}-open"
        payload = CaseOpenedPayload(
            customer_id=self.customer,
            channel=channel,
            opened_at=at,
            message_key=key,
            evidence="no open case for customer",
        ).model_dump(mode="json")
        self._event("case.opened", at, payload, "new case")
        self.writes(at, channel, text, key=key)
        self._snapshot(at, "new", "case.routed")
        return self

    def writes(
        self, at: datetime, channel: str = "email", text: str = "still waiting", key: str = ""
    ) -> Story:
        """A customer message on `channel`."""
        return self._message(at, channel, text, "inbound", key)

    def replies(self, at: datetime, text: str = "Here is your answer.") -> Story:
        """An agent's reply."""
        return self._message(at, "email", text, "outbound", "")

    def _message(self, at: datetime, channel: str, text: str, direction: str, key: str) -> Story:
        self._messages += 1
        key = key or f"{channel}:{self.customer}-{self.number}-{self._messages}"
        payload = MessageAppendedPayload(
            customer_id=self.customer,
            message_key=key,
            message=CaseMessage(
                channel=channel,
                text=text,
                sent_at=at,
                direction=direction,
                sender="agent-ana"
                if direction == "outbound"
                else f"{self.customer}@example.com"[-MAX_ID_LENGTH:],
            ),
            evidence="open case",
        ).model_dump(mode="json")
        self._event("message.appended", at, payload, f"{direction} message")
        return self

    def resolves(self, at: datetime) -> Story:
        """An agent resolves it: `case.resolved`, then the snapshot."""
        self._event("case.resolved", at, {"action": {"type": "resolve"}}, "resolved by ana")
        self._snapshot(at, "resolved")
        return self

    def reopens(self, at: datetime) -> Story:
        """The customer writes within the reopen window: `case.reopened`, the message, the
        snapshot (as the stream writes them)."""
        self._event("case.reopened", at, {"reopened": 1}, "the customer wrote")
        self.writes(at, text="it broke again")
        self._snapshot(at, "open")
        return self


def tick(story: Story, at: datetime) -> list[CaseEvent]:
    """An unrelated event at `at` (another customer's case opening): moves event time on."""
    return Story(f"clock-{at.isoformat()}", queue=story.queue).opens(at).events[:1]


def days(n: float) -> timedelta:
    """`n` days."""
    return timedelta(days=n)
