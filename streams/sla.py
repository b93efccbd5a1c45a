"""The SLA side of stage C: run a case's clocks (rules/clocks.py) and apply what they fire.

Clock events become `cases.events` records whose ids derive from the case id and the
event's discriminator, so a replay or a timer firing twice gives the same record. A fired
escalation step is applied to the case here: a new queue, a new priority (the clocks are
retargeted), extra tags; its `notify` targets travel in the event for the connectors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import Counter

from rules import CompiledRuleSet
from rules import clocks as sla
from schemas import CaseEvent, Priority, SlaClockView
from schemas.ids import event_id_for
from streams import metrics
from streams.case_state import CaseState
from streams.paging import note_page

ClockChange = Callable[[sla.CaseClocks, sla.ClockPolicy, datetime], sla.Transition]


def clock_policy(ruleset: CompiledRuleSet, state: CaseState) -> sla.ClockPolicy | None:
    """The case's SLA policy in the rule set in use; None without one (or if it was removed)."""
    if state.sla_policy is None or state.sla_policy not in ruleset.sla_policies:
        return None
    return sla.ClockPolicy.from_ruleset(
        ruleset, state.sla_policy, state.escalation_policy, state.policy_rule
    )


def run_clocks(
    state: CaseState, ruleset: CompiledRuleSet, change: ClockChange, at: datetime
) -> list[CaseEvent]:
    """Apply one clock transition to the case (in place) and return the events it caused.

    The case's `sla` views are not refreshed here: a record runs several transitions, and
    its caller sets them once from the final clocks (`sla_view`).
    """
    policy = clock_policy(ruleset, state)
    clocks = state.clocks
    if policy is None or clocks is None:
        return []
    return _applied(state, policy, *change(clocks, policy, at))


def _applied(
    state: CaseState, policy: sla.ClockPolicy, clocks: sla.CaseClocks, fired: list[sla.ClockEvent]
) -> list[CaseEvent]:
    """Set the case's clocks to the outcome of a transition; apply and return its events."""
    events: list[CaseEvent] = []
    for event in fired:
        if event.escalation is not None:
            clocks = _apply_escalation(state, clocks, policy, event.escalation, event.at)
        events.append(_case_event(state, event))
    state.clocks = clocks
    state.next_deadline = sla.next_deadline(clocks)
    return events  # the caller refreshes `state.sla` (`sla_view`) once, after all its changes


EventCount = tuple[Counter, tuple[str, ...]]
"""One count to add: the counter (of `streams.metrics`) and its label values."""


def count_events(events: Iterable[CaseEvent]) -> None:
    """Count the warnings, breaches and escalation steps among events about to be written."""
    add_counts(event_counts(events))


def event_counts(events: Iterable[CaseEvent]) -> tuple[EventCount, ...]:
    """What `count_events` would count, kept small (a prepared firing keeps this, not events)."""
    counts: list[EventCount] = []
    for event in events:
        payload = event.payload
        if event.type == sla.ClockEventKind.WARNING.value:
            counter = metrics.SLA_WARNINGS
        elif event.type == sla.ClockEventKind.BREACHED.value:
            counter = metrics.SLA_BREACHES
        else:
            if event.type == sla.ClockEventKind.ESCALATED.value:
                step = payload.get("escalation") or {}
                counts.append(
                    (metrics.ESCALATIONS, (step.get("on", "agent"), str(step.get("step", ""))))
                )
            continue
        labels = (payload.get("policy") or "", payload.get("clock") or "", payload.get("queue"))
        counts.append((counter, (labels[0], labels[1], labels[2] or "")))
    return tuple(counts)


def add_counts(counts: Iterable[EventCount]) -> None:
    """Add counts taken by `event_counts` to their metrics."""
    for counter, labels in counts:
        counter.labels(*labels).inc()


def start_clocks(state: CaseState, ruleset: CompiledRuleSet, at: datetime) -> list[CaseEvent]:
    """Start the clocks of a newly routed case under its policy (no policy: no clocks)."""
    policy = clock_policy(ruleset, state)
    if policy is None or state.priority is None:
        return []
    clocks, fired = sla.start(policy, state.priority, at, status=state.status.value)
    state.clocks = clocks
    return _applied(state, policy, clocks, fired)


def sla_view(state: CaseState) -> dict[str, SlaClockView] | None:
    """Each clock's due time and state, as agents see them; None when no clocks run."""
    clocks = state.clocks
    if clocks is None:
        return None
    return clocks.views()


def _apply_escalation(
    state: CaseState,
    clocks: sla.CaseClocks,
    policy: sla.ClockPolicy,
    action: sla.EscalationAction,
    at: datetime,
) -> sla.CaseClocks:
    if action.page is not None:
        note_page(state, action.page.to_dict(), at)
    if action.queue:
        state.queue = action.queue
    state.tags = state.tags + [tag for tag in action.tags if tag not in state.tags]
    if action.priority is not None:
        state.priority = Priority(action.priority)  # the engine has retargeted the clocks
    return clocks


def _case_event(state: CaseState, event: sla.ClockEvent) -> CaseEvent:
    payload = event.to_dict()
    payload.update(
        {"policy": state.sla_policy, "queue": state.queue, "priority": _value(state.priority)}
    )
    return CaseEvent(
        event_id=event_id_for(state.case_id, event.kind.value, event.discriminator),
        case_id=state.case_id,
        type=event.kind.value,
        at=event.at,
        reason=event.reason,
        payload=payload,
    )


def _value(priority: Priority | None) -> str | None:
    return None if priority is None else priority.value
