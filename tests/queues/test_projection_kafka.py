"""The projection against the real broker: catch up, redelivery, offsets after the database."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from queues import (
    BatchWriter,
    CaseStore,
    Outcome,
    Projection,
    ProjectionMetrics,
    SourceRecord,
    make_engine,
    make_session_factory,
    upgrade,
)
from schemas import CaseEvent, DeadLetter, Topics
from tests.kafka_support import create_topics, produce
from tests.queues.case_event_builders import (
    case_id,
    conversation,
    other,
    sample,
    snapshot,
    to_bytes,
)

pytestmark = pytest.mark.kafka

PARTITIONS = 3

ProjectionFactory = Callable[..., Projection]


def publish(bootstrap: str, topic: str, events: Sequence[CaseEvent]) -> None:
    produce(bootstrap, topic, [(event.case_id, to_bytes(event)) for event in events])


def committed_offsets(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id})
    try:
        partitions = [TopicPartition(topic, partition) for partition in range(PARTITIONS)]
        return {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        return {
            partition: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[
                1
            ]
            for partition in range(PARTITIONS)
        }
    finally:
        consumer.close()


@pytest.fixture
def events_topic(kafka_bootstrap: str, topics: Topics) -> str:
    create_topics(kafka_bootstrap, [topics.case_events], partitions=PARTITIONS)
    return topics.case_events


@pytest.fixture
def group_id() -> str:
    return f"test-projection-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_projection(
    kafka_bootstrap: str,
    events_topic: str,
    session_factory: sessionmaker[Session],
    metrics: ProjectionMetrics,
    group_id: str,
) -> Iterator[ProjectionFactory]:
    created: list[Projection] = []

    def factory(**overrides: object) -> Projection:
        options: dict[str, object] = {
            "kafka_config": {"bootstrap.servers": kafka_bootstrap},
            "topic": events_topic,
            "session_factory": session_factory,
            "group_id": group_id,
            "metrics": metrics,
            "batch_size": 4,
            "batch_timeout_seconds": 0.2,
        }
        options.update(overrides)
        projection = Projection(**options)  # type: ignore[arg-type]
        created.append(projection)
        return projection

    yield factory
    for projection in created:
        projection.close()


def three_cases() -> list[CaseEvent]:
    return [
        *conversation("cust-a", messages=2, queue="general"),
        *conversation("cust-b", messages=1, queue="billing"),
        *conversation("cust-c", messages=3, queue="general"),
        other("cust-a", "sla.warning"),
    ]


def test_catch_up_projects_the_events_and_commits_offsets_after(
    kafka_bootstrap: str,
    events_topic: str,
    make_projection: ProjectionFactory,
    engine: Engine,
    metrics: ProjectionMetrics,
    group_id: str,
) -> None:
    events = three_cases()
    publish(kafka_bootstrap, events_topic, events)
    produce(kafka_bootstrap, events_topic, [(b"C-BROKEN", b"this is not a case event")])

    projection = make_projection()
    read = projection.catch_up(timeout_seconds=60)
    projection.close()

    assert read == len(events) + 1
    assert projection.totals.outcomes == {
        Outcome.APPLIED: len(events) - 1,
        Outcome.RECORDED: 1,
        Outcome.MALFORMED: 1,
    }
    store = CaseStore(engine)
    cases = {case.case_id: case for case in store.list_cases()}
    assert set(cases) == {case_id("cust-a"), case_id("cust-b"), case_id("cust-c")}
    assert cases[case_id("cust-c")].message_count == 3
    assert cases[case_id("cust-b")].queue == "billing"
    assert sample(metrics.registry, "escalator_projection_errors_total", reason="malformed") == 1
    assert sample(metrics.registry, "escalator_projection_batch_seconds_count") >= 1
    ends = end_offsets(kafka_bootstrap, events_topic)
    committed = committed_offsets(kafka_bootstrap, group_id, events_topic)
    assert {p: end for p, end in ends.items() if end} == {p: committed[p] for p in ends if ends[p]}


def test_the_same_events_again_change_nothing(
    kafka_bootstrap: str,
    events_topic: str,
    make_projection: ProjectionFactory,
    engine: Engine,
) -> None:
    events = three_cases()
    publish(kafka_bootstrap, events_topic, events)
    with make_projection() as first:
        first.catch_up(timeout_seconds=60)
    before = snapshot(engine)

    publish(kafka_bootstrap, events_topic, events)
    projection = make_projection()
    read = projection.catch_up(timeout_seconds=60)

    assert read == len(events)  # only the new copies: the group's offsets were committed
    assert projection.totals.outcomes == {Outcome.DUPLICATE: len(events)}
    assert snapshot(engine) == before


def test_after_a_crash_between_database_and_offset_commit_redelivery_changes_nothing(
    kafka_bootstrap: str,
    events_topic: str,
    make_projection: ProjectionFactory,
    engine: Engine,
    session_factory: sessionmaker[Session],
    metrics: ProjectionMetrics,
) -> None:
    events = three_cases()
    publish(kafka_bootstrap, events_topic, events)
    # The database committed these events, then the process died before committing offsets.
    BatchWriter(session_factory, metrics).write(
        [SourceRecord(value=to_bytes(event)) for event in events]
    )
    before = snapshot(engine)

    projection = make_projection()
    projection.catch_up(timeout_seconds=60)

    assert projection.totals.outcomes == {Outcome.DUPLICATE: len(events)}
    assert snapshot(engine) == before


def test_run_until_stopped_follows_new_events_and_stops_on_request(
    kafka_bootstrap: str,
    events_topic: str,
    make_projection: ProjectionFactory,
    engine: Engine,
) -> None:
    projection = make_projection()
    runner = threading.Thread(target=projection.run_until_stopped, daemon=True)
    runner.start()
    publish(kafka_bootstrap, events_topic, conversation("cust-live", messages=2))

    store = CaseStore(engine)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        live = store.get_case(case_id("cust-live"))
        if live is not None and live.summary.message_count == 2 and live.summary.queue:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the running projection did not apply the new events within 60s")

    projection.stop()
    runner.join(timeout=30)
    assert not runner.is_alive()


def test_catch_up_on_a_topic_that_does_not_exist_returns_at_once(
    kafka_bootstrap: str,
    topics: Topics,
    session_factory: sessionmaker[Session],
) -> None:
    with Projection(
        kafka_config={"bootstrap.servers": kafka_bootstrap},
        topic=f"{topics.prefix}no.such.topic",
        session_factory=session_factory,
        group_id=f"test-projection-{uuid.uuid4().hex[:12]}",
    ) as projection:
        assert projection.catch_up(timeout_seconds=10) == 0


def test_while_the_database_is_down_no_offsets_are_committed_and_nothing_is_lost(
    kafka_bootstrap: str, events_topic: str, database_url: str, group_id: str
) -> None:
    events = three_cases()
    publish(kafka_bootstrap, events_topic, events)
    engine = make_engine(database_url)  # no schema yet: every write fails
    options = {
        "kafka_config": {"bootstrap.servers": kafka_bootstrap},
        "topic": events_topic,
        "session_factory": make_session_factory(engine),
        "group_id": group_id,
        "retry_backoff_seconds": 0.1,
    }

    with Projection(**options) as failing, pytest.raises(TimeoutError):  # type: ignore[arg-type]
        failing.catch_up(timeout_seconds=3)
    assert all(
        offset < 0 for offset in committed_offsets(kafka_bootstrap, group_id, events_topic).values()
    )

    upgrade(database_url)
    with Projection(**options) as recovered:  # type: ignore[arg-type]
        recovered.catch_up(timeout_seconds=60)
    assert len(CaseStore(engine).list_cases()) == 3
    engine.dispose()


def test_records_the_store_cannot_take_are_dead_lettered_before_the_commit(
    kafka_bootstrap: str,
    events_topic: str,
    make_projection: ProjectionFactory,
    metrics: ProjectionMetrics,
    group_id: str,
) -> None:
    events = conversation("cust-a", messages=1, queue="general")
    publish(kafka_bootstrap, events_topic, events)
    broken = b"this is not a case event"
    bad_payload = events[-1].model_copy(update={"event_id": "bad-payload", "payload": {"x": 1}})
    produce(
        kafka_bootstrap,
        events_topic,
        [(b"C-BROKEN", broken), (bad_payload.case_id, to_bytes(bad_payload))],
    )
    written: list[tuple[bytes | None, DeadLetter]] = []
    committed_past_a_letter: list[DeadLetter] = []

    def sink(letters: Sequence[tuple[bytes | None, DeadLetter]]) -> None:
        committed = committed_offsets(kafka_bootstrap, group_id, events_topic)
        committed_past_a_letter.extend(
            letter
            for _, letter in letters
            if committed[letter.source_partition] > letter.source_offset
        )
        written.extend(letters)

    projection = make_projection(dead_letters=sink)
    projection.catch_up(timeout_seconds=60)
    projection.close()

    by_reason = {letter.reason: (key, letter) for key, letter in written}
    assert set(by_reason) == {"malformed", "invalid_payload"}
    key, malformed = by_reason["malformed"]
    assert key == b"C-BROKEN" and malformed.original_bytes() == broken
    assert malformed.stage == "projection" and malformed.source_topic == events_topic
    assert malformed.source_offset >= 0 and malformed.letter_id
    _, invalid = by_reason["invalid_payload"]
    assert "case" in invalid.detail  # names the missing field
    assert committed_past_a_letter == []  # each letter is written before its offset commits
    committed = committed_offsets(kafka_bootstrap, group_id, events_topic)
    ends = end_offsets(kafka_bootstrap, events_topic)
    assert {p: committed[p] for p, end in ends.items() if end} == {
        p: end for p, end in ends.items() if end
    }
    sample_value = metrics.registry.get_sample_value(
        "escalator_projection_dead_letters_total", {"reason": "malformed"}
    )
    assert sample_value == 1


def test_a_batch_retried_while_the_database_is_away_shows_as_stalled(
    kafka_bootstrap: str, events_topic: str, group_id: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{(tmp_path / 'not-yet.db').as_posix()}"  # no schema yet: transient
    engine = make_engine(url)
    metrics = ProjectionMetrics(CollectorRegistry())
    publish(kafka_bootstrap, events_topic, conversation("cust-a", messages=1, queue="general"))
    projection = Projection(
        kafka_config={"bootstrap.servers": kafka_bootstrap},
        topic=events_topic,
        session_factory=make_session_factory(engine),
        group_id=group_id,
        metrics=metrics,
        batch_timeout_seconds=0.2,
        retry_backoff_seconds=0.1,
    )
    runner = threading.Thread(target=projection.run_until_stopped)
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while projection.stalled_seconds() < 2:
            assert time.monotonic() < deadline, "the batch never looked stalled"
            time.sleep(0.1)
        assert metrics.registry.get_sample_value("escalator_projection_stalled_seconds") >= 2
        upgrade(url)  # the database is back
        while projection.stalled_seconds() > 0 or not projection.totals.records:
            assert time.monotonic() < deadline, "the batch never went through"
            time.sleep(0.1)
    finally:
        projection.stop()
        runner.join(timeout=30)
        engine.dispose()
    assert projection.totals.outcomes[Outcome.APPLIED] >= 1


def test_offsets_reach_the_broker_while_running_and_when_a_catch_up_returns(
    kafka_bootstrap: str,
    events_topic: str,
    make_projection: ProjectionFactory,
    group_id: str,
    metrics: ProjectionMetrics,
) -> None:
    # Commits are sent after each batch without waiting for the answer: they must still
    # land while the projection runs, and a catch-up must return with its offsets committed.
    def committed_to_the_end() -> bool:
        ends = end_offsets(kafka_bootstrap, events_topic)
        committed = committed_offsets(kafka_bootstrap, group_id, events_topic)
        return all(committed[p] == end for p, end in ends.items() if end)

    publish(kafka_bootstrap, events_topic, three_cases())
    running = make_projection()
    runner = threading.Thread(target=running.run_until_stopped, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while not committed_to_the_end():
            if time.monotonic() > deadline:
                pytest.fail("a running projection's offsets did not reach the broker in 60s")
            time.sleep(0.2)
    finally:
        running.stop()
        runner.join(timeout=30)
    assert not runner.is_alive()

    publish(kafka_bootstrap, events_topic, conversation("cust-late", messages=2))
    catching_up = make_projection()
    assert catching_up.catch_up(timeout_seconds=60) > 0
    assert committed_to_the_end()  # before close
    assert (
        sample(metrics.registry, "escalator_projection_errors_total", reason="offset_commit") == 0
    )
