"""Builders of realistic case events (through the schemas models) and store snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, select

from queues.models import Base
from schemas import (
    Case,
    CaseEvent,
    CaseMessage,
    CaseOpenedPayload,
    CaseRoutedPayload,
    MessageAppendedPayload,
    Priority,
    SlaClockView,
)
from schemas.ids import case_id_for, event_id_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def case_id(customer_id: str) -> str:
    """The deterministic case id of a customer's first message."""
    return case_id_for(customer_id, f"email:{customer_id}-1")


def opened(customer_id: str, *, at: datetime = T0, channel: str = "email") -> CaseEvent:
    """`case.opened` for the customer's case."""
    cid = case_id(customer_id)
    payload = CaseOpenedPayload(
        customer_id=customer_id,
        channel=channel,
        opened_at=at,
        message_key=f"{channel}:{customer_id}-1",
        evidence="no open case for customer",
    )
    return CaseEvent(
        event_id=event_id_for(cid, "case.opened"),
        case_id=cid,
        type="case.opened",
        at=at,
        reason="first message from customer",
        payload=payload.model_dump(mode="json"),
    )


def appended(
    customer_id: str,
    number: int,
    *,
    at: datetime | None = None,
    channel: str = "email",
    text: str = "My order has not arrived.",
    message_key: str | None = None,
) -> CaseEvent:
    """`message.appended` of the customer's message `number` (1 is the first)."""
    cid = case_id(customer_id)
    sent_at = at or T0 + timedelta(minutes=number - 1)
    key = message_key or f"{channel}:{customer_id}-{number}"
    payload = MessageAppendedPayload(
        customer_id=customer_id,
        message_key=key,
        message=CaseMessage(
            channel=channel,
            text=text,
            sent_at=sent_at,
            sender=f"{customer_id}@example.com",
            external_id=f"{customer_id}-{number}",
            subject="Where is my order?",
        ),
        evidence="new case" if number == 1 else "open case",
    )
    return CaseEvent(
        event_id=event_id_for(cid, "message.appended", key),
        case_id=cid,
        type="message.appended",
        at=sent_at,
        reason="threaded into the customer's open case",
        payload=payload.model_dump(mode="json"),
    )


def routed(
    customer_id: str,
    *,
    queue: str = "general",
    priority: Priority = Priority.NORMAL,
    at: datetime = T0,
    tags: list[str] | None = None,
    matched: list[str] | None = None,
    channels: list[str] | None = None,
    routing: str = "1",
) -> CaseEvent:
    """`case.routed` of the customer's case to `queue`; `routing` tells routings apart."""
    cid = case_id(customer_id)
    case = Case(
        case_id=cid,
        queue=queue,
        priority=priority,
        tags=tags or [],
        customer_id=customer_id,
        channels=channels or ["email"],
        status="open",
        sla={"first_response": SlaClockView(due_at=at + timedelta(hours=8))},
        matched=matched or [],
        messages=[CaseMessage(channel="email", text="My order has not arrived.", sent_at=at)],
        opened_at=at,
        rules_version="rules-v1",
    )
    payload = CaseRoutedPayload(case=case, rules_version="rules-v1", decision={"queue": queue})
    return CaseEvent(
        event_id=event_id_for(cid, "case.routed", routing),
        case_id=cid,
        type="case.routed",
        at=at,
        reason=f"root route: queue {queue}, priority {priority.value}",
        payload=payload.model_dump(mode="json"),
    )


def other(customer_id: str, event_type: str = "sla.warning", *, at: datetime = T0) -> CaseEvent:
    """An event of a type the store does not apply (yet)."""
    cid = case_id(customer_id)
    return CaseEvent(
        event_id=event_id_for(cid, event_type, at.isoformat()),
        case_id=cid,
        type=event_type,
        at=at,
        reason="first_response at 75%",
        payload={"clock": "first_response"},
    )


def conversation(customer_id: str, *, messages: int = 2, queue: str = "general") -> list[CaseEvent]:
    """The events of one case in order: opened, its messages, routed after each message."""
    events = [opened(customer_id)]
    for number in range(1, messages + 1):
        message = appended(customer_id, number)
        events.append(message)
        events.append(routed(customer_id, queue=queue, at=message.at, routing=str(number)))
    return events


def to_bytes(event: CaseEvent) -> bytes:
    """The event as it travels on the topic."""
    return event.model_dump_json().encode()


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every case store table, sorted, for before/after comparisons."""
    tables: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = [dict(row._mapping) for row in connection.execute(select(table))]
            tables[table.name] = sorted(rows, key=repr)
    return tables


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A metric sample's value, 0 when it was never set."""
    return registry.get_sample_value(name, labels) or 0.0
