"""An agent escalates a case from the feed: to another queue and/or a higher priority.

The desk has checked who may (`queues.desk.authz.may_escalate`); here stage C applies it.
A new queue leaves the case unowned there (tier 2 takes it from the queue), like a transfer;
a new priority retargets the clocks, like a rule's escalation step. A priority never falls
by an escalation: asking for a lower one keeps the current one, and the reason says so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rules import clocks
from schemas import PRIORITY_ORDER, AgentAction, Priority
from streams.case_state import CaseState
from streams.sla import ClockChange


def escalate(state: CaseState, action: AgentAction) -> tuple[list[ClockChange], str]:
    """Move the case for an `escalate` action; the clock transitions and the reason in words."""
    changes: list[ClockChange] = []
    moves: list[str] = []
    if action.queue and action.queue != state.queue:
        accepted_before = state.claimed_by is not None and not state.assignment_pending
        if accepted_before:
            changes.append(clocks.released)
        state.claimed_by, state.assignment_pending = None, False
        state.queue = action.queue
        changes.append(clocks.routed)
        moves.append(f"to queue {action.queue}")
    requested = action.priority
    if requested is not None:
        current = state.priority
        raised = _more_urgent(current, requested)
        if raised != current:
            state.priority = raised
            changes.append(_priority_change(raised))
            moves.append(f"to priority {raised.value}")
        else:
            moves.append(f"priority kept at {current.value if current else '-'}")
    where = " and ".join(moves) or "in place"
    return changes, f"escalated {where} by {action.agent_id}"


def escalation_payload(
    state: CaseState, action: AgentAction, before: tuple[str | None, str | None]
) -> dict[str, Any]:
    """What `case.escalated` by an agent says: who, why, and from where to where."""
    return {
        "agent": action.agent_id,
        "reason": action.reason,
        "from_queue": before[0],
        "from_priority": before[1],
        "queue": state.queue,
        "priority": state.priority.value if state.priority else None,
        "action": action.model_dump(mode="json"),
    }


def _more_urgent(current: Priority | None, requested: Priority) -> Priority:
    if current is None:
        return requested
    return PRIORITY_ORDER[min(current.rank, requested.rank)]


def _priority_change(priority: Priority) -> ClockChange:
    def change(
        case: clocks.CaseClocks, policy: clocks.ClockPolicy, at: datetime
    ) -> clocks.Transition:
        return clocks.priority_changed(case, policy, priority, at)

    return change
