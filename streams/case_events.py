"""The case events stage C writes for a message.

Opened, appended, routed, and the case as it now stands (a snapshot).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rules import Decision
from schemas import (
    Case,
    CaseEvent,
    CaseEventType,
    CaseMessage,
    CaseOpenedPayload,
    CaseRoutedPayload,
    MessageAppendedPayload,
)
from schemas.ids import event_id_for
from streams.case_state import CaseState
from streams.records import ThreadedMessage


def snapshot_event(
    state: CaseState, routed: Case, message_key: str, reason: str, at: datetime
) -> CaseEvent:
    """A `case.updated` event carrying the case as it now stands (for the case store)."""
    kind = CaseEventType.CASE_UPDATED.value
    return CaseEvent(
        event_id=event_id_for(state.case_id, kind, message_key),
        case_id=state.case_id,
        type=kind,
        at=at,
        reason=reason,
        payload=CaseRoutedPayload(case=routed, rules_version=state.rules_version or "").model_dump(
            mode="json"
        ),
    )


def case_record(state: CaseState) -> Case:
    """The case as published on its queue topic (and in `case.routed` / `case.updated`)."""
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
        assignee=state.claimed_by,
        assignment_pending=state.assignment_pending,
    )


def opened_event(state: CaseState, threaded: ThreadedMessage) -> CaseEvent:
    """`case.opened` for a message that opens a case."""
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


_MAIL_AUTH_FIELDS = ("spf", "dkim", "dmarc", "from_domain")


def mail_auth(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The SPF/DKIM/DMARC words of a mail's `metadata.auth`, for the case's event log."""
    auth = metadata.get("auth")
    if not isinstance(auth, dict):
        return None
    kept = {k: auth[k][:255] for k in _MAIL_AUTH_FIELDS if isinstance(auth.get(k), str)}
    return kept or None


def appended_event(
    state: CaseState, threaded: ThreadedMessage, case_message: CaseMessage
) -> CaseEvent:
    """`message.appended` for a customer message in its case."""
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
            identity_evidence=threaded.identity_evidence,
            auth=mail_auth(threaded.message.metadata),
        ).model_dump(mode="json"),
    )


def routed_event(
    state: CaseState,
    threaded: ThreadedMessage,
    decision: Decision,
    routed: Case,
    previous_queue: str | None,
) -> CaseEvent:
    """`case.routed`: where the rules put the case, and why."""
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
