"""The rows one batch of events reads and writes, loaded with a few queries up front.

Looking rows up one event at a time costs a query (and an autoflush) per lookup; a
batch instead loads the recorded event ids, cases, message keys and queues it can
touch in four queries, then works in memory and lets the commit write everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from queues.effort import EffortBatch
from queues.models import AssignmentRow, CaseEventRow, CaseRow, MessageRow, QueueRow
from schemas import CaseEvent, CaseEventType


class WorkingSet:
    """Rows of one batch: what exists already, plus what the batch adds to the session."""

    def __init__(
        self,
        session: Session,
        event_ids: Iterable[str] = (),
        cases: Iterable[CaseRow] = (),
        message_keys: Iterable[tuple[str, str]] = (),
        queue_names: Iterable[str] = (),
    ) -> None:
        self.session = session
        self._event_ids = set(event_ids)
        self._cases = {case.case_id: case for case in cases}
        self._message_keys = set(message_keys)
        self._queue_names = set(queue_names)
        self._open_assignments: dict[str, AssignmentRow] = {}
        self.effort: EffortBatch | None = None
        """What the batch does to customer effort, when the applier counts it."""

    @classmethod
    def load(cls, session: Session, events: Sequence[CaseEvent]) -> WorkingSet:
        """Load what `events` may touch: their recorded ids, cases, messages and all queues."""
        event_ids = {event.event_id for event in events}
        case_ids = {event.case_id for event in events}
        message_keys = {
            (event.case_id, key)
            for event in events
            if event.type == CaseEventType.MESSAGE_APPENDED.value
            and isinstance(key := event.payload.get("message_key"), str)
        }
        rows = cls(session, queue_names=session.scalars(select(QueueRow.name)).all())
        if event_ids:
            rows._event_ids.update(
                session.scalars(
                    select(CaseEventRow.event_id).where(CaseEventRow.event_id.in_(event_ids))
                )
            )
        if case_ids:
            for case in session.scalars(select(CaseRow).where(CaseRow.case_id.in_(case_ids))):
                rows._cases[case.case_id] = case
            for assignment in session.scalars(
                select(AssignmentRow).where(
                    AssignmentRow.case_id.in_(case_ids), AssignmentRow.ended_at.is_(None)
                )
            ):
                rows._open_assignments[assignment.case_id] = assignment
        if message_keys:
            pair = tuple_(MessageRow.case_id, MessageRow.message_key)
            found = session.execute(
                select(MessageRow.case_id, MessageRow.message_key).where(pair.in_(message_keys))
            )
            rows._message_keys.update((case_id, key) for case_id, key in found)
        return rows

    def has_event(self, event_id: str) -> bool:
        """Whether the event is recorded already (before or earlier in this batch)."""
        return event_id in self._event_ids

    def add_event(self, row: CaseEventRow) -> None:
        """Record an event."""
        self._event_ids.add(row.event_id)
        self.session.add(row)

    def case(self, case_id: str) -> CaseRow | None:
        """The case, if the store or this batch has it."""
        return self._cases.get(case_id)

    def add_case(self, row: CaseRow) -> None:
        """Create a case."""
        self._cases[row.case_id] = row
        self.session.add(row)

    def has_message(self, case_id: str, message_key: str) -> bool:
        """Whether the case already holds a message with this key."""
        return (case_id, message_key) in self._message_keys

    def add_message(self, row: MessageRow) -> None:
        """Add a message to its case."""
        self._message_keys.add((row.case_id, row.message_key))
        self.session.add(row)

    def ensure_queue(self, name: str, created_at: datetime) -> None:
        """Create the queue unless it exists."""
        if name not in self._queue_names:
            self._queue_names.add(name)
            self.session.add(QueueRow(name=name, created_at=created_at))

    def open_assignment(self, case_id: str) -> AssignmentRow | None:
        """The case's current (not ended) assignment, if any."""
        return self._open_assignments.get(case_id)

    def start_assignment(self, row: AssignmentRow) -> None:
        """Record a new assignment as the case's current one."""
        self._open_assignments[row.case_id] = row
        self.session.add(row)

    def end_assignment(self, case_id: str, at: datetime, reason: str) -> None:
        """End the case's current assignment, if it has one."""
        row = self._open_assignments.pop(case_id, None)
        if row is not None:
            row.ended_at = at
            row.ended_reason = reason
