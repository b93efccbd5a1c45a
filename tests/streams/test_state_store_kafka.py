"""Stage state on a real changelog: saved with its deadline header, restored without parsing."""

from __future__ import annotations

from datetime import UTC, datetime

from confluent_kafka import Producer
from pydantic import BaseModel

from streams.output import OutputRecord, ReliableWriter
from streams.state_store import DEADLINE_HEADER, ChangelogState, StateCodec
from tests.kafka_support import create_topics

DUE = datetime(2027, 1, 4, 17, 0, tzinfo=UTC)


class Timed(BaseModel):
    name: str
    next_deadline: datetime | None = None


class RecordingWriter(ReliableWriter):
    """The real writer, remembering what it was asked to write."""

    written: list[OutputRecord]

    async def write(self, records: object) -> None:
        self.written = [*getattr(self, "written", []), *records]  # type: ignore[misc]
        await super().write(records)  # type: ignore[arg-type]


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
