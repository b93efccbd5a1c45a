"""Stage state on a real changelog: saved with its deadline header, restored without parsing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer
from pydantic import BaseModel

from kafkaio.fencing import FencedError, FencedWriter
from streams.output import OutputRecord, ReliableWriter
from streams.state_store import DEADLINE_HEADER, ChangelogState, StateCodec
from tests.kafka_support import consume_until, create_topics

DUE = datetime(2027, 1, 4, 17, 0, tzinfo=UTC)


class Timed(BaseModel):
    name: str
    next_deadline: datetime | None = None


class RecordingWriter(ReliableWriter):
    """The real writer, remembering what it was asked to write."""

    written: list[OutputRecord]

    async def write(self, records: object, stage: str = "output") -> None:
        self.written = [*getattr(self, "written", []), *records]  # type: ignore[misc]
        await super().write(records, stage)  # type: ignore[arg-type]


def store(bootstrap: str, topic: str) -> ChangelogState:
    return ChangelogState(
        "timed",
        topic,
        "source",
        {"bootstrap.servers": bootstrap},
        codec=StateCodec(b'{"name":"","next_deadline":null}'),
        deadline_field="next_deadline",
    )


async def test_saved_states_come_back_with_their_deadlines_from_the_headers(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    from connectors.publisher import KafkaPublisher

    topic = f"{topic_prefix}timed.changelog"
    create_topics(kafka_bootstrap, [topic], partitions=2, config={"cleanup.policy": "compact"})
    first = store(kafka_bootstrap, topic)
    assert first.assign([0, 1]) == {0: [], 1: []}
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    writer = RecordingWriter(publisher)
    try:
        await first.save(
            writer,
            {
                b"a": (0, Timed(name="a", next_deadline=DUE)),
                b"b": (1, Timed(name="b")),
            },
        )
    finally:
        publisher.close()
    headers = {record.key: dict(record.headers) for record in writer.written}
    assert headers == {
        b"a": {DEADLINE_HEADER: b"2027-01-04T17:00:00Z"},
        b"b": {DEADLINE_HEADER: b""},  # no deadline
    }
    assert first.load(0, b"a", Timed) == Timed(name="a", next_deadline=DUE)

    # a record from before the header existed, and a deleted key
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    old = Timed(name="old", next_deadline=DUE.replace(hour=18))
    producer.produce(topic, key=b"old", value=old.model_dump_json().encode(), partition=1)
    producer.produce(topic, key=b"gone", value=Timed(name="gone").model_dump_json(), partition=0)
    producer.produce(topic, key=b"gone", value=None, partition=0)
    producer.flush(10)

    restored = store(kafka_bootstrap, topic)
    deadlines = restored.assign([0, 1])
    assert deadlines == {0: [(b"a", DUE)], 1: [(b"old", DUE.replace(hour=18))]}
    assert len(restored) == 3
    assert restored.load(1, b"old", Timed) == old
    assert restored.load(0, b"gone", Timed) is None
    assert restored.load(1, b"b", Timed) == Timed(name="b")


@pytest.fixture
def changelog_writer(kafka_bootstrap: str) -> Iterator[ReliableWriter]:
    """The worker's writer on a publisher of its own, closed after the test."""
    from connectors.publisher import KafkaPublisher

    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    try:
        yield ReliableWriter(publisher)
    finally:
        publisher.close()


def fenced_store(bootstrap: str, topic: str) -> ChangelogState:
    """A store as the worker builds it: writes fenced under a transactional id per partition."""
    connection = {"bootstrap.servers": bootstrap}
    return ChangelogState(
        "timed",
        topic,
        "source",
        connection,
        codec=StateCodec(b'{"name":"","next_deadline":null}'),
        deadline_field="next_deadline",
        fencing=FencedWriter(connection, f"test.{topic}"),
    )


