"""Consumer lag, DLQ size and unrouted messages measured from a real broker's offsets."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from escalator.observability.kafka_lag import KafkaLagCollector, WatchedGroup
from tests.kafka_support import create_topics

pytestmark = pytest.mark.kafka


def produce_at(bootstrap: str, topic: str, partition: int, timestamps_ms: list[int]) -> None:
    """One record per timestamp on one partition, with that record timestamp."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for n, timestamp in enumerate(timestamps_ms):
        producer.produce(topic, value=b"x%d" % n, partition=partition, timestamp=timestamp)
    assert producer.flush(30) == 0


def commit(bootstrap: str, group: str, topic: str, partition: int, offset: int) -> None:
    """Commit `offset` for a group on one partition, as a consumer of that group would."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        consumer.commit(offsets=[TopicPartition(topic, partition, offset)], asynchronous=False)
    finally:
        consumer.close()


def test_lag_dlq_and_unrouted(kafka_bootstrap: str, topic_prefix: str) -> None:
    inbound, dlq = f"{topic_prefix}messages.inbound", f"{topic_prefix}messages.dlq"
    group = f"{topic_prefix}worker"
    create_topics(kafka_bootstrap, [inbound, dlq], partitions=2)
    now_ms = int(time.time() * 1000)
    old = now_ms - 600_000  # ten minutes ago
    # partition 0: five old records, the group consumed two; partition 1: three fresh, none read
    produce_at(kafka_bootstrap, inbound, 0, [old] * 5)
    produce_at(kafka_bootstrap, inbound, 1, [now_ms] * 3)
    produce_at(kafka_bootstrap, dlq, 0, [now_ms] * 4)
    commit(kafka_bootstrap, group, inbound, 0, 2)

    collector = KafkaLagCollector(
        {"bootstrap.servers": kafka_bootstrap},
        [WatchedGroup(group, [inbound])],
        dead_letter_topic=dlq,
        unrouted=WatchedGroup(group, [inbound]),
        unrouted_after_seconds=60,
    )
    registry = CollectorRegistry()
    registry.register(collector)
    collector.start()
    try:
        deadline = time.monotonic() + 30
        while registry.get_sample_value("escalator_dead_letter_records") is None:
            assert time.monotonic() < deadline, "the collector never measured"
            time.sleep(0.2)
    finally:
        collector.stop()

    def lag(partition: int) -> float | None:
        labels = {"group": group, "topic": inbound, "partition": str(partition)}
        return registry.get_sample_value("escalator_consumer_lag_records", labels)

    assert lag(0) == 3
    assert lag(1) == 3  # never committed: counted from the start
    assert registry.get_sample_value("escalator_dead_letter_records") == 4
    # the three unread old records are unrouted; the three fresh ones are not (yet)
    assert registry.get_sample_value("escalator_messages_unrouted") == 3


def test_before_any_measurement_the_families_have_no_samples() -> None:
    collector = KafkaLagCollector(
        {"bootstrap.servers": "127.0.0.1:1"},
        [WatchedGroup("g", ["t"])],
        dead_letter_topic="d",
        unrouted=WatchedGroup("g", ["t"]),
    )
    families = {family.name: family.samples for family in collector.collect()}
    assert families == {
        "escalator_consumer_lag_records": [],
        "escalator_dead_letter_records": [],
        "escalator_messages_unrouted": [],
    }


def test_a_transaction_marker_at_the_end_is_not_an_unrouted_message(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Stage C writes `messages.threaded` in transactions: its partitions end with a marker.

    A worker that read every record commits the offset after the last record, one short of
    the end, so counting offsets alone called the marker an unrouted message for ever.
    """
    threaded = f"{topic_prefix}messages.threaded"
    group = f"{topic_prefix}worker"
    create_topics(kafka_bootstrap, [threaded], partitions=2)
    old = int(time.time() * 1000) - 600_000
    for partition in (0, 1):
        producer = Producer(
            {"bootstrap.servers": kafka_bootstrap, "transactional.id": f"{group}-{partition}"}
        )
        producer.init_transactions(30)
        producer.begin_transaction()
        producer.produce(threaded, value=b"moved", partition=partition, timestamp=old)
        producer.produce(threaded, value=b"moved too", partition=partition, timestamp=old)
        producer.commit_transaction(30)
    commit(kafka_bootstrap, group, threaded, 0, 2)  # read both records: offset 2 is the marker
    commit(kafka_bootstrap, group, threaded, 1, 1)  # one record still unread

    collector = KafkaLagCollector(
        {"bootstrap.servers": kafka_bootstrap},
        [],
        unrouted=WatchedGroup(group, [threaded]),
        unrouted_after_seconds=60,
    )
    snapshot = collector.measure()
    assert snapshot.unrouted == 1
