"""SQLAlchemy 2 models of the case store: a projection of `cases.events`.

The schema is dialect-neutral: JSON columns use SQLAlchemy's generic `JSON` type and
every timestamp goes through `UtcDateTime`, which stores UTC and always reads back an
aware datetime, on SQLite (which has no time zones) as on PostgreSQL (`timestamptz`).

Two kinds of rows live here. Projected rows (cases, messages, case events, assignments)
come only from `cases.events` and a rebuild recreates them identically. Desk rows
(agents, their queue memberships, and the settings columns of queues) are configuration
written by `escalator agents` and the desk API; a rebuild keeps them.

Columns that hold contract fields are as long as the contracts allow (`schemas.limits`):
ids of 1,024 characters, message keys of `channel:external_id`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from schemas.limits import MAX_ID_LENGTH, MAX_MESSAGE_KEY_LENGTH

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so later migrations can alter them on every dialect."""


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC before it is written."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the case store needs aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read back an aware UTC datetime (SQLite returns naive values, which are UTC)."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every case store table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class QueueRow(Base):
    """An agent queue: created the first time a case is routed to it (or by `escalator agents`).

    `strategy` (round_robin | least_loaded | skills) and `mode` (push | pull) decide how
    its cases reach agents; `skills` are required of every agent who gets one of its cases.
    """

    __tablename__ = "queues"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime]
    strategy: Mapped[str] = mapped_column(String(16), default="least_loaded")
    mode: Mapped[str] = mapped_column(String(8), default="push")
    skills: Mapped[list[str]] = mapped_column(default=list)
    accept_timeout_seconds: Mapped[int] = mapped_column(Integer, default=120)


class AgentRow(Base):
    """A person who works cases: role, skills, capacity per channel, presence, hashed token."""

    __tablename__ = "agents"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(8))
    skills: Mapped[list[str]]
    capacity: Mapped[dict[str, Any]]
    presence: Mapped[str] = mapped_column(String(8))
    presence_at: Mapped[datetime]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime | None]
    presence_id: Mapped[str | None] = mapped_column(String(128))
    """The last presence record (`agents.presence`) applied to this row."""
    heartbeat_at: Mapped[datetime | None]
    """The agent's last heartbeat (console open, event stream, or `POST .../heartbeat`)."""


class QueueMemberRow(Base):
    """An agent's membership of a queue: they see and work its cases."""

    __tablename__ = "queue_members"

    queue: Mapped[str] = mapped_column(
        ForeignKey("queues.name", ondelete="CASCADE"), primary_key=True
    )
    agent: Mapped[str] = mapped_column(
        ForeignKey("agents.name", ondelete="CASCADE"), primary_key=True
    )


class AssignmentRow(Base):
    """One stretch of a case's ownership by one agent, from the events that began and ended it."""

    __tablename__ = "assignments"
    __table_args__ = (
        Index("ix_assignments_case_id", "case_id"),
        Index("ix_assignments_agent_ended_at", "agent", "ended_at"),
    )

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64))
    agent: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime]
    started_reason: Mapped[str] = mapped_column(Text)
    accepted_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(Text)


class CaseRow(Base):
    """A case's current state: who, where it is routed, how urgent, its SLA clocks."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_queue_status", "queue", "status"),
        Index("ix_cases_customer_id", "customer_id"),
        Index("ix_cases_assignee", "assignee"),
    )

    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(MAX_ID_LENGTH))
    queue: Mapped[str | None] = mapped_column(ForeignKey("queues.name"))
    priority: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    tags: Mapped[list[str]]
    channels: Mapped[list[str]]
    matched: Mapped[list[str]]
    sla: Mapped[dict[str, Any]]
    rules_version: Mapped[str | None] = mapped_column(String(128))
    opened_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    last_event_at: Mapped[datetime]
    message_count: Mapped[int] = mapped_column(Integer)
    assignee: Mapped[str | None] = mapped_column(String(64), default=None)
    assignment_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    channel: Mapped[str | None] = mapped_column(String(32), default=None)
    """The channel of the latest customer message: where a reply goes, whose capacity it uses."""
    sla_due_at: Mapped[datetime | None] = mapped_column(default=None)
    """The earliest due time of the clocks still counting (breached ones included)."""
    contacts: Mapped[int] = mapped_column(Integer, default=0)
    """Customer effort: the customer's messages in the case (inbound, each counted once)."""
    agent_replies: Mapped[int] = mapped_column(Integer, default=0)
    """Replies sent to the customer (agents' and staff answers; notes are not replies)."""
    channel_switches: Mapped[int] = mapped_column(Integer, default=0)
    """Times the customer wrote on another channel than their previous message's."""
    reopens: Mapped[int] = mapped_column(Integer, default=0)
    """Times the case was reopened after a resolution."""
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    """When the case was last resolved; None while it is not resolved."""
    repeat_of: Mapped[str | None] = mapped_column(String(64), default=None)
    """The customer's case whose resolution this case came back within the repeat window of."""

    # Declared so the unit of work writes a new queue before the cases that point at it.
    queue_row: Mapped[QueueRow | None] = relationship(lazy="raise")


