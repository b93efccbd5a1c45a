"""Stage C, keyed by case id: append the message, evaluate the rules, route, emit events.

Every output is a pure function of (case state, threaded message, rule set), and every
event id is deterministic, so reprocessing after a crash emits identical records that
consumers deduplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from rules import CaseFacts, Decision, RuleEvaluator
from schemas import (
    PRIORITY_ORDER,
    Case,
    CaseEvent,
    CaseEventType,
    CaseMessage,
    CaseOpenedPayload,
    CaseRoutedPayload,
    CaseStatus,
    MessageAppendedPayload,
    Priority,
    SlaClockView,
)
from schemas.ids import event_id_for
from streams.records import ThreadedMessage

MESSAGES_KEPT = 20
"""Latest messages a case carries in its state and on its queue record."""


class CaseState(BaseModel):
    """What stage C keeps per case (a faust table row, JSON in the changelog)."""

    model_config = ConfigDict(extra="ignore")

    case_id: str
    customer_id: str
    opened_at: datetime
    status: CaseStatus = CaseStatus.NEW
    queue: str | None = None
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
    rules_version: str | None = None
    sla: dict[str, SlaClockView] = Field(default_factory=dict)

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


@dataclass
class CaseUpdate:
    """What processing one message produced: the new state, events and the queue records."""

    state: CaseState
    events: list[CaseEvent] = field(default_factory=list)
    routed: Case | None = None
    previous_queue: str | None = None
    decision: Decision | None = None

    @property
    def changed(self) -> bool:
        """False for a duplicate: nothing to write."""
        return bool(self.events)


def apply_message(
    state: CaseState | None, threaded: ThreadedMessage, evaluator: RuleEvaluator
) -> CaseUpdate:
    """Add a message to its case and route the case; a duplicate changes nothing."""
    message = threaded.message
    key = message.message_key
    at = threaded.arrived_at
    if state is not None and key in state.message_keys:
        return CaseUpdate(state=state)
    events: list[CaseEvent] = []
    if state is None:
        state = CaseState(case_id=threaded.case_id, customer_id=threaded.customer_id, opened_at=at)
        events.append(_opened_event(state, threaded))
    else:
        state = state.model_copy(deep=True)
    case_message = CaseMessage(
        channel=message.channel,
        text=message.text,
        sent_at=message.sent_at,
        sender=message.sender,
        external_id=message.external_id,
        subject=message.subject,
    )
    state.messages = [*state.messages, case_message][-MESSAGES_KEPT:]
    state.message_keys.append(key)
    state.contacts += 1
    state.last_customer_message_at = at
    if state.awaiting_reply_since is None:
        state.awaiting_reply_since = at
    if message.channel not in state.channels:
        state.channels.append(message.channel)
    events.append(_appended_event(state, threaded, case_message))

    decision = evaluator.evaluate(message, state.facts(at), at)
    previous_queue = state.queue
    previous = (state.queue, state.priority, tuple(state.tags))
    priority = _more_urgent(state.priority, decision.priority)
    state.queue = decision.queue
    state.priority = priority
    state.tags = _merged(state.tags, decision.tags)
    state.matched = list(decision.matched)
    state.rules_version = decision.rules_version
    state.sla = {clock: SlaClockView(due_at=due) for clock, due in decision.sla_due.items()}
    if state.status is CaseStatus.NEW and previous_queue is not None:
        state.status = CaseStatus.OPEN
    routed = _case_record(state)
    if (state.queue, state.priority, tuple(state.tags)) != previous:
        events.append(_routed_event(state, threaded, decision, routed, previous_queue))
    return CaseUpdate(
        state=state,
        events=events,
        routed=routed,
        previous_queue=previous_queue if previous_queue != state.queue else None,
        decision=decision,
    )


def _more_urgent(current: Priority | None, decided: Priority) -> Priority:
    """A follow-up message may raise a case's priority but never lowers it by itself."""
    if current is None:
        return decided
    return PRIORITY_ORDER[min(current.rank, decided.rank)]


def _merged(current: list[str], added: tuple[str, ...]) -> list[str]:
    return current + [tag for tag in added if tag not in current]


def _case_record(state: CaseState) -> Case:
    assert state.queue is not None and state.priority is not None
    return Case(
        case_id=state.case_id,
        queue=state.queue,
        priority=state.priority,
        tags=list(state.tags),
        customer_id=state.customer_id,
        channels=list(state.channels),
        status=state.status,
        sla=dict(state.sla),
        matched=list(state.matched),
        messages=list(state.messages),
        opened_at=state.opened_at,
        rules_version=state.rules_version,
    )


def _opened_event(state: CaseState, threaded: ThreadedMessage) -> CaseEvent:
    kind = CaseEventType.CASE_OPENED.value
    return CaseEvent(
        event_id=event_id_for(state.case_id, kind),
        case_id=state.case_id,
        type=kind,
        at=threaded.arrived_at,
        reason=threaded.evidence,
        payload=CaseOpenedPayload(
            customer_id=state.customer_id,
            channel=threaded.message.channel,
            opened_at=state.opened_at,
            message_key=threaded.message.message_key,
            evidence=threaded.evidence,
        ).model_dump(mode="json"),
    )


def _appended_event(
    state: CaseState, threaded: ThreadedMessage, case_message: CaseMessage
) -> CaseEvent:
    kind = CaseEventType.MESSAGE_APPENDED.value
    key = threaded.message.message_key
    return CaseEvent(
        event_id=event_id_for(state.case_id, kind, key),
        case_id=state.case_id,
        type=kind,
        at=threaded.arrived_at,
        reason=f"{threaded.message.channel} message from {threaded.message.sender}: "
        f"{threaded.evidence}",
        payload=MessageAppendedPayload(
            customer_id=state.customer_id,
            message_key=key,
            message=case_message,
            evidence=threaded.evidence,
        ).model_dump(mode="json"),
    )


def _routed_event(
    state: CaseState,
    threaded: ThreadedMessage,
    decision: Decision,
    routed: Case,
    previous_queue: str | None,
) -> CaseEvent:
    kind = CaseEventType.CASE_ROUTED.value
    routes = ", ".join(decision.matched) or "the root route"
    moved = f" (from {previous_queue})" if previous_queue and previous_queue != routed.queue else ""
    return CaseEvent(
        event_id=event_id_for(state.case_id, kind, threaded.message.message_key),
        case_id=state.case_id,
        type=kind,
        at=threaded.arrived_at,
        reason=f"matched {routes} → queue {routed.queue}{moved} at priority "
        f"{routed.priority.value} (rules {decision.rules_version})",
        payload=CaseRoutedPayload(
            case=routed,
            rules_version=decision.rules_version,
            decision=decision.to_json(),
            ingested_at=threaded.ingested_at,
        ).model_dump(mode="json"),
    )
