"""Agent actions in stage C: claim, assign, release, reply, note, status, transfer, resolve, reopen.

Each action changes the case, drives its SLA clocks and is recorded as events with the
agent and the reason; the case is then republished to its queue. An action the ownership
rules refuse (`streams.ownership`) changes nothing but is recorded as `action.rejected`
with the reason. An action id already applied (a redelivery) changes nothing.
"""

from __future__ import annotations

from rules import CompiledRuleSet, clocks
from schemas import (
    AgentAction,
    AgentActionType,
    Case,
    CaseEvent,
    CaseEventType,
    CaseMessage,
    CaseRoutedPayload,
    CaseStatus,
    MessageAppendedPayload,
)
from schemas.ids import event_id_for
from streams import metrics, paging
from streams.acknowledge import promise_update
from streams.agent_escalation import escalate, escalation_payload
from streams.case_events import case_record
from streams.case_state import ACTIONS_REMEMBERED, TRUNCATED_TAG, CaseState, windowed
from streams.casework import CaseUpdate, after_overdue, fire_overdue
from streams.ownership import Refusal, refusal
from streams.sla import ClockChange, run_clocks, sla_view

_EVENT_OF: dict[AgentActionType, CaseEventType] = {
    AgentActionType.CLAIM: CaseEventType.CASE_CLAIMED,
    AgentActionType.ASSIGN: CaseEventType.CASE_ASSIGNED,
    AgentActionType.RELEASE: CaseEventType.CASE_RELEASED,
    AgentActionType.REPLY: CaseEventType.MESSAGE_APPENDED,
    AgentActionType.NOTE: CaseEventType.MESSAGE_APPENDED,
    AgentActionType.STATUS: CaseEventType.CASE_STATUS_CHANGED,
    AgentActionType.TRANSFER: CaseEventType.CASE_TRANSFERRED,
    AgentActionType.RESOLVE: CaseEventType.CASE_RESOLVED,
    AgentActionType.REOPEN: CaseEventType.CASE_REOPENED,
    AgentActionType.ESCALATE: CaseEventType.CASE_ESCALATED,
    AgentActionType.ACKNOWLEDGE: CaseEventType.CASE_ACKNOWLEDGED_BY_AGENT,
}


def apply_action(
    state: CaseState | None, action: AgentAction, ruleset: CompiledRuleSet
) -> CaseUpdate | None:
    """Apply an agent action to its case. None when the case is unknown here."""
    if state is None:
        return None
    if action.action_id in state.processed_actions:
        return CaseUpdate(state=state)
    overdue = fire_overdue(state, ruleset, action.at)
    if overdue is not None:  # what fell due before the action is written before it
        then = apply_action(overdue.state, action, ruleset)
        assert then is not None
        return after_overdue(overdue, state.queue, then)
    state = state.changeable()
    state.processed_actions = [*state.processed_actions, action.action_id][-ACTIONS_REMEMBERED:]
    refused = refusal(state.claimed_by, state.status, action) or paging.refusal(state, action)
    if refused is not None:
        metrics.AGENT_ACTIONS_REJECTED.labels(action.type.value, refused.code).inc()
        return CaseUpdate(state=state, events=[_rejected_event(state, action, refused)])
    previous_queue = state.queue
    before = (state.queue, state.priority.value if state.priority else None)
    changes, reason = _change(state, action)
    if action.reason:
        reason = f"{reason}: {action.reason}"
    if state.status is CaseStatus.RESOLVED and state.resolved_at is None:
        state.resolved_at = action.at  # the reopen window counts from here
    elif state.status is not CaseStatus.RESOLVED:
        state.resolved_at = None
    events = [_action_event(state, action, reason, before)]
    for change in changes:
        events += run_clocks(state, ruleset, change, action.at)
    events += paging.after_action(state, action, reason)
    state.sla = sla_view(state) or state.sla
    routed = case_record(state)
    events.append(_updated_event(state, action, routed, reason))
    events.extend(promise_update(state, ruleset, action.at))
    metrics.AGENT_ACTIONS.labels(action.type.value).inc()
    return CaseUpdate(
        state=state,
        events=events,
        routed=routed,
        previous_queue=previous_queue if previous_queue != state.queue else None,
    )


def _change(state: CaseState, action: AgentAction) -> tuple[list[ClockChange], str]:
    """Change the case for the action; the clock transitions it implies and the reason."""
    who = action.agent_id
    kind = action.type
    if kind in (AgentActionType.CLAIM, AgentActionType.ASSIGN, AgentActionType.RELEASE):
        return _ownership(state, action)
    if kind in (AgentActionType.REPLY, AgentActionType.NOTE):
        reply = kind is AgentActionType.REPLY
        state.messages = windowed(state.messages, _agent_message(state, action))
        if not reply:
            return [], f"internal note by {who}"
        state.agent_replies += 1
        state.last_agent_reply_at = action.at
        state.awaiting_reply_since = None
        if state.status is CaseStatus.NEW:
            state.status = CaseStatus.OPEN
        return [clocks.agent_reply], f"reply by {who}"
    if kind is AgentActionType.STATUS and action.status is not None:
        return [_status(state, action.status)], f"status set to {action.status.value} by {who}"
    if kind is AgentActionType.TRANSFER:
        return _transfer(state, action)
    if kind is AgentActionType.ESCALATE:
        return escalate(state, action)
    if kind is AgentActionType.ACKNOWLEDGE:
        return paging.acknowledge(state, action)
    if kind is AgentActionType.RESOLVE:
        return [_status(state, CaseStatus.RESOLVED)], f"resolved by {who}"
    state.reopened += 1
    return [_status(state, CaseStatus.OPEN)], f"reopened by {who}"


