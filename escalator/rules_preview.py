"""`rules preview`: which open cases a candidate rule set would decide differently, and why.

For every open case in the case store, the latest customer message and the case facts the
store knows (contacts, channels, age, status, priority, agent replies, channel switches,
time unanswered) go through the active set and through the candidate, at the moment the
message arrived. A case is listed when the two decisions differ in queue, priority, SLA
policy or a clock's due time. Both sets see the same inputs, so facts the store does not
keep (the customer's attributes such as `customer.tier`, `history.*`, message metadata)
are absent for both: a change that depends on them does not show here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from queues.models import CaseRow, MessageRow
from queues.store import messages_of
from rules import CaseFacts, CompiledRuleSet, Decision
from schemas import InboundMessage, Priority

RESOLVED = "resolved"


@dataclass(frozen=True)
class Change:
    """One decision field that the candidate changes for a case."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class CasePreview:
    """An open case the candidate would decide differently, with the reason."""

    case_id: str
    current_queue: str | None
    changes: tuple[Change, ...]
    reason: str


def preview(
    session: Session, active: CompiledRuleSet, candidate: CompiledRuleSet
) -> tuple[int, list[CasePreview]]:
    """How many open cases were looked at, and those whose decision would change."""
    rows = session.scalars(
        select(CaseRow).where(CaseRow.status != RESOLVED).order_by(CaseRow.case_id)
    ).all()
    changed: list[CasePreview] = []
    for row in rows:
        inputs = case_inputs(row, list(session.scalars(messages_of(row.case_id))))
        if inputs is None:
            continue
        message, facts = inputs
        before = active.evaluate(message, facts, message.sent_at)
        after = candidate.evaluate(message, facts, message.sent_at)
        changes = compare(before, after)
        if changes:
            changed.append(CasePreview(row.case_id, row.queue, changes, _reason(before, after)))
    return len(rows), changed


def case_inputs(
    row: CaseRow, messages: list[MessageRow]
) -> tuple[InboundMessage, CaseFacts] | None:
    """The latest customer message of a case and its facts when it arrived (as stage C saw them).

    None for a case without a customer message.
    """
    inbound = [m for m in messages if m.direction == "inbound"]
    if not inbound:
        return None
    latest = inbound[-1]
    message = InboundMessage(
        channel=latest.channel,
        external_id=latest.external_id or latest.message_key,
        sender=latest.sender or "unknown",
        text=latest.text,
        subject=latest.subject,
        sent_at=_aware(latest.sent_at),
    )
    replies = [m for m in messages if m.direction == "outbound"]
    last_reply = _aware(replies[-1].sent_at) if replies else None
    waiting = [m for m in inbound if last_reply is None or _aware(m.sent_at) > last_reply]
    switches = sum(1 for a, b in pairwise(inbound) if a.channel != b.channel)
    opened = _aware(row.opened_at) if row.opened_at else message.sent_at
    facts = CaseFacts(
        contacts=len(inbound),
        channels=tuple(row.channels) or (latest.channel,),
        age=max(timedelta(0), message.sent_at - opened),
        status=row.status,
        unanswered_for=message.sent_at - _aware(waiting[0].sent_at) if waiting else timedelta(0),
        agent_replies=len(replies),
        priority=Priority(row.priority) if row.priority else None,
        channel_switches=switches,
    )
    return message, facts


def compare(before: Decision, after: Decision) -> tuple[Change, ...]:
    """The decision fields that differ: queue, priority, SLA policy, due time per clock."""
    changes = [
        Change(name, getattr(before, name), getattr(after, name))
        for name in ("queue", "priority", "sla_policy")
        if getattr(before, name) != getattr(after, name)
    ]
    for clock in sorted(before.sla_due.keys() | after.sla_due.keys()):
        due_before, due_after = before.sla_due.get(clock), after.sla_due.get(clock)
        if due_before != due_after:
            changes.append(Change(f"sla.{clock}", _utc(due_before), _utc(due_after)))
    return tuple(Change(c.field, _plain(c.before), _plain(c.after)) for c in changes)


def _reason(before: Decision, after: Decision) -> str:
    routes_before = ", ".join(before.matched) or "the root route"
    routes_after = ", ".join(after.matched) or "the root route"
    if routes_before != routes_after:
        return f"matches {routes_after} instead of {routes_before}"
    return f"matches {routes_after} as before, whose settings changed"


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
