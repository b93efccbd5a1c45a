"""The one async producer: acknowledged batches, and which failures are permanent.

Against the real broker: a 2 MB record (over the default 1 MB limit, refused by the client
or, with the client's limit raised, by the broker) and an invalid topic name can never be
written, so they are reported per record as `RecordsRejectedError`; a broker that does
not answer is a plain (transient) `PublishError`.
"""

from __future__ import annotations

import os
import socket

import pytest

from kafkaio import AsyncProducer, PublishError, Record, RecordsRejectedError
from schemas import Topics
from tests.kafka_support import consume_until, create_topics

pytestmark = pytest.mark.kafka

TWO_MB = 2 * 1024 * 1024


def record(topic: str, value: bytes, key: bytes = b"k") -> Record:
    return Record(topic=topic, key=key, value=value)


async def test_a_batch_is_acknowledged(kafka_bootstrap: str, topics: Topics) -> None:
    create_topics(kafka_bootstrap, [topics.inbound])
    producer = AsyncProducer({"bootstrap.servers": kafka_bootstrap})
    try:
        await producer.publish([record(topics.inbound, f"m{i}".encode()) for i in range(5)])
    finally:
        producer.close()
    values = {r.value for r in consume_until(kafka_bootstrap, topics.inbound, 5)}
    assert values == {f"m{i}".encode() for i in range(5)}


async def test_a_record_over_the_limit_is_rejected_by_index(
    kafka_bootstrap: str, topics: Topics
) -> None:
    create_topics(kafka_bootstrap, [topics.inbound])
    producer = AsyncProducer({"bootstrap.servers": kafka_bootstrap})
    batch = [
        record(topics.inbound, b"first"),
        record(topics.inbound, os.urandom(TWO_MB)),
        record(topics.inbound, b"third"),
    ]
    try:
        with pytest.raises(RecordsRejectedError) as raised:
            await producer.publish(batch)
    finally:
        producer.close()
    assert set(raised.value.rejected) == {1}
    assert "too large" in raised.value.rejected[1].lower()
    assert raised.value.transient is None
    # the other records of the batch were written
    values = {r.value for r in consume_until(kafka_bootstrap, topics.inbound, 2)}
    assert values == {b"first", b"third"}


async def test_the_broker_refusing_a_record_as_too_large_is_permanent(
    kafka_bootstrap: str, topics: Topics
) -> None:
    create_topics(kafka_bootstrap, [topics.inbound])
    # the client's own limit raised: the broker's 1 MB limit is what refuses the record
    # (random bytes, so lz4 cannot shrink it under the limit)
    producer = AsyncProducer(
        {"bootstrap.servers": kafka_bootstrap}, extra={"message.max.bytes": 10 * TWO_MB}
    )
    try:
        with pytest.raises(RecordsRejectedError) as raised:
            await producer.publish(
                [record(topics.inbound, b"small"), record(topics.inbound, os.urandom(TWO_MB))]
            )
    finally:
        producer.close()
    assert set(raised.value.rejected) == {1}
    assert "too large" in raised.value.rejected[1].lower()


async def test_an_invalid_topic_name_is_permanent(kafka_bootstrap: str, topics: Topics) -> None:
    create_topics(kafka_bootstrap, [topics.inbound])
    producer = AsyncProducer({"bootstrap.servers": kafka_bootstrap})
    try:
        with pytest.raises(RecordsRejectedError) as raised:
            await producer.publish(
                [record(topics.inbound, b"ok"), record(f"{topics.prefix}no spaces!", b"x")]
            )
    finally:
        producer.close()
    assert set(raised.value.rejected) == {1}
    assert "topic" in raised.value.rejected[1].lower()


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_broker_is_transient() -> None:
    producer = AsyncProducer(
        {"bootstrap.servers": f"127.0.0.1:{_unused_port()}"}, delivery_timeout_seconds=1.0
    )
    try:
        with pytest.raises(PublishError) as raised:
            await producer.publish([record("escalator.anything", b"x")])
    finally:
        producer.close(timeout_seconds=0.5)
    assert not isinstance(raised.value, RecordsRejectedError)


async def test_a_closed_producer_refuses_to_publish() -> None:
    producer = AsyncProducer({"bootstrap.servers": f"127.0.0.1:{_unused_port()}"})
    producer.close(timeout_seconds=0.1)
    with pytest.raises(PublishError):
        await producer.publish([record("escalator.anything", b"x")])
