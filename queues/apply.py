"""What each case event does to the case store, inside a given session.

Kafka-free on purpose: the projection feeds it records, unit tests feed it bytes.
Every event with a valid envelope is recorded in `case_events` (the audit trail),
including types this version does not know; only known types change cases. An
event whose id is already recorded is skipped entirely, which makes redelivery harmless.

A batch is applied in memory, in order, to the rows it loaded (`WorkingSet`), so all of
a case's events in the batch fold into one row, which is written once with the batch's
other rows in a few bulk statements. Each known type has one `EventHandler`: the
contract its payload is validated against (once) and the function that applies it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from queues.batch_rows import AssignmentValues, CaseValues
from queues.effort import EffortBatch, EffortPolicy, count_message
from queues.slo import SloSample, slo_samples
from queues.working_set import WorkingSet
from schemas import (
    Case,
    CaseEvent,
    CaseEventType,
    CaseOpenedPayload,
    CaseRoutedPayload,
    CaseStatus,
    MessageAppendedPayload,
)

log = logging.getLogger(__name__)

_PREVIEW_BYTES = 200


@dataclass(frozen=True)
class SourceRecord:
    """One raw record off the events topic: its value and where it came from."""

    value: bytes | None
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None
    timestamp_ms: int | None = None
    """The record's Kafka timestamp (milliseconds since the epoch), when known."""


class Outcome(StrEnum):
    """What applying one record did."""

    APPLIED = "applied"
    """A known event, recorded and applied to the case."""
    RECORDED = "recorded"
    """An event of a type this version does not apply: recorded for audit only."""
    INVALID_PAYLOAD = "invalid_payload"
    """A known type whose payload does not validate: recorded for audit, not applied."""
    DUPLICATE = "duplicate"
    """The event id was already recorded: nothing changed."""
    MALFORMED = "malformed"
    """Not a case event at all: nothing stored."""
    FAILED = "failed"
    """Applying the event failed on its own and it was skipped (set by the batch writer)."""


@dataclass(frozen=True)
class Applied:
    """The outcome of one record, with the event type when the envelope parsed."""

    outcome: Outcome
    event_type: str | None = None
    samples: tuple[SloSample, ...] = ()
    """SLO measurements of a newly recorded event, counted once it is committed."""
    detail: str = ""
    """Why a record was not applied (malformed, invalid payload, failed), for its dead letter."""


PayloadT = TypeVar("PayloadT", bound=BaseModel)


@dataclass(frozen=True)
class EventHandler(Generic[PayloadT]):
    """What one event type does to the store: its payload's contract and how it applies.

    `apply` gets the payload validated (the only validation it gets) and changes the
    batch's rows in memory; it must validate nothing itself before changing them.
    """

    payload: type[PayloadT]
    apply: Callable[[WorkingSet, CaseEvent, PayloadT], None]