def _ownership(state: CaseState, action: AgentAction) -> tuple[list[ClockChange], str]:
    """Claim (or accept an assignment), assign, or release; the stage already allowed it."""
    who = action.agent_id
    accepted_before = state.claimed_by is not None and not state.assignment_pending
    if action.type is AgentActionType.CLAIM:
        if state.claimed_by == who:
            reason = f"already claimed by {who}" if accepted_before else f"accepted by {who}"
        elif state.claimed_by is not None:
            reason = f"claimed by {who}, taking over from {state.claimed_by}"
        else:
            reason = f"claimed by {who}"
        state.claimed_by, state.assignment_pending = who, False
        return ([] if accepted_before else [clocks.claimed]), reason
    if action.type is AgentActionType.ASSIGN:
        target = action.to_agent or who
        state.claimed_by, state.assignment_pending = target, target != who
        reason = f"assigned to {target} by {who}"
        if state.assignment_pending:
            return ([clocks.released] if accepted_before else []), reason
        return [clocks.claimed], reason
    previous = state.claimed_by
    state.claimed_by, state.assignment_pending = None, False
    reason = f"released by {who}" if previous == who else f"{previous}'s case released by {who}"
    return ([clocks.released] if accepted_before else []), reason


def _transfer(state: CaseState, action: AgentAction) -> tuple[list[ClockChange], str]:
    """Move the case to a queue (it waits there unowned) and/or give it to an agent."""
    accepted_before = state.claimed_by is not None and not state.assignment_pending
    changes: list[ClockChange] = []
    if action.queue and action.queue != state.queue:
        state.queue = action.queue
        changes.append(clocks.routed)
    if action.to_agent:
        state.claimed_by, state.assignment_pending = action.to_agent, False
        if not accepted_before:
            changes.append(clocks.claimed)
    elif action.queue:
        state.claimed_by, state.assignment_pending = None, False
        if accepted_before:
            changes.insert(0, clocks.released)
    target = " and ".join(t for t in (action.queue, action.to_agent) if t)
    return changes, f"transferred to {target} by {action.agent_id}"


def _status(state: CaseState, status: CaseStatus) -> ClockChange:
    state.status = status
    value = status.value

    def change(
        case: clocks.CaseClocks, policy: clocks.ClockPolicy, at: object
    ) -> clocks.Transition:
        return clocks.status_changed(case, policy, value, at)  # type: ignore[arg-type]

    return change


def _agent_message(state: CaseState, action: AgentAction) -> CaseMessage:
    """The agent's message; a reply is addressed to the customer's latest message and channel."""
    last = next((m for m in reversed(state.messages) if m.direction == "inbound"), None)
    direction = "outbound" if action.type is AgentActionType.REPLY else "note"
    return CaseMessage(
        channel=last.channel if last else "email",
        text=action.text or "",
        sent_at=action.at,
        sender=action.agent_id,
        external_id=f"agent:{action.action_id}",
        direction=direction,
        subject=last.subject if last else None,
        thread_ref=last.thread_ref if last else None,
        in_reply_to=last.external_id if last else None,
        recipient=last.sender if last else None,
    )


def _whole(message: CaseMessage, action: AgentAction) -> CaseMessage:
    """The agent's message as sent: the window may hold its text cut short."""
    if TRUNCATED_TAG not in message.tags:
        return message
    tags = [tag for tag in message.tags if tag != TRUNCATED_TAG]
    return message.model_copy(update={"text": action.text or "", "tags": tags})


def _action_event(
    state: CaseState, action: AgentAction, reason: str, before: tuple[str | None, str | None]
) -> CaseEvent:
    kind = _EVENT_OF[action.type].value
    payload: dict[str, object] = {"action": action.model_dump(mode="json")}
    if action.type is AgentActionType.ESCALATE:
        payload = escalation_payload(state, action, before)
    elif action.type is AgentActionType.ACKNOWLEDGE:
        payload = paging.acknowledgement_payload(state, action)
    if kind == CaseEventType.MESSAGE_APPENDED.value:
        payload = MessageAppendedPayload(
            customer_id=state.customer_id,
            message_key=f"agent:{action.action_id}",
            message=_whole(state.messages[-1], action),
            evidence=reason,
        ).model_dump(mode="json")
    return CaseEvent(
        event_id=event_id_for(state.case_id, kind, action.action_id),
        case_id=state.case_id,
        type=kind,
        at=action.at,
        reason=reason,
        payload=payload,
    )


def _rejected_event(state: CaseState, action: AgentAction, refused: Refusal) -> CaseEvent:
    kind = CaseEventType.ACTION_REJECTED.value
    return CaseEvent(
        event_id=event_id_for(state.case_id, kind, action.action_id),
        case_id=state.case_id,
        type=kind,
        at=action.at,
        reason=refused.reason,
        payload={
            "action": action.model_dump(mode="json"),
            "code": refused.code,
            "owner": state.claimed_by,
            "status": state.status.value,
        },
    )


def _updated_event(state: CaseState, action: AgentAction, routed: Case, reason: str) -> CaseEvent:
    kind = CaseEventType.CASE_UPDATED.value
    return CaseEvent(
        event_id=event_id_for(state.case_id, kind, action.action_id),
        case_id=state.case_id,
        type=kind,
        at=action.at,
        reason=f"after {action.type.value}: {reason}",
        payload=CaseRoutedPayload(
            case=routed,
            rules_version=state.rules_version or "",
        ).model_dump(mode="json"),
    )
