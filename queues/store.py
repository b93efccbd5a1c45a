"""Read access to the case store: cases, their messages and their audit trail.

Returns plain frozen dataclasses, never ORM objects, so callers (CLI, later the desk
API) cannot change the projection's rows by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Select, case, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from queues.engine import make_engine, make_session_factory
from queues.migrate import current_revision
from queues.models import CaseEventRow, CaseRow, MessageRow
from schemas import PRIORITY_ORDER

DEFAULT_LIST_LIMIT = 50


class StoreNotInitialisedError(Exception):
    """The database has no case store schema yet (run `escalator db upgrade`)."""


def rfc3339(value: datetime | None) -> str | None:
    """An aware datetime as RFC 3339 in UTC with a `Z`, or None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def messages_of(case_id: str) -> Select[MessageRow]:
    """A case's messages on every channel, by time sent."""
    return (
        select(MessageRow)
        .where(MessageRow.case_id == case_id)
        .order_by(MessageRow.sent_at, MessageRow.message_key)
    )


def events_of(case_id: str) -> Select[CaseEventRow]:
    """A case's events in the order they happened (then as the stream wrote them)."""
    return (
        select(CaseEventRow)
        .where(CaseEventRow.case_id == case_id)
        .order_by(CaseEventRow.at, CaseEventRow.kafka_offset, CaseEventRow.event_id)
    )


def redacted_url(database_url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    return make_url(database_url).render_as_string(hide_password=True)


@dataclass(frozen=True)
class CaseSummary:
    """One case as listed: where it is routed and how urgent it is."""

    case_id: str
    queue: str | None
    priority: str | None
    status: str
    customer_id: str
    channels: list[str]
    tags: list[str]
    message_count: int
    opened_at: datetime | None
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, times in RFC 3339 UTC."""
        return {
            "case_id": self.case_id,
            "queue": self.queue,
            "priority": self.priority,
            "status": self.status,
            "customer_id": self.customer_id,
            "channels": list(self.channels),
            "tags": list(self.tags),
            "message_count": self.message_count,
            "opened_at": rfc3339(self.opened_at),
            "updated_at": rfc3339(self.updated_at),
        }


@dataclass(frozen=True)
class MessageView:
    """One message of a case."""

    message_key: str
    channel: str
    direction: str
    sender: str | None
    subject: str | None
    text: str
    sent_at: datetime

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, times in RFC 3339 UTC."""
        return {
            "message_key": self.message_key,
            "channel": self.channel,
            "direction": self.direction,
            "sender": self.sender,
            "subject": self.subject,
            "text": self.text,
            "sent_at": rfc3339(self.sent_at),
        }


@dataclass(frozen=True)
class EventView:
    """One recorded case event: what was decided, when, and why."""

    event_id: str
    type: str
    at: datetime
    reason: str
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, times in RFC 3339 UTC."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "at": rfc3339(self.at),
            "reason": self.reason,
            "payload": self.payload,
        }


@dataclass(frozen=True)
class CaseDetail:
    """A case with its routing decision, SLA clocks, messages and events."""

    summary: CaseSummary
    matched: list[str]
    sla: dict[str, Any]
    rules_version: str | None
    last_event_at: datetime
    messages: list[MessageView]
    events: list[EventView]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, times in RFC 3339 UTC."""
        return {
            **self.summary.to_json(),
            "matched": list(self.matched),
            "sla": self.sla,
            "rules_version": self.rules_version,
            "last_event_at": rfc3339(self.last_event_at),
            "messages": [message.to_json() for message in self.messages],
            "events": [event.to_json() for event in self.events],
        }


PRIORITY_RANK = case(
    {priority.value: priority.rank for priority in PRIORITY_ORDER},
    value=CaseRow.priority,
    else_=len(PRIORITY_ORDER),
)
"""SQL: a case's priority as its rank (0 urgent … 3 low; unknown last), for ordering."""


class CaseStore:
    """Queries over the case store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session_factory: sessionmaker[Session] = make_session_factory(engine)

    @classmethod
    def open(cls, database_url: str) -> CaseStore:
        """Connect to the store at `database_url`; refuse a database that was never migrated."""
        engine = make_engine(database_url)
        if current_revision(engine) is None:
            engine.dispose()
            raise StoreNotInitialisedError(
                f"no case store at {redacted_url(database_url)}: run `escalator db upgrade`"
            )
        return cls(engine)

    def count_cases(self) -> int:
        """How many cases the store holds."""
        with self._session_factory() as session:
            return session.scalar(select(func.count()).select_from(CaseRow)) or 0

    def list_cases(
        self,
        *,
        queue: str | None = None,
        status: str | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
    ) -> list[CaseSummary]:
        """Cases, most urgent first, then oldest first; optionally of one queue or status."""
        query = select(CaseRow).order_by(
            PRIORITY_RANK,
            CaseRow.opened_at.is_(None),  # NULLs last on every dialect
            CaseRow.opened_at,
            CaseRow.case_id,
        )
        if queue is not None:
            query = query.where(CaseRow.queue == queue)
        if status is not None:
            query = query.where(CaseRow.status == status)
        with self._session_factory() as session:
            return [_summary(row) for row in session.scalars(query.limit(limit))]

    def get_case(self, case_id: str) -> CaseDetail | None:
        """One case with its messages (by time sent) and events (by time), or None."""
        with self._session_factory() as session:
            row = session.get(CaseRow, case_id)
            if row is None:
                return None
            messages = session.scalars(messages_of(case_id))
            events = session.scalars(events_of(case_id))
            return CaseDetail(
                summary=_summary(row),
                matched=list(row.matched),
                sla=dict(row.sla),
                rules_version=row.rules_version,
                last_event_at=row.last_event_at,
                messages=[
                    MessageView(
                        message_key=message.message_key,
                        channel=message.channel,
                        direction=message.direction,
                        sender=message.sender,
                        subject=message.subject,
                        text=message.text,
                        sent_at=message.sent_at,
                    )
                    for message in messages
                ],
                events=[
                    EventView(
                        event_id=event.event_id,
                        type=event.type,
                        at=event.at,
                        reason=event.reason,
                        payload=dict(event.payload),
                    )
                    for event in events
                ],
            )

    def close(self) -> None:
        """Release the store's connections."""
        self.engine.dispose()


def _summary(row: CaseRow) -> CaseSummary:
    return CaseSummary(
        case_id=row.case_id,
        queue=row.queue,
        priority=row.priority,
        status=row.status,
        customer_id=row.customer_id,
        channels=list(row.channels),
        tags=list(row.tags),
        message_count=row.message_count,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
    )
