"""SQLAlchemy 2 models of the case store: a projection of `cases.events`.

The schema is dialect-neutral: JSON columns use SQLAlchemy's generic `JSON` type and
every timestamp goes through `UtcDateTime`, which stores UTC and always reads back an
aware datetime, on SQLite (which has no time zones) as on PostgreSQL (`timestamptz`).

Agents and assignments (issue 6) will get their own tables and a nullable
`cases.assigned_agent_id`; nothing here needs to change shape for them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
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
    """An agent queue, created the first time a case is routed to it."""

    __tablename__ = "queues"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime]


class CaseRow(Base):
    """A case's current state: who, where it is routed, how urgent, its SLA clocks."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_queue_status", "queue", "status"),
        Index("ix_cases_customer_id", "customer_id"),
    )

    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255))
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
    message_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str | None] = mapped_column(String(512))
    external_id: Mapped[str | None] = mapped_column(String(512))
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
