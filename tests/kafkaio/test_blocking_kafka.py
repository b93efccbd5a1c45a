"""Produce-and-wait for commands: acknowledged, rejected per record, or failed transiently."""

from __future__ import annotations

import os
import socket

import pytest

from kafkaio import PublishError, Record, RecordsRejectedError
from kafkaio.blocking import BlockingProducer, produce_and_wait
from schemas import Topics
from tests.kafka_support import consume_until, create_topics

pytestmark = pytest.mark.kafka


def test_records_are_acknowledged_before_send_returns(kafka_bootstrap: str, topics: Topics) -> None:
    create_topics(kafka_bootstrap, [topics.rules], partitions=1)
    produce_and_wait(
        {"bootstrap.servers": kafka_bootstrap},
        [Record(topics.rules, b"k", b"v1"), Record(topics.rules, b"k", b"v2")],
    )
    assert [r.value for r in consume_until(kafka_bootstrap, topics.rules, 2)] == [b"v1", b"v2"]


def test_records_that_can_never_be_written_are_named(kafka_bootstrap: str, topics: Topics) -> None:
    create_topics(kafka_bootstrap, [topics.agent_actions])
    producer = BlockingProducer({"bootstrap.servers": kafka_bootstrap})
    batch = [
        Record(topics.agent_actions, b"case-1", os.urandom(2 * 1024 * 1024)),
        Record(topics.agent_actions, b"case-2", b"fine"),
        Record(f"{topics.prefix}not a topic!", b"case-3", b"x"),
    ]
    with pytest.raises(RecordsRejectedError) as raised:
        producer.send(batch)
    producer.close()
    assert set(raised.value.rejected) == {0, 2}
    assert raised.value.rejected[0].startswith("MSG_SIZE_TOO_LARGE")
    assert raised.value.rejected[2].startswith("TOPIC_EXCEPTION")
    assert raised.value.transient is None
    [written] = consume_until(kafka_bootstrap, topics.agent_actions, 1)
    assert written.value == b"fine"


def test_an_unreachable_broker_is_a_transient_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    producer = BlockingProducer({"bootstrap.servers": f"127.0.0.1:{port}"})
    assert not producer.wait_connected(timeout_seconds=0.5)
    with pytest.raises(PublishError) as raised:
        producer.send([Record("escalator.rules", b"k", b"v")], timeout_seconds=1.0)
    assert not isinstance(raised.value, RecordsRejectedError)
    assert "timed out" in str(raised.value)