class EventApplier:
    """Applies case events to a session; the caller owns the transaction."""

    def __init__(
        self,
        effort: EffortPolicy | None = None,
        handlers: Mapping[str, EventHandler[Any]] | None = None,
    ) -> None:
        """Apply the event types of `handlers` (default `HANDLERS`); others are only recorded.

        `effort` sets how customer effort is judged (`queues.effort`).
        """
        self._effort = effort or EffortPolicy()
        self._handlers: dict[str, EventHandler[Any]] = dict(
            HANDLERS if handlers is None else handlers
        )

    @property
    def known_types(self) -> frozenset[str]:
        """The event types this version applies; others are only recorded."""
        return frozenset(self._handlers)

    def apply_batch(self, session: Session, records: Sequence[SourceRecord]) -> list[Applied]:
        """Parse and apply `records` in order, one outcome per record, and write the rows.

        The rows are written in the session's transaction, which the caller commits.
        """
        session.flush()  # whatever the caller added before goes first, as it would have
        parsed = [(record, _parse(record)) for record in records]
        rows = WorkingSet.load(
            session, [event for _, event in parsed if isinstance(event, CaseEvent)]
        )
        results: list[Applied] = []
        effort = rows.effort = EffortBatch(self._effort)
        for record, event in parsed:
            if not isinstance(event, CaseEvent):
                results.append(Applied(Outcome.MALFORMED, detail=event))
            else:
                effort.written_at = record.timestamp_ms
                results.append(self.apply_event(rows, event, record.partition, record.offset))
        rows.write()
        effort.finish(session)  # after the write: it queries the batch's cases
        return results

    def apply_event(
        self,
        rows: WorkingSet,
        event: CaseEvent,
        partition: int | None = None,
        offset: int | None = None,
    ) -> Applied:
        """Record one parsed event in the audit trail and apply it to its case.

        When the working set carries an effort batch, the event counts towards customer
        effort too (`queues.effort`).
        """
        if rows.has_event(event.event_id):
            return Applied(Outcome.DUPLICATE, event.type)
        rows.add_event(event, partition, offset)
        samples = tuple(slo_samples(event, rows.case(event.case_id)))
        handler = self._handlers.get(event.type)
        if handler is None:
            existing = rows.case(event.case_id)
            if existing is not None:
                existing.last_event_at = max(existing.last_event_at, event.at)
            if rows.effort is not None:
                rows.effort.note(existing, event)
            return Applied(Outcome.RECORDED, event.type, samples)
        try:
            payload = handler.payload.model_validate(event.payload)
        except ValidationError as error:
            log.warning(
                "event %s (%s) has an invalid payload; recorded, not applied: %s",
                event.event_id,
                event.type,
                _one_line(error),
                extra={"case_id": event.case_id, "trace_id": event.event_id},
            )
            return Applied(Outcome.INVALID_PAYLOAD, event.type, detail=_one_line(error))
        handler.apply(rows, event, payload)
        if rows.effort is not None:
            rows.effort.note(rows.case(event.case_id), event)
        return Applied(Outcome.APPLIED, event.type, samples)


def _parse(record: SourceRecord) -> CaseEvent | str:
    """The record's event, or why it is not a case event (logged)."""
    try:
        if record.value is None:
            raise ValueError("record has no value (tombstone)")
        return CaseEvent.model_validate_json(record.value)
    except (ValidationError, ValueError) as error:
        log.warning(
            "skipping malformed record at partition %s offset %s: %s; value starts %r",
            record.partition,
            record.offset,
            _one_line(error),
            (record.value or b"")[:_PREVIEW_BYTES],
            extra={"trace_id": f"partition {record.partition} offset {record.offset}"},
        )
        return _one_line(error)


def _apply_case_opened(rows: WorkingSet, event: CaseEvent, payload: CaseOpenedPayload) -> None:
    case = _case_for(rows, event, payload.customer_id)
    if case.opened_at is None:
        case.opened_at = payload.opened_at
    case.channels = _merged(case.channels, [payload.channel])
    _touch(case, event.at)


def _apply_message_appended(
    rows: WorkingSet, event: CaseEvent, payload: MessageAppendedPayload
) -> None:
    case = _case_for(rows, event, payload.customer_id)
    message = payload.message
    if not rows.has_message(case.case_id, payload.message_key):
        rows.add_message(
            case_id=case.case_id,
            message_key=payload.message_key,
            channel=message.channel,
            direction=message.direction,
            sender=message.sender,
            external_id=message.external_id,
            subject=message.subject,
            text=message.text,
            sent_at=message.sent_at,
            event_id=event.event_id,
        )
        case.message_count += 1
        count_message(case, message.direction, message.channel)
    if message.direction == "inbound":
        case.channel = message.channel
    case.channels = _merged(case.channels, [message.channel])
    _touch(case, event.at)


