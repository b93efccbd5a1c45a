"""Stage C, keyed by case id: append the message, evaluate the rules, route, emit events.

Every output is a pure function of (case state, threaded message, rule set), and every
event id is deterministic, so reprocessing after a crash emits identical records that
consumers deduplicate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from rules import CaseFacts, CompiledRuleSet, Decision, clocks
from schemas import (
    PRIORITY_ORDER,
    Case,
    CaseEvent,
    CaseEventType,
    CaseMessage,
    CaseRoutedPayload,
    CaseStatus,
    InboundMessage,
    Priority,
    SlaClockView,
)
from schemas.ids import event_id_for
from streams import metrics
from streams.acknowledge import (
    Acknowledger,
    customer_escalated_event,
    is_escalation_request,
    promise_update,
)
from streams.case_events import (
    appended_event,
    case_record,
    opened_event,
    routed_event,
    snapshot_event,
)
from streams.case_state import CaseState, remember_key, windowed
from streams.records import ThreadedMessage
from streams.sla import run_clocks, sla_view, start_clocks
from streams.threader import is_auto_reply, is_forum_answer


@dataclass
class CaseUpdate:
    """What processing one message produced: the new state, events and the queue records."""

    state: CaseState
    events: list[CaseEvent] = field(default_factory=list)
    routed: Case | None = None
    previous_queue: str | None = None

    @property
    def changed(self) -> bool:
        """False for a duplicate: nothing to write."""
        return bool(self.events)


ShadowHook = Callable[[InboundMessage, CaseFacts, datetime, Decision], None]
"""Told the inputs and the active decision of each routed message (`streams.shadow`)."""


def apply_message(
    state: CaseState | None,
    threaded: ThreadedMessage,
    ruleset: CompiledRuleSet,
    shadow: ShadowHook | None = None,
    acknowledger: Acknowledger | None = None,
) -> CaseUpdate:
    """Add a message to its case, route it and run its clocks; a duplicate changes nothing.

    A follow-up moves the case only when the rules now decide a different queue than they
    last did (say, a third contact), so an escalation or a transfer is not undone by the
    next message; priority may rise, never fall, by itself. A case the message opens or
    reopens is acknowledged (`streams.acknowledge`); `acknowledger` signs its links.
    """
    message = threaded.message
    key = message.message_key
    at = threaded.arrived_at
    if state is not None:
        if key in state.message_keys:
            return CaseUpdate(state=state)
        overdue = fire_overdue(state, ruleset, at)
        if overdue is not None:  # what fell due before the message is written before it
            then = apply_message(overdue.state, threaded, ruleset, shadow, acknowledger)
            return after_overdue(overdue, state.queue, then)
    events: list[CaseEvent] = []
    if state is None:
        state = CaseState(case_id=threaded.case_id, customer_id=threaded.customer_id, opened_at=at)
        events.append(opened_event(state, threaded))
    else:
        state = state.changeable()
    if state.queue is not None and (is_auto_reply(message) or is_forum_answer(message)):
        return _passive(state, threaded, ruleset)
    case_message = _noted(state, threaded)
    reopened = state.status is CaseStatus.RESOLVED
    if reopened:
        events.extend(_reopen(state, threaded, ruleset))
    events.append(appended_event(state, threaded, case_message))
    answered = state.status in WAITING_STATUSES
    if answered:
        events.extend(_customer_answered(state, threaded, ruleset))
    events.extend(_escalation_request(state, message, at))

    decision = _decide(state, threaded, ruleset, shadow)
    previous_queue = state.queue
    previous = (state.queue, state.priority, tuple(state.tags))
    new_case = previous_queue is None
    if new_case or decision.queue != state.decided_queue:
        state.queue = decision.queue
    state.decided_queue = decision.queue
    state.priority = _more_urgent(state.priority, decision.priority)
    state.tags = _merged(state.tags, decision.tags)
    state.matched = list(decision.matched)
    state.rules_version = decision.rules_version
    if state.status is CaseStatus.NEW and not new_case:
        state.status = CaseStatus.OPEN
    clock_events = _run_clocks_for_message(state, ruleset, decision, previous[1], at)
    state.sla = sla_view(state) or {
        clock: SlaClockView(due_at=due) for clock, due in decision.sla_due.items()
    }
    routed = case_record(state)
    if (state.queue, state.priority, tuple(state.tags)) != previous:
        events.append(routed_event(state, threaded, decision, routed, previous_queue))
    elif reopened or answered:  # the case store learns the new status from a snapshot
        why = "reopened by a customer message within the window" if reopened else "open again"
        events.append(snapshot_event(state, routed, key, why, at))
    events.extend(clock_events)
    events += _acknowledged(state, threaded, decision, ruleset, new_case, reopened, acknowledger)
    return CaseUpdate(
        state=state,
        events=events,
        routed=routed,
        previous_queue=previous_queue if previous_queue != state.queue else None,
    )


def _noted(state: CaseState, threaded: ThreadedMessage) -> CaseMessage:
    """Note a customer's message in its case: window, keys, contacts, channels, waiting."""
    message = threaded.message
    at = threaded.arrived_at
    tags = ["escalation_request"] if is_escalation_request(message) else []
    case_message = _case_message(threaded, "inbound", tags)
    state.note_customer_channel(message.channel)
    state.messages = windowed(state.messages, case_message)
    remember_key(state.message_keys, message.message_key)
    state.contacts += 1
    state.last_customer_message_at = at
    if state.awaiting_reply_since is None:
        state.awaiting_reply_since = at
    if message.channel not in state.channels:
        state.channels.append(message.channel)
    return case_message


