"""What the desk reads from the case store: queue listings, cases, history, loads, changes.

Queues are ordered by urgency, not arrival: priority first, then the earliest SLA due
time (a breached clock is the earliest of all), then age.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, true
from sqlalchemy.orm import Session, sessionmaker

from queues.desk.promises import promises_of
from queues.models import AssignmentRow, CaseEventRow, CaseRow
from queues.store import PRIORITY_RANK, events_of, messages_of, rfc3339
from schemas import CaseStatus

ACTIVE_STATUSES = (CaseStatus.NEW.value, CaseStatus.OPEN.value, CaseStatus.PENDING.value)
"""Statuses that take an agent's capacity; waiting on the customer and resolved do not."""

UNRESOLVED_STATUSES = (*ACTIVE_STATUSES, CaseStatus.WAITING_ON_CUSTOMER.value)


def urgency_order(query: Select[Any]) -> Select[Any]:
    """Order cases most urgent first: priority, earliest SLA due time, oldest, id."""
    return query.order_by(
        PRIORITY_RANK,
        CaseRow.sla_due_at.is_(None),
        CaseRow.sla_due_at,
        CaseRow.opened_at.is_(None),
        CaseRow.opened_at,
        CaseRow.case_id,
    )


def case_json(row: CaseRow) -> dict[str, Any]:
    """A case as listed by the desk."""
    return {
        "case_id": row.case_id,
        "queue": row.queue,
        "priority": row.priority,
        "status": row.status,
        "customer_id": row.customer_id,
        "channel": row.channel,
        "channels": list(row.channels),
        "tags": list(row.tags),
        "assignee": row.assignee,
        "assignment_pending": row.assignment_pending,
        "sla": row.sla,
        "sla_due_at": rfc3339(row.sla_due_at),
        "message_count": row.message_count,
        "opened_at": rfc3339(row.opened_at),
        "updated_at": rfc3339(row.updated_at),
        "effort": effort_json(row),
    }


def effort_json(row: CaseRow) -> dict[str, Any]:
    """The customer's effort on the case so far (see docs/metrics.md, "Customer effort")."""
    return {
        "contacts": row.contacts,
        "channel_switches": row.channel_switches,
        "agent_replies": row.agent_replies,
        "reopens": row.reopens,
        "repeat_of": row.repeat_of,
        "resolved_at": rfc3339(row.resolved_at),
    }


@dataclass(frozen=True)
class CaseFilter:
    """Filters of a queue listing; None means any."""

    statuses: Sequence[str] | None = None
    assignee: str | None = None
    """An agent name, or `none` for unowned cases."""
    priority: str | None = None
    channel: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class ChangedEvent:
    """One case event the desk has not shown yet, with its place on the topic."""

    partition: int
    offset: int
    event_id: str
    case_id: str
    type: str
    at: datetime
    reason: str
    queue: str | None
    assignee: str | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "event_id": self.event_id,
            "case_id": self.case_id,
            "type": self.type,
            "at": rfc3339(self.at),
            "reason": self.reason,
            "queue": self.queue,
            "assignee": self.assignee,
        }


