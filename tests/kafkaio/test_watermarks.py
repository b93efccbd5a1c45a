"""Offset lookups wait out a moving partition leader, and give up on anything else."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from kafkaio import watermarks as module
from kafkaio.watermarks import retrying, watermarks


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "RETRY_PAUSE_SECONDS", 0.0)


class FlakyConsumer:
    """Answers `failures` errors first, then the watermarks."""

    def __init__(self, failures: list[int]) -> None:
        self.failures = failures
        self.calls: list[TopicPartition] = []

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        self.calls.append(tp)
        if self.failures:
            raise KafkaException(KafkaError(self.failures.pop(0)))
        return (3, 17)


def test_a_lookup_answered_while_the_leader_moves_is_tried_again() -> None:
    consumer = FlakyConsumer([KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE])
    assert watermarks(consumer, "t", 2, timeout_seconds=5) == (3, 17)
    assert [(tp.topic, tp.partition) for tp in consumer.calls] == [("t", 2)] * 3


def test_any_other_error_is_raised_at_once() -> None:
    consumer = FlakyConsumer([KafkaError.TOPIC_AUTHORIZATION_FAILED])
    with pytest.raises(KafkaException) as raised:
        watermarks(consumer, "t", 0, timeout_seconds=5)
    assert raised.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert len(consumer.calls) == 1


def test_a_leader_that_never_comes_back_fails_at_the_timeout() -> None:
    tries = 0

    def lookup() -> int:
        nonlocal tries
        tries += 1
        raise KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))

    with pytest.raises(KafkaException):
        retrying(lookup, timeout_seconds=0.05)
    assert tries > 1