def _decide(
    state: CaseState, threaded: ThreadedMessage, ruleset: CompiledRuleSet, shadow: ShadowHook | None
) -> Decision:
    """The rules' decision on a message; the shadow hook sees the same inputs and it."""
    at = threaded.arrived_at
    facts = state.facts(at, threaded.history_facts())
    with metrics.RULE_EVALUATION.time():
        decision = ruleset.evaluate(threaded.message, facts, at)
    if shadow is not None:
        shadow(threaded.message, facts, at, decision)
    return decision


def _escalation_request(state: CaseState, message: InboundMessage, at: datetime) -> list[CaseEvent]:
    """A customer's "still not solved?": counted (`case.customer_escalations`) and recorded."""
    if not is_escalation_request(message):
        return []
    state.customer_escalations += 1
    return [customer_escalated_event(state, message, at)]


def _acknowledged(
    state: CaseState,
    threaded: ThreadedMessage,
    decision: Decision,
    ruleset: CompiledRuleSet,
    new_case: bool,
    reopened: bool,
    acknowledger: Acknowledger | None,
) -> list[CaseEvent]:
    """Acknowledge a case just opened or reopened; else tell the customer a sooner promise."""
    acknowledged: list[CaseEvent] = []
    if new_case or reopened:
        kind = "opened" if new_case else "reopened"
        acknowledged = (acknowledger or Acknowledger()).acknowledge(
            state, threaded.message, decision.acknowledgement, ruleset, kind, threaded.arrived_at
        )
    return acknowledged or promise_update(state, ruleset, threaded.arrived_at)


def _case_message(threaded: ThreadedMessage, direction: str, tags: list[str]) -> CaseMessage:
    message = threaded.message
    return CaseMessage(
        channel=message.channel,
        text=message.text,
        sent_at=message.sent_at,
        sender=message.sender,
        external_id=message.external_id,
        subject=message.subject,
        direction=direction,
        thread_ref=message.thread_ref,
        tags=tags,
    )


