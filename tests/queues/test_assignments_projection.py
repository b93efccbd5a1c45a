"""The projection follows case ownership from the snapshots: assignee, pending, and history."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from queues import EventApplier, SourceRecord
from queues.models import AssignmentRow, CaseRow
from schemas import CaseEvent, CaseRoutedPayload
from schemas.ids import event_id_for
from tests.queues.case_event_builders import T0, case_id, conversation, routed, snapshot, to_bytes


def owned(customer: str, minute: int, assignee: str | None, pending: bool, why: str) -> CaseEvent:
    """A `case.updated` snapshot of the customer's case with this owner."""
    base = routed(customer, at=T0 + timedelta(minutes=minute))
    payload = CaseRoutedPayload.model_validate(base.payload)
    payload.case.assignee = assignee
    payload.case.assignment_pending = pending
    return CaseEvent(
        event_id=event_id_for(case_id(customer), "case.updated", str(minute)),
        case_id=case_id(customer),
        type="case.updated",
        at=T0 + timedelta(minutes=minute),
        reason=why,
        payload=payload.model_dump(mode="json"),
    )


def history() -> list[CaseEvent]:
    return [
        *conversation("ana", messages=1),
        owned("ana", 1, "bo", True, "after assign: assigned to bo by escalator: least loaded"),
        owned("ana", 2, "bo", False, "after claim: accepted by bo"),
        owned("ana", 3, None, False, "after release: bo's case released by escalator: offline"),
        owned("ana", 4, "cy", False, "after claim: claimed by cy"),
    ]


def apply(factory: sessionmaker[Session], events: list[CaseEvent]) -> None:
    with factory.begin() as session:
        EventApplier().apply_batch(
            session, [SourceRecord(to_bytes(e), 0, n) for n, e in enumerate(events)]
        )


def test_assignments_follow_the_owner_and_replay_changes_nothing(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    apply(session_factory, history())
    with session_factory() as session:
        case = session.get(CaseRow, case_id("ana"))
        assert case is not None and (case.assignee, case.assignment_pending) == ("cy", False)
        assert case.sla_due_at == T0 + timedelta(minutes=4, hours=8)
        rows = session.scalars(select(AssignmentRow).order_by(AssignmentRow.started_at)).all()
        assert [(r.agent, r.accepted_at, r.ended_at) for r in rows] == [
            ("bo", T0 + timedelta(minutes=2), T0 + timedelta(minutes=3)),
            ("cy", T0 + timedelta(minutes=4), None),
        ]
        assert rows[0].started_reason.endswith("least loaded")
        assert rows[0].ended_reason == "after release: bo's case released by escalator: offline"
    before = snapshot(engine)
    apply(session_factory, history())  # redelivered
    assert snapshot(engine) == before


def test_one_batch_or_one_event_per_batch_give_the_same_rows(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    for event in history():
        apply(session_factory, [event])
    with session_factory() as session:
        agents = session.scalars(select(AssignmentRow.agent).order_by(AssignmentRow.started_at))
        assert list(agents) == ["bo", "cy"]