def _apply_case_routed(rows: WorkingSet, event: CaseEvent, payload: CaseRoutedPayload) -> None:
    routed = payload.case
    rows.ensure_queue(routed.queue, event.at)
    case = _case_for(rows, event, routed.customer_id)
    case.customer_id = routed.customer_id
    case.queue = routed.queue
    case.priority = routed.priority.value
    case.status = routed.status.value
    case.tags = list(routed.tags)
    case.matched = list(routed.matched)
    case.sla = {name: clock.model_dump(mode="json") for name, clock in routed.sla.items()}
    case.channels = _merged(case.channels, routed.channels)
    case.rules_version = payload.rules_version or routed.rules_version
    if case.opened_at is None:
        case.opened_at = routed.opened_at
    case.sla_due_at = _earliest_due(routed)
    _apply_ownership(rows, case, routed, event)
    _touch(case, event.at)


HANDLERS: Mapping[str, EventHandler[Any]] = {
    CaseEventType.CASE_OPENED.value: EventHandler(CaseOpenedPayload, _apply_case_opened),
    CaseEventType.MESSAGE_APPENDED.value: EventHandler(
        MessageAppendedPayload, _apply_message_appended
    ),
    CaseEventType.CASE_ROUTED.value: EventHandler(CaseRoutedPayload, _apply_case_routed),
    # the same snapshot after an agent action, an SLA change or an escalation
    CaseEventType.CASE_UPDATED.value: EventHandler(CaseRoutedPayload, _apply_case_routed),
}
"""The event types this version applies to cases; add a type with its contract here."""


_COUNTING = frozenset({"running", "warning", "breached"})


def _earliest_due(routed: Case) -> datetime | None:
    """The earliest due time of the clocks still counting: what orders a queue."""
    due = [
        clock.due_at
        for clock in routed.sla.values()
        if clock.due_at is not None and clock.state.value in _COUNTING
    ]
    return min(due, default=None)


def _apply_ownership(rows: WorkingSet, case: CaseValues, routed: Case, event: CaseEvent) -> None:
    """Follow the snapshot's owner; each change of owner ends one assignment and starts another."""
    previous, pending_before = case.assignee, case.assignment_pending
    case.assignee, case.assignment_pending = routed.assignee, routed.assignment_pending
    if routed.assignee == previous:
        current = rows.open_assignment(case.case_id)
        if current is not None and pending_before and not routed.assignment_pending:
            current.accepted_at = event.at
        return
    rows.end_assignment(case.case_id, event.at, event.reason)
    if routed.assignee is not None:
        rows.start_assignment(
            AssignmentValues(
                event_id=event.event_id,
                case_id=case.case_id,
                agent=routed.assignee,
                queue=routed.queue,
                started_at=event.at,
                started_reason=event.reason,
                accepted_at=None if routed.assignment_pending else event.at,
                ended_at=None,
                ended_reason=None,
            )
        )


def _case_for(rows: WorkingSet, event: CaseEvent, customer_id: str) -> CaseValues:
    """The event's case, created bare if this is the first event the store sees for it."""
    case = rows.case(event.case_id)
    if case is None:
        case = CaseValues(
            case_id=event.case_id,
            customer_id=customer_id,
            queue=None,
            priority=None,
            status=CaseStatus.NEW.value,
            tags=[],
            channels=[],
            matched=[],
            sla={},
            rules_version=None,
            opened_at=None,
            updated_at=event.at,
            last_event_at=event.at,
            message_count=0,
            assignee=None,
            assignment_pending=False,
            channel=None,
            sla_due_at=None,
            contacts=0,
            agent_replies=0,
            channel_switches=0,
            reopens=0,
        )
        rows.add_case(case)
    return case


def _touch(case: CaseValues, at: datetime) -> None:
    """Times come from events, never the wall clock, so a rebuild gives identical rows."""
    case.updated_at = max(case.updated_at, at)
    case.last_event_at = max(case.last_event_at, at)


def _merged(existing: Iterable[str], more: Iterable[str]) -> list[str]:
    """`existing` followed by the new items of `more`, in order, without repeats."""
    result = list(existing)
    for item in more:
        if item not in result:
            result.append(item)
    return result


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