def _reopen(
    state: CaseState, threaded: ThreadedMessage, ruleset: CompiledRuleSet
) -> list[CaseEvent]:
    """A customer wrote to a resolved case within the reopen window: it is open again."""
    at = threaded.arrived_at
    resolved_at = state.resolved_at
    state.status = CaseStatus.OPEN
    state.reopened += 1
    state.resolved_at = None
    kind = CaseEventType.CASE_REOPENED.value
    since = f" {at - resolved_at} after it was resolved" if resolved_at else ""
    event = CaseEvent(
        event_id=event_id_for(state.case_id, kind, threaded.message.message_key),
        case_id=state.case_id,
        type=kind,
        at=at,
        reason=f"the customer wrote{since}, within the reopen window "
        f"({threaded.message.message_key})",
        payload={"message_key": threaded.message.message_key, "reopened": state.reopened},
    )
    change = lambda c, p, t: clocks.status_changed(c, p, CaseStatus.OPEN.value, t)  # noqa: E731
    return [event, *run_clocks(state, ruleset, change, at)]


WAITING_STATUSES = frozenset({CaseStatus.PENDING, CaseStatus.WAITING_ON_CUSTOMER})
"""Statuses that wait for the customer: their next message opens the case again (as in
Zendesk, where a requester's reply sets a pending or on-hold ticket back to open)."""


def _customer_answered(
    state: CaseState, threaded: ThreadedMessage, ruleset: CompiledRuleSet
) -> list[CaseEvent]:
    """The customer wrote to a case waiting for them: it is open again, its clocks resume."""
    at = threaded.arrived_at
    key = threaded.message.message_key
    previous = state.status
    state.status = CaseStatus.OPEN
    kind = CaseEventType.CASE_STATUS_CHANGED.value
    event = CaseEvent(
        event_id=event_id_for(state.case_id, kind, key),
        case_id=state.case_id,
        type=kind,
        at=at,
        reason=f"the customer wrote while the case was {previous.value} ({key})",
        payload={
            "status": CaseStatus.OPEN.value,
            "previous_status": previous.value,
            "message_key": key,
        },
    )
    change = lambda c, p, t: clocks.status_changed(c, p, CaseStatus.OPEN.value, t)  # noqa: E731
    return [event, *run_clocks(state, ruleset, change, at)]


def _passive(state: CaseState, threaded: ThreadedMessage, ruleset: CompiledRuleSet) -> CaseUpdate:
    """An auto-reply (a tagged note: no contact, no rules, no clocks) or a staff answer.

    A staff post on the forum is an answer: it counts as an agent reply for the SLA clocks
    and for `case.unanswered_for`, but it is never sent anywhere (it is already public).
    """
    message = threaded.message
    at = threaded.arrived_at
    previous_queue = state.queue
    events: list[CaseEvent] = []
    if is_forum_answer(message):
        accepted = bool(message.metadata.get("accepted_answer"))
        case_message = _case_message(
            threaded, "outbound", ["accepted_answer" if accepted else "staff"]
        )
        state.agent_replies += 1
        state.last_agent_reply_at = at
        state.awaiting_reply_since = None
        if state.status is CaseStatus.NEW:
            state.status = CaseStatus.OPEN
        kind = "accepted answer" if accepted else "staff answer"
        evidence = f"{kind} on the forum: {threaded.evidence}"
    else:
        case_message = _case_message(threaded, "note", ["auto_reply"])
        why = message.metadata.get("auto_reply_reason") or "tagged auto_reply"
        evidence = f"automatic message ({why}), kept as a note: {threaded.evidence}"
    state.messages = windowed(state.messages, case_message)
    remember_key(state.message_keys, message.message_key)
    tagged = threaded.model_copy(update={"evidence": evidence})
    events.append(appended_event(state, tagged, case_message))
    if is_forum_answer(message):
        events.extend(run_clocks(state, ruleset, clocks.agent_reply, at))
    state.sla = sla_view(state) or state.sla
    routed = case_record(state)
    events.append(snapshot_event(state, routed, message.message_key, evidence, at))
    return CaseUpdate(
        state=state,
        events=events,
        routed=routed,
        previous_queue=previous_queue if previous_queue != state.queue else None,
    )


