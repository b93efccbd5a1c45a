"""The rows one batch of events reads and writes: loaded in a few queries, written in a few.

A batch loads what its events can touch (their recorded ids, their cases and open
assignments, their message keys, the queue names) with one query each, applies every
event in memory, and `write` then sends one bulk statement per table: the new events,
the new queues, each changed case once (however many of the batch's events it took),
the new messages and the new or changed assignments. SQLAlchemy's unit of work is not
involved: its bookkeeping per object and per attribute was most of the projection's cost.

Cases and assignments are held as plain objects (`queues.batch_rows`) that handlers
change; `write` stores those whose values differ from what was loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.orm import Session

from queues import bulk
from queues.batch_rows import (
    ASSIGNMENTS,
    CASES,
    AssignmentValues,
    CaseValues,
    RowShape,
    ValuesT,
)
from queues.effort import EffortBatch
from queues.models import CaseEventRow, MessageRow, QueueRow
from schemas import CaseEvent, CaseEventType

_EVENTS: Table = CaseEventRow.__table__  # type: ignore[assignment]
_MESSAGES: Table = MessageRow.__table__  # type: ignore[assignment]
_QUEUES: Table = QueueRow.__table__  # type: ignore[assignment]


class WorkingSet:
    """Rows of one batch: what exists already, plus what the batch adds and changes."""

    def __init__(
        self,
        session: Session,
        event_ids: Iterable[str] = (),
        cases: Iterable[CaseValues] = (),
        message_keys: Iterable[tuple[str, str]] = (),
        queue_names: Iterable[str] = (),
    ) -> None:
        self.session = session
        self._event_ids = set(event_ids)
        self._cases: dict[str, CaseValues] = {}
        self._loaded_cases: dict[str, tuple[Any, ...]] = {}
        for case in cases:
            self._keep_loaded_case(case)
        self._message_keys = set(message_keys)
        self._queue_names = set(queue_names)
        self._open_assignments: dict[str, AssignmentValues] = {}
        self._assignments: dict[str, AssignmentValues] = {}
        self._loaded_assignments: dict[str, tuple[Any, ...]] = {}
        self._new_events: list[dict[str, Any]] = []
        self._new_messages: list[dict[str, Any]] = []
        self._new_queues: dict[str, datetime] = {}
        self.effort: EffortBatch | None = None
        """What the batch does to customer effort, when the applier counts it."""

    @classmethod
    def load(cls, session: Session, events: Sequence[CaseEvent]) -> WorkingSet:
        """Load what `events` may touch: their recorded ids, cases, messages and all queues.

        Cases and messages are loaded only for events not recorded yet: a redelivered
        batch costs one query.
        """
        connection = session.connection()
        rows = cls(session)
        event_ids = {event.event_id for event in events}
        if event_ids:
            rows._event_ids.update(
                connection.scalars(
                    select(_EVENTS.c.event_id).where(
                        bulk.one_of(connection, _EVENTS.c.event_id, event_ids)
                    )
                )
            )
        new = [event for event in events if event.event_id not in rows._event_ids]
        if not new:
            return rows
        rows._queue_names.update(connection.scalars(select(_QUEUES.c.name)))
        stored = rows._load_cases(connection, {event.case_id for event in new})
        # A message row needs its case row (a foreign key), and an assignment is written
        # with its case: a case the store does not hold yet has neither, so only the
        # stored cases are looked up, which in a first pass is almost none of them.
        message_keys = {
            (event.case_id, key)
            for event in new
            if event.case_id in stored
            and event.type == CaseEventType.MESSAGE_APPENDED.value
            and isinstance(key := event.payload.get("message_key"), str)
        }
        if message_keys:
            rows._load_message_keys(connection, message_keys)
        return rows

    def _load_cases(self, connection: Connection, case_ids: set[str]) -> set[str]:
        """Load the stored cases among `case_ids` and their open assignments; their ids."""
        if not case_ids:
            return set()
        cases = CASES.table
        for found in connection.execute(
            select(cases).where(bulk.one_of(connection, cases.c.case_id, case_ids))
        ):
            self._keep_loaded_case(CASES.from_row(found))
        stored = set(self._cases)
        if not stored:
            return stored
        assignments = ASSIGNMENTS.table
        for found in connection.execute(
            select(assignments).where(
                bulk.one_of(connection, assignments.c.case_id, stored),
                assignments.c.ended_at.is_(None),
            )
        ):
            assignment = ASSIGNMENTS.from_row(found)
            self._open_assignments[assignment.case_id] = assignment
            self._assignments[assignment.event_id] = assignment
            self._loaded_assignments[assignment.event_id] = ASSIGNMENTS.snapshot(assignment)
        return stored

    def _load_message_keys(self, connection: Connection, keys: set[tuple[str, str]]) -> None:
        """Which of these (case, message key) pairs the store holds.

        Asked as two lists the primary key's index answers (case ids, message keys), then
        paired here: a list of pairs (`(a, b) IN ((…), …)`) was planned by PostgreSQL as
        an OR of every pair, 17 ms per batch of 500 events.
        """
        messages = _MESSAGES
        found = connection.execute(
            select(messages.c.case_id, messages.c.message_key).where(
                bulk.one_of(connection, messages.c.case_id, {case_id for case_id, _ in keys}),
                bulk.one_of(connection, messages.c.message_key, {key for _, key in keys}),
            )
        )
        self._message_keys.update(pair for pair in found.tuples() if pair in keys)

    def _keep_loaded_case(self, case: CaseValues) -> None:
        self._cases[case.case_id] = case
        self._loaded_cases[case.case_id] = CASES.snapshot(case)

    def has_event(self, event_id: str) -> bool:
        """Whether the event is recorded already (before or earlier in this batch)."""
        return event_id in self._event_ids

    def add_event(self, event: CaseEvent, partition: int | None, offset: int | None) -> None:
        """Record an event in the audit trail, exactly as it came."""
        self._event_ids.add(event.event_id)
        self._new_events.append(
            {
                "event_id": event.event_id,
                "case_id": event.case_id,
                "type": event.type,
                "at": event.at,
                "reason": event.reason,
                "payload": event.payload,
                "kafka_partition": partition,
                "kafka_offset": offset,
            }
        )

    def case(self, case_id: str) -> CaseValues | None:
        """The case, if the store or this batch has it."""
        return self._cases.get(case_id)

    def add_case(self, row: CaseValues) -> None:
        """Create a case."""
        self._cases[row.case_id] = row

    def has_message(self, case_id: str, message_key: str) -> bool:
        """Whether the case already holds a message with this key."""
        return (case_id, message_key) in self._message_keys

    def add_message(
        self,
        *,
        case_id: str,
        message_key: str,
        channel: str,
        direction: str,
        sender: str | None,
        external_id: str | None,
        subject: str | None,
        text: str,
        sent_at: datetime,
        event_id: str,
    ) -> None:
        """Add a message to its case (a row of `messages`)."""
        self._message_keys.add((case_id, message_key))
        self._new_messages.append(
            {
                "case_id": case_id,
                "message_key": message_key,
                "channel": channel,
                "direction": direction,
                "sender": sender,
                "external_id": external_id,
                "subject": subject,
                "text": text,
                "sent_at": sent_at,
                "event_id": event_id,
            }
        )

    def ensure_queue(self, name: str, created_at: datetime) -> None:
        """Create the queue unless it exists."""
        if name not in self._queue_names:
            self._queue_names.add(name)
            self._new_queues[name] = created_at

    def open_assignment(self, case_id: str) -> AssignmentValues | None:
        """The case's current (not ended) assignment, if any."""
        return self._open_assignments.get(case_id)

    def start_assignment(self, row: AssignmentValues) -> None:
        """Record a new assignment as the case's current one."""
        self._open_assignments[row.case_id] = row
        self._assignments[row.event_id] = row

    def end_assignment(self, case_id: str, at: datetime, reason: str) -> None:
        """End the case's current assignment, if it has one."""
        row = self._open_assignments.pop(case_id, None)
        if row is not None:
            row.ended_at = at
            row.ended_reason = reason

    def write(self) -> None:
        """Send what the batch recorded and changed: one statement per table, in key order.

        Events are inserted plainly: the batch filtered out those recorded before it, so a
        conflict means another writer recorded one meanwhile, and the failed statement
        (rolling back the batch) is what lets the caller retry it as duplicates. The other
        rows are written whatever is there (`ON CONFLICT`), which replaying the same events
        makes the same again.
        """
        connection = self.session.connection()
        bulk.insert_rows(connection, _EVENTS, self._new_events)
        bulk.insert_new_rows(
            connection,
            _QUEUES,
            [{"name": name, "created_at": at} for name, at in self._new_queues.items()],
        )
        bulk.upsert_rows(connection, CASES.table, _changed(CASES, self._cases, self._loaded_cases))
        bulk.insert_new_rows(connection, _MESSAGES, self._new_messages)
        bulk.upsert_rows(
            connection,
            ASSIGNMENTS.table,
            _changed(ASSIGNMENTS, self._assignments, self._loaded_assignments),
        )


def _changed(
    shape: RowShape[ValuesT], rows: dict[str, ValuesT], loaded: dict[str, tuple[Any, ...]]
) -> list[dict[str, Any]]:
    """The values of the rows that are new or differ from what was loaded, in key order."""
    return [
        shape.values(rows[key])
        for key in sorted(rows)
        if key not in loaded or shape.snapshot(rows[key]) != loaded[key]
    ]
