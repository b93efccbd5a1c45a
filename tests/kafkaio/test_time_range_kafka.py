"""Reading the records of whole topics written within a time range, by Kafka timestamp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer

from kafkaio.time_range import read_range
from schemas import Topics
from tests.kafka_support import create_topics

pytestmark = pytest.mark.kafka

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
"""In the past: brokers refuse timestamps far ahead of their clock."""


def _produce(bootstrap: str, topic: str, stamped: list[tuple[int, int]]) -> None:
    """(partition, minutes after T0) records, valued `p<partition>m<minutes>`."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    errors: list[str] = []
    for partition, minutes in stamped:
        millis = int((T0 + timedelta(minutes=minutes)).timestamp() * 1000)
        producer.produce(
            topic,
            value=f"p{partition}m{minutes}",
            partition=partition,
            timestamp=millis,
            on_delivery=lambda error, _m: errors.append(str(error)) if error else None,
        )
    assert producer.flush(30) == 0
    assert errors == []


def test_only_records_stamped_within_the_range_of_every_partition_are_read(
    kafka_bootstrap: str, topics: Topics
) -> None:
    create_topics(kafka_bootstrap, [topics.inbound, topics.agent_actions], partitions=3)
    _produce(kafka_bootstrap, topics.inbound, [(0, 0), (0, 10), (0, 20), (1, 5), (1, 30)])
    _produce(kafka_bootstrap, topics.agent_actions, [(2, 15), (2, 25)])  # partition 0, 1 empty
    connection = {"bootstrap.servers": kafka_bootstrap}
    everything = [
        r.value
        for r in read_range(
            connection, [topics.inbound, topics.agent_actions], None, T0 + timedelta(hours=1)
        )
    ]
    assert sorted(v.decode() for v in everything if v) == sorted(
        ["p0m0", "p0m10", "p0m20", "p1m5", "p1m30", "p2m15", "p2m25"]
    )
    window = read_range(
        connection,
        [topics.inbound, topics.agent_actions, f"{topics.prefix}no.such.topic"],
        T0 + timedelta(minutes=5),
        T0 + timedelta(minutes=25),
    )
    found = {(r.topic, (r.value or b"").decode()): r.timestamp for r in window}
    assert found == {
        (topics.inbound, "p0m10"): T0 + timedelta(minutes=10),
        (topics.inbound, "p0m20"): T0 + timedelta(minutes=20),
        (topics.inbound, "p1m5"): T0 + timedelta(minutes=5),
        (topics.agent_actions, "p2m15"): T0 + timedelta(minutes=15),
    }
    assert (
        list(
            read_range(
                connection, [topics.inbound], T0 + timedelta(hours=2), T0 + timedelta(hours=3)
            )
        )
        == []
    )