class DeskReads:
    """Read queries of the desk API and the assigner."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory, for the read-only queries of other views (the console)."""
        return self._sessions

    def case(self, case_id: str) -> CaseRow | None:
        """One case row (detached, read-only use), or None."""
        with self._sessions() as session:
            return session.get(CaseRow, case_id)

    def list_cases(
        self, queue: str, where: CaseFilter, *, limit: int, offset: int
    ) -> tuple[int, list[CaseRow]]:
        """The queue's cases matching `where`, most urgent first: (total, one page)."""
        query = select(CaseRow).where(CaseRow.queue == queue)
        statuses = where.statuses if where.statuses is not None else UNRESOLVED_STATUSES
        query = query.where(CaseRow.status.in_(statuses))
        if where.assignee == "none":
            query = query.where(CaseRow.assignee.is_(None))
        elif where.assignee is not None:
            query = query.where(CaseRow.assignee == where.assignee)
        if where.priority is not None:
            query = query.where(CaseRow.priority == where.priority)
        if where.channel is not None:
            query = query.where(CaseRow.channel == where.channel)
        with self._sessions() as session:
            if where.tag is not None:  # JSON containment differs per dialect: filter here
                rows = [
                    row for row in session.scalars(urgency_order(query)) if where.tag in row.tags
                ]
                return len(rows), rows[offset : offset + limit]
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            page = session.scalars(urgency_order(query).limit(limit).offset(offset))
            return total, list(page)

    def case_ids(self, *, queue: str) -> set[str]:
        """Ids of the queue's unresolved cases."""
        query = select(CaseRow.case_id).where(
            CaseRow.queue == queue, CaseRow.status.in_(UNRESOLVED_STATUSES)
        )
        with self._sessions() as session:
            return set(session.scalars(query))

    def queue_counts(self, queues: Iterable[str], now: datetime) -> dict[str, dict[str, int]]:
        """Per queue: unresolved, unassigned, waiting on customer and breached-or-due cases."""
        names = list(queues)
        counts: dict[str, dict[str, int]] = {
            name: {"open": 0, "unassigned": 0, "waiting_on_customer": 0, "overdue": 0}
            for name in names
        }
        with self._sessions() as session:
            rows = session.execute(
                select(CaseRow.queue, CaseRow.status, CaseRow.assignee, CaseRow.sla_due_at).where(
                    CaseRow.queue.in_(names), CaseRow.status.in_(UNRESOLVED_STATUSES)
                )
            )
            for queue, status, assignee, due in rows:
                entry = counts[str(queue)]
                entry["open"] += 1
                entry["unassigned"] += assignee is None
                entry["waiting_on_customer"] += status == CaseStatus.WAITING_ON_CUSTOMER.value
                entry["overdue"] += due is not None and due <= now
        return counts

    def history(self, case_id: str) -> dict[str, Any] | None:
        """A case: messages on every channel, events, assignments, the customer's other cases."""
        with self._sessions() as session:
            row = session.get(CaseRow, case_id)
            if row is None:
                return None
            messages = session.scalars(messages_of(case_id))
            events = session.scalars(events_of(case_id))
            assignments = session.scalars(
                select(AssignmentRow)
                .where(AssignmentRow.case_id == case_id)
                .order_by(AssignmentRow.started_at)
            )
            earlier = session.scalars(
                urgency_order(
                    select(CaseRow).where(
                        CaseRow.customer_id == row.customer_id, CaseRow.case_id != case_id
                    )
                ).limit(50)
            )
            return {
                **case_json(row),
                "matched": list(row.matched),
                "rules_version": row.rules_version,
                "messages": [
                    {
                        "message_key": m.message_key,
                        "channel": m.channel,
                        "direction": m.direction,
                        "sender": m.sender,
                        "subject": m.subject,
                        "text": m.text,
                        "sent_at": rfc3339(m.sent_at),
                    }
                    for m in messages
                ],
                "events": [
                    {
                        "event_id": e.event_id,
                        "type": e.type,
                        "at": rfc3339(e.at),
                        "reason": e.reason,
                        "payload": e.payload,
                    }
                    for e in events
                ],
                "assignments": [
                    {
                        "agent": a.agent,
                        "queue": a.queue,
                        "started_at": rfc3339(a.started_at),
                        "started_reason": a.started_reason,
                        "accepted_at": rfc3339(a.accepted_at),
                        "ended_at": rfc3339(a.ended_at),
                        "ended_reason": a.ended_reason,
                    }
                    for a in assignments
                ],
                "customer_cases": [case_json(other) for other in earlier],
                "promises": promises_of(
                    {"type": e.type, "at": rfc3339(e.at), "payload": e.payload}
                    for e in session.scalars(events_of(case_id))
                ),
            }

    def loads(self, agents: Iterable[str]) -> dict[str, Counter[str]]:
        """Per agent, their active cases counted by channel (what uses their capacity)."""
        names = list(agents)
        loads: dict[str, Counter[str]] = {name: Counter() for name in names}
        with self._sessions() as session:
            rows = session.execute(
                select(CaseRow.assignee, CaseRow.channel, func.count())
                .where(CaseRow.assignee.in_(names), CaseRow.status.in_(ACTIVE_STATUSES))
                .group_by(CaseRow.assignee, CaseRow.channel)
            )
            for assignee, channel, count in rows:
                loads[str(assignee)][channel or "*"] += count
        return loads

    def last_assigned(self, agents: Iterable[str], queue: str) -> dict[str, datetime]:
        """When each agent last got a case of `queue` (for round robin)."""
        with self._sessions() as session:
            rows = session.execute(
                select(AssignmentRow.agent, func.max(AssignmentRow.started_at))
                .where(AssignmentRow.agent.in_(list(agents)), AssignmentRow.queue == queue)
                .group_by(AssignmentRow.agent)
            )
            return {agent: at for agent, at in rows if at is not None}

    def owned(self, agent: str, statuses: Sequence[str] = UNRESOLVED_STATUSES) -> list[CaseRow]:
        """The agent's cases in these statuses, most urgent first."""
        return self.owned_by([agent], statuses)

    def owned_by(
        self, agents: Iterable[str], statuses: Sequence[str] = UNRESOLVED_STATUSES
    ) -> list[CaseRow]:
        """The cases these agents own in these statuses, most urgent first (one query)."""
        names = list(agents)
        if not names:
            return []
        query = select(CaseRow).where(CaseRow.assignee.in_(names), CaseRow.status.in_(statuses))
        with self._sessions() as session:
            return list(session.scalars(urgency_order(query)))

    def pending_assignments(self) -> list[tuple[CaseRow, datetime]]:
        """Cases assigned and not yet accepted, with when the assignment began."""
        with self._sessions() as session:
            rows = session.execute(
                select(CaseRow, AssignmentRow.started_at)
                .join(
                    AssignmentRow,
                    and_(
                        AssignmentRow.case_id == CaseRow.case_id,
                        AssignmentRow.ended_at.is_(None),
                    ),
                )
                .where(CaseRow.assignment_pending.is_(True))
            )
            return [(case, started) for case, started in rows]

    def waiting(self, queue: str, limit: int) -> list[CaseRow]:
        """Unowned active cases of a queue, most urgent first: what the assigner hands out."""
        query = select(CaseRow).where(
            CaseRow.queue == queue,
            CaseRow.assignee.is_(None),
            CaseRow.status.in_(ACTIVE_STATUSES),
        )
        with self._sessions() as session:
            return list(session.scalars(urgency_order(query).limit(limit)))

    def outcome(self, event_ids: Sequence[str]) -> CaseEventRow | None:
        """The first of these events the store holds, if any."""
        with self._sessions() as session:
            return session.scalars(
                select(CaseEventRow).where(CaseEventRow.event_id.in_(list(event_ids))).limit(1)
            ).first()

    def end_cursor(self) -> dict[int, int]:
        """The last projected offset of each partition: where a change stream starts."""
        with self._sessions() as session:
            rows = session.execute(
                select(CaseEventRow.kafka_partition, func.max(CaseEventRow.kafka_offset))
                .where(CaseEventRow.kafka_partition.is_not(None))
                .group_by(CaseEventRow.kafka_partition)
            )
            return {int(p): int(o) for p, o in rows if p is not None and o is not None}

    def changes_after(self, cursor: Mapping[int, int], limit: int = 500) -> list[ChangedEvent]:
        """Events projected after `cursor` (partition → last offset seen), in topic order."""
        after = [
            and_(CaseEventRow.kafka_partition == p, CaseEventRow.kafka_offset > o)
            for p, o in cursor.items()
        ]
        condition = (
            or_(*after, CaseEventRow.kafka_partition.not_in(list(cursor))) if cursor else true()
        )
        query = (
            select(CaseEventRow, CaseRow.queue, CaseRow.assignee)
            .outerjoin(CaseRow, CaseRow.case_id == CaseEventRow.case_id)
            .where(CaseEventRow.kafka_partition.is_not(None), condition)
            .order_by(CaseEventRow.kafka_partition, CaseEventRow.kafka_offset)
            .limit(limit)
        )
        with self._sessions() as session:
            return [
                ChangedEvent(
                    partition=int(event.kafka_partition or 0),
                    offset=int(event.kafka_offset or 0),
                    event_id=event.event_id,
                    case_id=event.case_id,
                    type=event.type,
                    at=event.at,
                    reason=event.reason,
                    queue=queue,
                    assignee=assignee,
                )
                for event, queue, assignee in session.execute(query)
            ]