async def test_a_stalled_old_owners_late_write_cannot_overwrite_the_new_owners_state(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    from connectors.publisher import KafkaPublisher

    topic = f"{topic_prefix}zombie.changelog"
    create_topics(kafka_bootstrap, [topic], partitions=2, config={"cleanup.policy": "compact"})
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    writer = ReliableWriter(publisher)
    try:
        old_owner = fenced_store(kafka_bootstrap, topic)
        old_owner.assign([0, 1])
        await old_owner.save(writer, {b"case": (0, Timed(name="opened"))})
        # the old owner stalls (a long pause, a lost session); partition 0 moves on
        new_owner = fenced_store(kafka_bootstrap, topic)
        new_owner.assign([0])
        assert new_owner.load(0, b"case", Timed) == Timed(name="opened")
        await new_owner.save(writer, {b"case": (0, Timed(name="claimed by the new owner"))})
        # the old owner wakes up and writes what it had computed before it stalled
        with pytest.raises(FencedError):
            await old_owner.save(writer, {b"case": (0, Timed(name="stale, from the zombie"))})
        # partition 1 it still owns: its writes go on
        await old_owner.save(writer, {b"other": (1, Timed(name="still mine"))})
    finally:
        publisher.close()
    restored = store(kafka_bootstrap, topic)
    restored.assign([0, 1])
    assert restored.load(0, b"case", Timed) == Timed(name="claimed by the new owner")
    assert restored.load(1, b"other", Timed) == Timed(name="still mine")


async def test_a_partition_that_comes_back_after_another_owner_wrote_it_is_restored(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    from connectors.publisher import KafkaPublisher

    topic = f"{topic_prefix}back.changelog"
    create_topics(kafka_bootstrap, [topic], partitions=2, config={"cleanup.policy": "compact"})
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    writer = ReliableWriter(publisher)
    try:
        first = fenced_store(kafka_bootstrap, topic)
        first.assign([0, 1])
        await first.save(writer, {b"a": (0, Timed(name="v1")), b"b": (1, Timed(name="b1"))})
        first.release([0, 1])  # a rebalance; the first worker stalls before its next one
        other = fenced_store(kafka_bootstrap, topic)  # partition 0 went elsewhere meanwhile
        other.assign([0])
        await other.save(writer, {b"a": (0, Timed(name="v2, by the other owner"))})
        first.assign([0, 1])  # back: it still holds its old state of partition 0
    finally:
        publisher.close()
    assert first.load(0, b"a", Timed) == Timed(name="v2, by the other owner")
    assert first.load(1, b"b", Timed) == Timed(name="b1")


def committed_values(bootstrap: str, topic: str) -> list[bytes]:
    """Every committed record value of a topic (as every reader of ours sees it), in order."""
    records = consume_until(bootstrap, topic, lambda _read: False, 5.0, raise_on_timeout=False)
    return [record.value for record in records]


async def test_outputs_land_with_their_states_and_a_fenced_owners_outputs_never_land(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A batch's events go in one transaction with its states: both land, or neither.

    On the old order (events first, then states) a worker that died or was fenced between
    the two left events of a state nobody kept; a replay interleaving its two input topics
    differently then wrote the same event ids with other contents.
    """
    from connectors.publisher import KafkaPublisher

    topic = f"{topic_prefix}together.changelog"
    events = f"{topic_prefix}together.events"
    create_topics(kafka_bootstrap, [topic], partitions=2, config={"cleanup.policy": "compact"})
    create_topics(kafka_bootstrap, [events], partitions=2)
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    writer = ReliableWriter(publisher)
    try:
        old_owner = fenced_store(kafka_bootstrap, topic)
        old_owner.assign([0, 1])
        await old_owner.save(
            writer,
            {b"case": (0, Timed(name="routed"))},
            {0: [OutputRecord(events, b"case", b"case.routed by the first owner")]},
        )
        new_owner = fenced_store(kafka_bootstrap, topic)
        new_owner.assign([0])
        with pytest.raises(FencedError):
            await old_owner.save(
                writer,
                {b"case": (0, Timed(name="stale"))},
                {0: [OutputRecord(events, b"case", b"an event of a state that is lost")]},
            )
        # outputs of a partition this store does not hold are left to its owner
        await new_owner.save(writer, {}, {1: [OutputRecord(events, b"x", b"not mine")]})
    finally:
        publisher.close()
    assert committed_values(kafka_bootstrap, events) == [b"case.routed by the first owner"]
    restored = store(kafka_bootstrap, topic)
    restored.assign([0])
    assert restored.load(0, b"case", Timed) == Timed(name="routed")


async def test_an_output_the_broker_refuses_is_dead_lettered_and_the_state_still_saved(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A record no transaction can ever carry must not stall the stage (retried for ever)."""
    from connectors.publisher import KafkaPublisher

    topic = f"{topic_prefix}refused.changelog"
    events = f"{topic_prefix}refused.events"
    dlq = f"{topic_prefix}refused.dlq"
    create_topics(kafka_bootstrap, [topic], partitions=1, config={"cleanup.policy": "compact"})
    create_topics(kafka_bootstrap, [events, dlq], partitions=1)
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    writer = ReliableWriter(publisher, dead_letter_topic=dlq, max_record_bytes=10_000)
    try:
        owner = fenced_store(kafka_bootstrap, topic)
        owner.assign([0])
        await owner.save(
            writer,
            {b"case": (0, Timed(name="saved"))},
            {
                0: [
                    OutputRecord(events, b"case", b"fine"),
                    OutputRecord("not a valid topic name!", b"case", b"refused by the broker"),
                    OutputRecord(events, b"case", b"x" * 20_000),  # over the record limit
                ]
            },
        )
    finally:
        publisher.close()
    assert committed_values(kafka_bootstrap, events) == [b"fine"]
    letters = [json.loads(value) for value in committed_values(kafka_bootstrap, dlq)]
    assert sorted(letter["reason"] for letter in letters) == ["invalid_topic", "record_too_large"]
    restored = store(kafka_bootstrap, topic)
    restored.assign([0])
    assert restored.load(0, b"case", Timed) == Timed(name="saved")


async def test_no_batch_starts_on_a_kept_partition_until_the_assignment_so_it_is_not_restored(
    kafka_bootstrap: str, topic_prefix: str, changelog_writer: ReliableWriter
) -> None:
    """faust resumes the streams of the partitions an eager rebalance gives back before the
    assignment handler runs. A batch that ran then wrote the kept partition's changelog
    between `release` and `assign`, which took it for written elsewhere and restored it
    (a join re-restored the half million cases a worker kept: 21 s of pause). A batch now
    waits for the assignment, which keeps the partition as held."""
    import asyncio

    from streams.rebalance import restored_then

    topic = f"{topic_prefix}gate.changelog"
    create_topics(kafka_bootstrap, [topic], partitions=2, config={"cleanup.policy": "compact"})
    writer = changelog_writer
    ran: list[str] = []

    class Event:  # what a faust event of partition 0 offers `restored_then`
        class message:  # noqa: N801
            partition = 0

    async def batch(_events: object) -> None:
        ran.append("batch")
        await worker.save(writer, {b"a": (0, Timed(name="v2, by this worker"))})

    worker = fenced_store(kafka_bootstrap, topic)
    worker.assign([0, 1])
    await worker.save(writer, {b"a": (0, Timed(name="v1", next_deadline=DUE))})
    worker.release([0, 1])  # an eager rebalance revokes everything
    # partition 0 comes back; faust resumes its stream before the assignment handler
    resumed = asyncio.create_task(restored_then(worker, [Event()], batch))
    await asyncio.sleep(0.5)
    assert ran == [], "a batch started on a revoked partition before its assignment"
    loop = asyncio.get_running_loop()
    restored = await loop.run_in_executor(None, worker.assign, [0])  # 1 moved elsewhere
    ran.append("assigned")
    await asyncio.wait_for(resumed, 30)
    assert restored == {}  # nothing read again from the changelog
    assert ran == ["assigned", "batch"]
    assert worker.partitions == frozenset({0})
    assert worker.load(0, b"a", Timed) == Timed(name="v2, by this worker")


async def test_records_that_change_no_state_do_not_make_a_kept_partition_restored(
    kafka_bootstrap: str, topic_prefix: str, changelog_writer: ReliableWriter
) -> None:
    """Between `release` and `assign` a changelog can grow without any state changing: the
    marker of this worker's last commit lands after the commit returned (the coordinator
    writes it), and an aborted transaction leaves records nobody reads. Only a committed
    record means another owner wrote the partition."""
    topic = f"{topic_prefix}markers.changelog"
    create_topics(kafka_bootstrap, [topic], partitions=1, config={"cleanup.policy": "compact"})
    worker = fenced_store(kafka_bootstrap, topic)
    worker.assign([0])
    await worker.save(changelog_writer, {b"a": (0, Timed(name="v1"))})
    worker.release([0])
    aborting = Producer(
        {"bootstrap.servers": kafka_bootstrap, "transactional.id": f"{topic}.aborting"}
    )
    aborting.init_transactions(30)
    aborting.begin_transaction()
    aborting.produce(topic, key=b"a", value=b'{"name":"never committed"}', partition=0)
    aborting.flush(30)
    aborting.abort_transaction(30)  # a record and an abort marker: the log grew by two
    restored = worker.assign([0])
    assert restored == {}
    assert worker.load(0, b"a", Timed) == Timed(name="v1")