class MessageRow(Base):
    """One message of a case (customer, agent reply or note), keyed by case and message key."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_case_id_sent_at", "case_id", "sent_at"),)

    # A natural key, not a surrogate: a rebuild from the topic yields identical rows.
    case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.case_id", ondelete="CASCADE"), primary_key=True
    )
    message_key: Mapped[str] = mapped_column(String(MAX_MESSAGE_KEY_LENGTH), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str | None] = mapped_column(String(MAX_ID_LENGTH))
    external_id: Mapped[str | None] = mapped_column(String(MAX_ID_LENGTH))
    subject: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime]
    event_id: Mapped[str] = mapped_column(String(64))

    # Declared so the unit of work writes a new case before its messages.
    case: Mapped[CaseRow] = relationship(lazy="raise")


class CaseEventRow(Base):
    """One case event exactly as it came off `cases.events`: the audit trail.

    Every event with a valid envelope is kept, including types this version does not
    apply. Its `event_id` is the projection's idempotency key. No foreign key to
    `cases`: the audit keeps events even for cases the store never materialised.
    """

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case_id_at", "case_id", "at"),)

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    kafka_partition: Mapped[int | None] = mapped_column(Integer)
    kafka_offset: Mapped[int | None] = mapped_column(BigInteger)


class CaseResolutionRow(Base):
    """One resolution of a case with the customer's effort up to it, and its settled verdict.

    Counted once in `escalator_cases_resolved_total` (and, when it was a first-contact
    resolution, `escalator_first_contact_resolved_total`) when it settles: once the
    projection's event time passes `settles_at` (the repeat window and the grace after it).
    """

    __tablename__ = "case_resolutions"
    __table_args__ = (
        Index("ix_case_resolutions_customer_id_resolved_at", "customer_id", "resolved_at"),
        Index("ix_case_resolutions_settled_settles_at", "settled", "settles_at"),
        Index("ix_case_resolutions_case_id", "case_id"),
    )

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The `case.resolved` event."""
    case_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(MAX_ID_LENGTH))
    queue: Mapped[str] = mapped_column(String(100))
    resolved_at: Mapped[datetime]
    repeat_until: Mapped[datetime]
    """The end of the repeat window: a new case of the customer until then is a repeat contact."""
    settles_at: Mapped[datetime]
    contacts: Mapped[int] = mapped_column(Integer)
    channel_switches: Mapped[int] = mapped_column(Integer)
    agent_replies: Mapped[int] = mapped_column(Integer)
    reopens: Mapped[int] = mapped_column(Integer)
    """Times the case had been reopened before this resolution."""
    reopened_at: Mapped[datetime | None] = mapped_column(default=None)
    """When the case was reopened after this resolution (before it settled), if it was."""
    settled: Mapped[bool] = mapped_column(Boolean, default=False)
    first_contact: Mapped[bool | None] = mapped_column(Boolean, default=None)
    """The settled verdict: one agent reply, no reopen, no repeat contact in the window."""


class EffortCounterRow(Base):
    """A running total behind the effort metrics, updated in the projection's transactions.

    `family` is a metric family (`case_contacts`, `repeat_contacts`, ...); `le` is a
    histogram bucket's upper bound, `sum` or `count` for histograms and empty for counters.
    The row `event_clock` holds the latest event time applied (microseconds since the epoch).
    """

    __tablename__ = "effort_counters"

    family: Mapped[str] = mapped_column(String(64), primary_key=True)
    queue: Mapped[str] = mapped_column(String(100), primary_key=True)
    le: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class CustomerMergeRow(Base):
    """An operator's merge of one customer into another, from `customers.identity`.

    A split deletes the row. The customer's history covers every customer merged into it.
    """

    __tablename__ = "customer_merges"
    __table_args__ = (Index("ix_customer_merges_merged_into", "merged_into"),)

    customer_id: Mapped[str] = mapped_column(String(MAX_ID_LENGTH), primary_key=True)
    merged_into: Mapped[str] = mapped_column(String(MAX_ID_LENGTH))
    reason: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