def fire_clocks(state: CaseState, ruleset: CompiledRuleSet, now: datetime) -> CaseUpdate:
    """The SLA timer came for a case: emit what fell due and apply its escalations."""
    state = state.model_copy()  # the clock code replaces fields, never mutates them in place
    previous_queue = state.queue
    events = run_clocks(state, ruleset, clocks.due, now)
    if not events:
        return CaseUpdate(state=state)
    state.sla = sla_view(state) or state.sla
    routed = case_record(state)
    kind = CaseEventType.CASE_UPDATED.value
    events.append(
        CaseEvent(
            event_id=event_id_for(state.case_id, kind, *(event.event_id for event in events)),
            case_id=state.case_id,
            type=kind,
            at=max(event.at for event in events),
            reason="SLA: " + "; ".join(event.reason for event in events),
            payload=CaseRoutedPayload(
                case=routed, rules_version=state.rules_version or ""
            ).model_dump(mode="json"),
        )
    )
    events.extend(promise_update(state, ruleset, now))
    return CaseUpdate(
        state=state,
        events=events,
        routed=routed,
        previous_queue=previous_queue if previous_queue != state.queue else None,
    )


def overdue_firings(
    state: CaseState, ruleset: CompiledRuleSet, before: datetime
) -> Iterator[CaseUpdate]:
    """Each firing of the case's deadlines earlier than `before`, earliest first.

    Every firing is the timer's own (`fire_clocks` as of the deadline) and starts from the
    state the previous one left; it stops early if a firing changes nothing.
    """
    while state.next_deadline is not None and state.next_deadline < before:
        update = fire_clocks(state, ruleset, state.next_deadline)
        if not update.changed:
            return
        yield update
        state = update.state


def fire_overdue(state: CaseState, ruleset: CompiledRuleSet, at: datetime) -> CaseUpdate | None:
    """Fire the case's deadlines that fell due before `at`, as the timer fires them.

    The timer fires a deadline its lateness after it passed, so a record stamped after a
    deadline may be applied before the timer came for it. Firing what fell due first puts
    the record's events after the deadline's, in event time, exactly as if the timer had
    been on time: the reply service never triggers a page after acknowledging it. None when
    nothing fell due before `at`.
    """
    firings = list(overdue_firings(state, ruleset, at))
    if not firings:
        return None
    return CaseUpdate(
        state=firings[-1].state, events=[event for update in firings for event in update.events]
    )


def after_overdue(overdue: CaseUpdate, queue_before: str | None, then: CaseUpdate) -> CaseUpdate:
    """One update: the deadlines that fell due (`fire_overdue`), then the record's own."""
    queue = then.state.queue
    return CaseUpdate(
        state=then.state,
        events=[*overdue.events, *then.events],
        routed=then.routed or case_record(then.state),
        previous_queue=queue_before if queue_before != queue else None,
    )


def _run_clocks_for_message(
    state: CaseState,
    ruleset: CompiledRuleSet,
    decision: Decision,
    previous_priority: Priority | None,
    at: datetime,
) -> list[CaseEvent]:
    """Start the clocks of a new case, or tell running ones a customer wrote again."""
    if previous_priority is None:
        state.sla_policy = decision.sla_policy
        state.escalation_policy = decision.escalation_policy
        state.policy_rule = decision.matched[-1] if decision.matched else None
        return start_clocks(state, ruleset, at)
    events = run_clocks(state, ruleset, clocks.customer_message, at)
    if state.priority is not None and state.priority != previous_priority:
        priority = state.priority
        events += run_clocks(
            state, ruleset, lambda c, p, t: clocks.priority_changed(c, p, priority, t), at
        )
    return events


def _more_urgent(current: Priority | None, decided: Priority) -> Priority:
    """A follow-up message may raise a case's priority but never lowers it by itself."""
    if current is None:
        return decided
    return PRIORITY_ORDER[min(current.rank, decided.rank)]


def _merged(current: list[str], added: tuple[str, ...]) -> list[str]:
    return current + [tag for tag in added if tag not in current]
