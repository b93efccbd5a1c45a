"""The session broker fixture and the Kafka test helpers, exercised against the real broker."""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import AdminClient

from schemas import Topics
from tests.kafka_support import (
    consume_until,
    create_topics,
    delete_topics_with_prefix,
    produce,
    produce_json,
)

pytestmark = pytest.mark.kafka


def test_broker_answers_metadata(kafka_bootstrap: str) -> None:
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    assert metadata.brokers


def test_topic_prefix_is_unique_per_test(topic_prefix: str, topics: Topics) -> None:
    assert topic_prefix.startswith("t")
    assert topic_prefix.endswith(".")
    assert len(topic_prefix) == 10
    assert topics.inbound == f"{topic_prefix}messages.inbound"


def test_create_topics_with_partitions_is_idempotent(kafka_bootstrap: str, topics: Topics) -> None:
    create_topics(kafka_bootstrap, [topics.inbound, topics.case_events], partitions=3)
    create_topics(kafka_bootstrap, [topics.inbound], partitions=3)
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    assert len(metadata.topics[topics.inbound].partitions) == 3
    assert len(metadata.topics[topics.case_events].partitions) == 3


def test_produce_json_and_consume_round_trip(kafka_bootstrap: str, topics: Topics) -> None:
    create_topics(kafka_bootstrap, [topics.inbound], partitions=4)
    before_ms = int(time.time() * 1000) - 1000
    values = [{"n": n, "sender": f"user{n % 3}"} for n in range(12)]
    produce_json(
        kafka_bootstrap,
        topics.inbound,
        values,
        key=lambda value: value["sender"],
        headers=[("source", b"test")],
    )

    records = consume_until(kafka_bootstrap, topics.inbound, 12, timeout=30)

    assert sorted(record.json()["n"] for record in records) == list(range(12))
    assert {record.key for record in records} == {b"user0", b"user1", b"user2"}
    assert all(record.header("source") == b"test" for record in records)
    assert all(record.timestamp_ms >= before_ms for record in records)
    by_key: dict[bytes | None, set[int]] = {}
    for record in records:
        by_key.setdefault(record.key, set()).add(record.partition)
    assert all(len(partitions) == 1 for partitions in by_key.values())  # keyed = one partition


def test_consume_until_predicate_and_auto_created_topic(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}auto"
    produce(kafka_bootstrap, topic, [(b"k", b"first"), (None, b"second"), (b"k", None)])

    wanted = {b"first", b"second", None}  # keyless records spread over the 4 partitions
    records = consume_until(
        kafka_bootstrap, topic, lambda seen: wanted <= {r.value for r in seen}, timeout=30
    )

    assert len(records) == 3
    assert [r.value for r in records if r.key == b"k"] == [b"first", None]  # one partition


def test_consume_until_times_out_loudly(kafka_bootstrap: str, topics: Topics) -> None:
    create_topics(kafka_bootstrap, [topics.dlq], partitions=1)
    produce(kafka_bootstrap, topics.dlq, [(None, b"only")])

    with pytest.raises(AssertionError, match="read 1 records"):
        consume_until(kafka_bootstrap, topics.dlq, 2, timeout=1.5)
    assert (
        len(consume_until(kafka_bootstrap, topics.dlq, 2, timeout=1.5, raise_on_timeout=False)) == 1
    )


def test_delete_topics_with_prefix_removes_only_those(kafka_bootstrap: str, topics: Topics) -> None:
    other = Topics(topics.prefix.rstrip(".") + "x.")
    create_topics(kafka_bootstrap, [topics.inbound, topics.dlq, other.inbound], partitions=1)

    delete_topics_with_prefix(kafka_bootstrap, topics.prefix)

    names = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    assert topics.inbound not in names
    assert topics.dlq not in names
    assert other.inbound in names
    delete_topics_with_prefix(kafka_bootstrap, other.prefix)
