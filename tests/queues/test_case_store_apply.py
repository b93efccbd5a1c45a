"""Applying case events to the store (no broker): order, idempotency, unknown and bad records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from queues import (
    Applied,
    BatchWriter,
    CaseStore,
    EventApplier,
    Outcome,
    ProjectionMetrics,
    SourceRecord,
    TransientDatabaseError,
    make_engine,
    make_session_factory,
    upgrade,
)
from queues.models import CaseEventRow, CaseRow, MessageRow, QueueRow
from queues.working_set import WorkingSet
from schemas import CaseEvent, Priority
from tests.queues.case_event_builders import (
    T0,
    appended,
    case_id,
    conversation,
    opened,
    other,
    routed,
    sample,
    snapshot,
    to_bytes,
)


def records(
    events: Sequence[CaseEvent], partition: int = 0, first_offset: int = 0
) -> list[SourceRecord]:
    return [
        SourceRecord(value=to_bytes(event), partition=partition, offset=first_offset + index)
        for index, event in enumerate(events)
    ]


@pytest.fixture
def writer(session_factory: sessionmaker[Session], metrics: ProjectionMetrics) -> BatchWriter:
    return BatchWriter(session_factory, metrics)


def test_a_conversation_builds_the_case_its_messages_and_its_queue(
    writer: BatchWriter, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    events = [
        opened("cust-1"),
        appended("cust-1", 1),
        routed("cust-1", queue="billing", priority=Priority.HIGH, tags=["refund"], matched=["vip"]),
        appended("cust-1", 2, channel="sms", text="Any news?"),
    ]
    result = writer.write(records(events, partition=3, first_offset=40))

    assert result.outcomes == {Outcome.APPLIED: 4}
    with session_factory() as session:
        case = session.get(CaseRow, case_id("cust-1"))
        assert case is not None
        assert (case.customer_id, case.queue, case.priority, case.status) == (
            "cust-1",
            "billing",
            "high",
            "open",
        )
        assert case.tags == ["refund"]
        assert case.matched == ["vip"]
        assert case.channels == ["email", "sms"]
        assert case.message_count == 2
        assert case.rules_version == "rules-v1"
        assert case.sla == {
            "first_response": {
                "due_at": "2026-03-02T17:00:00Z",
                "state": "running",
                "warn_at": None,
            }
        }
        assert case.opened_at == T0
        assert case.last_event_at == events[-1].at
        assert session.get(QueueRow, "billing") is not None
        texts = session.scalars(select(MessageRow.text).order_by(MessageRow.sent_at)).all()
        assert texts == ["My order has not arrived.", "Any news?"]
        stored = session.scalars(select(CaseEventRow).order_by(CaseEventRow.kafka_offset)).all()
        assert [(row.type, row.kafka_partition, row.kafka_offset) for row in stored] == [
            ("case.opened", 3, 40),
            ("message.appended", 3, 41),
            ("case.routed", 3, 42),
            ("message.appended", 3, 43),
        ]


def test_later_routing_wins_because_events_apply_in_order(
    writer: BatchWriter, session_factory: sessionmaker[Session]
) -> None:
    events = [
        opened("cust-1"),
        routed("cust-1", queue="general", routing="1"),
        routed(
            "cust-1",
            queue="tier2",
            priority=Priority.URGENT,
            at=T0 + timedelta(hours=1),
            routing="2",
        ),
    ]
    writer.write(records(events))

    with session_factory() as session:
        case = session.get(CaseRow, case_id("cust-1"))
        assert case is not None
        assert (case.queue, case.priority) == ("tier2", "urgent")
        assert case.updated_at == T0 + timedelta(hours=1)
        assert set(session.scalars(select(QueueRow.name))) == {"general", "tier2"}


def test_redelivered_events_change_nothing(
    writer: BatchWriter, engine: Engine, metrics: ProjectionMetrics
) -> None:
    events = conversation("cust-1") + conversation("cust-2", messages=3)
    writer.write(records(events))
    before = snapshot(engine)

    again = writer.write(records(events, first_offset=100))

    assert again.outcomes == {Outcome.DUPLICATE: len(events)}
    assert snapshot(engine) == before
    assert sample(metrics.registry, "escalator_projection_duplicate_events_total") == len(events)
    assert sample(metrics.registry, "escalator_projection_events_total", type="case.opened") == 2


def test_a_duplicate_inside_one_batch_is_applied_once(
    writer: BatchWriter, session_factory: sessionmaker[Session]
) -> None:
    message = appended("cust-1", 1)
    result = writer.write(records([opened("cust-1"), message, message]))

    assert result.outcomes == {Outcome.APPLIED: 2, Outcome.DUPLICATE: 1}
    with session_factory() as session:
        case = session.get(CaseRow, case_id("cust-1"))
        assert case is not None
        assert case.message_count == 1


def test_the_same_message_key_in_another_event_is_not_a_second_message(
    writer: BatchWriter, session_factory: sessionmaker[Session]
) -> None:
    first = appended("cust-1", 1)
    resent = appended("cust-1", 1, message_key=None, text="resent")
    resent = resent.model_copy(update={"event_id": "f" * 32})
    writer.write(records([opened("cust-1"), first, resent]))

    with session_factory() as session:
        case = session.get(CaseRow, case_id("cust-1"))
        assert case is not None
        assert case.message_count == 1
        assert session.scalars(select(MessageRow.text)).all() == ["My order has not arrived."]
        assert len(session.scalars(select(CaseEventRow)).all()) == 3


def test_unknown_event_types_are_recorded_but_change_no_case(
    writer: BatchWriter, session_factory: sessionmaker[Session], metrics: ProjectionMetrics
) -> None:
    writer.write(records([opened("cust-1"), routed("cust-1")]))
    with session_factory() as session:
        before = session.get(CaseRow, case_id("cust-1"))
        assert before is not None
        before_fields = (before.queue, before.priority, before.status, before.updated_at)

    later = T0 + timedelta(minutes=30)
    result = writer.write(
        records(
            [other("cust-1", "sla.warning", at=later), other("cust-9", "case.escalated")],
            first_offset=2,
        )
    )

    assert result.outcomes == {Outcome.RECORDED: 2}
    with session_factory() as session:
        case = session.get(CaseRow, case_id("cust-1"))
        assert case is not None
        assert (case.queue, case.priority, case.status, case.updated_at) == before_fields
        assert case.last_event_at == later
        assert session.get(CaseRow, case_id("cust-9")) is None
        types = set(session.scalars(select(CaseEventRow.type)))
        assert {"sla.warning", "case.escalated"} <= types
    assert sample(metrics.registry, "escalator_projection_events_total", type="sla.warning") == 1


def test_malformed_records_are_counted_and_skipped_without_stopping_the_batch(
    writer: BatchWriter, session_factory: sessionmaker[Session], metrics: ProjectionMetrics
) -> None:
    batch = [
        SourceRecord(value=b"{not json", partition=0, offset=0),
        SourceRecord(value=b'{"event_id": "short"}', partition=0, offset=1),
        SourceRecord(value=None, partition=0, offset=2),
        *records([opened("cust-1"), appended("cust-1", 1)], first_offset=3),
    ]
    result = writer.write(batch)

    assert result.outcomes == {Outcome.MALFORMED: 3, Outcome.APPLIED: 2}
    assert sample(metrics.registry, "escalator_projection_errors_total", reason="malformed") == 3
    with session_factory() as session:
        assert len(session.scalars(select(CaseEventRow)).all()) == 2
        assert session.get(CaseRow, case_id("cust-1")) is not None


def test_a_known_type_with_a_bad_payload_is_recorded_not_applied(
    writer: BatchWriter, session_factory: sessionmaker[Session], metrics: ProjectionMetrics
) -> None:
    broken = routed("cust-1").model_copy(update={"payload": {"case": {"queue": "general"}}})
    result = writer.write(records([opened("cust-1"), broken]))

    assert result.outcomes == {Outcome.APPLIED: 1, Outcome.INVALID_PAYLOAD: 1}
    assert (
        sample(metrics.registry, "escalator_projection_errors_total", reason="invalid_payload") == 1
    )
    with session_factory() as session:
        case = session.get(CaseRow, case_id("cust-1"))
        assert case is not None
        assert case.queue is None
        assert session.get(CaseEventRow, broken.event_id) is not None


def test_events_before_case_opened_still_build_the_case(
    writer: BatchWriter, session_factory: sessionmaker[Session]
) -> None:
    writer.write(records([appended("cust-1", 1), routed("cust-1"), opened("cust-1")]))

    with session_factory() as session:
        case = session.get(CaseRow, case_id("cust-1"))
        assert case is not None
        assert (case.queue, case.message_count, case.opened_at) == ("general", 1, T0)


def test_times_are_stored_in_utc_and_read_back_aware(
    writer: BatchWriter, session_factory: sessionmaker[Session]
) -> None:
    berlin_morning = datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    writer.write(records([opened("cust-1", at=berlin_morning)]))

    with session_factory() as session:
        case = session.get(CaseRow, case_id("cust-1"))
        assert case is not None
        assert case.opened_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        assert case.opened_at is not None and case.opened_at.utcoffset() == timedelta(0)


class _FailsOn(EventApplier):
    """An applier that breaks on one event, as a value the database refuses would."""

    def __init__(self, event_id: str) -> None:
        super().__init__()
        self.event_id = event_id

    def apply_event(
        self,
        rows: WorkingSet,
        event: CaseEvent,
        partition: int | None = None,
        offset: int | None = None,
    ) -> Applied:
        if event.event_id == self.event_id:
            raise RuntimeError("refused by the database")
        return super().apply_event(rows, event, partition, offset)


def test_one_poisonous_event_is_skipped_and_the_rest_of_the_batch_applied(
    session_factory: sessionmaker[Session], metrics: ProjectionMetrics
) -> None:
    poison = appended("cust-1", 1)
    writer = BatchWriter(session_factory, metrics, _FailsOn(poison.event_id))
    result = writer.write(
        records([opened("cust-1"), poison, appended("cust-1", 2), opened("cust-2")])
    )

    assert result.outcomes == {Outcome.APPLIED: 3, Outcome.FAILED: 1}
    assert sample(metrics.registry, "escalator_projection_errors_total", reason="apply_failed") == 1
    with session_factory() as session:
        assert session.get(CaseEventRow, poison.event_id) is None
        case = session.get(CaseRow, case_id("cust-1"))
        assert case is not None
        assert case.message_count == 1
        assert session.get(CaseRow, case_id("cust-2")) is not None


def test_a_database_without_the_schema_is_a_transient_error_and_nothing_is_counted(
    database_url: str, metrics: ProjectionMetrics
) -> None:
    engine = make_engine(database_url)
    writer = BatchWriter(make_session_factory(engine), metrics)
    with pytest.raises(TransientDatabaseError):
        writer.write(records([opened("cust-1")]))
    engine.dispose()
    assert sample(metrics.registry, "escalator_projection_errors_total", reason="database") == 1
    assert sample(metrics.registry, "escalator_projection_events_total", type="case.opened") == 0


def test_the_store_lists_most_urgent_first_and_shows_a_case(
    writer: BatchWriter, engine: Engine
) -> None:
    writer.write(
        records(
            [
                *conversation("cust-low", queue="general"),
                opened("cust-urgent"),
                appended("cust-urgent", 1),
                routed("cust-urgent", queue="legal", priority=Priority.URGENT, tags=["legal"]),
                opened("cust-unrouted"),
            ]
        )
    )
    store = CaseStore(engine)

    listed = store.list_cases()
    assert [case.case_id for case in listed] == [
        case_id("cust-urgent"),
        case_id("cust-low"),
        case_id("cust-unrouted"),
    ]
    assert [case.case_id for case in store.list_cases(queue="legal")] == [case_id("cust-urgent")]
    assert store.list_cases(status="resolved") == []
    assert len(store.list_cases(limit=1)) == 1
    assert listed[0].to_json()["opened_at"] == "2026-03-02T09:00:00Z"

    detail = store.get_case(case_id("cust-low"))
    assert detail is not None
    assert [message.message_key for message in detail.messages] == [
        "email:cust-low-1",
        "email:cust-low-2",
    ]
    assert [event.type for event in detail.events][:2] == ["case.opened", "message.appended"]
    assert detail.to_json()["sla"]["first_response"]["state"] == "running"
    assert store.get_case("C-NOSUCHCASE") is None
    assert store.count_cases() == 3


class _RacedBy(EventApplier):
    """Another writer records `contested` just before its second attempt commits; `poison`
    always fails, which forces the batch to be retried one record per transaction."""

    def __init__(self, other_writer: sessionmaker[Session], contested: str, poison: str) -> None:
        super().__init__()
        self.other_writer = other_writer
        self.contested = contested
        self.poison = poison
        self.attempts = 0

    def apply_event(
        self,
        rows: WorkingSet,
        event: CaseEvent,
        partition: int | None = None,
        offset: int | None = None,
    ) -> Applied:
        if event.event_id == self.poison:
            raise RuntimeError("refused by the database")
        if event.event_id == self.contested:
            self.attempts += 1
            if self.attempts == 2:
                with self.other_writer.begin() as session:
                    EventApplier().apply_batch(session, [SourceRecord(value=to_bytes(event))])
        return super().apply_event(rows, event, partition, offset)


def test_an_event_recorded_by_another_writer_meanwhile_counts_as_a_duplicate(
    session_factory: sessionmaker[Session], metrics: ProjectionMetrics
) -> None:
    contested, poison = opened("cust-1"), opened("cust-2")
    applier = _RacedBy(session_factory, contested.event_id, poison.event_id)
    writer = BatchWriter(session_factory, metrics, applier)

    result = writer.write(records([contested, poison]))

    assert applier.attempts == 3  # in the batch, alone (conflict), alone again (duplicate)
    assert result.outcomes == {Outcome.DUPLICATE: 1, Outcome.FAILED: 1}
    assert sample(metrics.registry, "escalator_projection_errors_total", reason="apply_failed") == 1


class _CutOff(EventApplier):
    """The server ends the batch's connection once its events are applied in memory, so
    the first statement to fail is the one that writes them (`COPY` on PostgreSQL)."""

    def __init__(self, server: Engine) -> None:
        super().__init__()
        self.server = server
        self.cut = False

    def apply_event(
        self,
        rows: WorkingSet,
        event: CaseEvent,
        partition: int | None = None,
        offset: int | None = None,
    ) -> Applied:
        if not self.cut:
            self.cut = True
            pid = rows.session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with self.server.connect() as connection:
                ended = connection.exec_driver_sql(
                    f"SELECT pg_terminate_backend({int(pid or 0)}, 30000)"
                ).scalar()
            assert ended
        return super().apply_event(rows, event, partition, offset)


def test_a_connection_lost_while_a_batch_writes_its_events_is_transient_and_then_replaced(
    postgres_database_url: str, metrics: ProjectionMetrics
) -> None:
    upgrade(postgres_database_url)
    engine, server = make_engine(postgres_database_url), make_engine(postgres_database_url)
    writer = BatchWriter(make_session_factory(engine), metrics, _CutOff(server))
    events = [opened("cust-1"), appended("cust-1", 1), routed("cust-1")]

    with pytest.raises(TransientDatabaseError):
        writer.write(records(events))
    assert sample(metrics.registry, "escalator_projection_errors_total", reason="database") == 1

    again = writer.write(records(events))  # the retry gets a live connection
    assert again.outcomes == {Outcome.APPLIED: 3}
    with make_session_factory(engine)() as session:
        assert len(session.scalars(select(CaseEventRow.event_id)).all()) == 3
    engine.dispose()
    server.dispose()
