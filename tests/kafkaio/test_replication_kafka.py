"""Replicated by default: the factor follows the cluster, min.insync.replicas = factor - 1.

The shared test broker is a single broker, so what can be shown on it is shown on it:
the topics Escalator (and faust's leader topic) create get the factor and min.insync the
rule gives for one broker, and a configured factor is used as configured.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from escalator.topic_admin import core_topics, ensure_topics
from kafkaio.admin import Replication, TopicSpec, create_missing_topics, replication_for
from kafkaio.faust_config import faust_internal_topics, faust_replication
from kafkaio.settings import KafkaSettings
from tests.kafka_support import topic_replication


@pytest.mark.parametrize(
    ("brokers", "configured", "expected"),
    [
        (1, None, Replication(1, 1)),
        (2, None, Replication(2, 1)),
        (3, None, Replication(3, 2)),
        (5, None, Replication(3, 2)),
        (5, 5, Replication(5, 4)),
        (3, 1, Replication(1, 1)),
        (0, None, Replication(1, 1)),
    ],
)
def test_the_factor_follows_the_broker_count_unless_configured(
    brokers: int, configured: int | None, expected: Replication
) -> None:
    assert replication_for(brokers, configured) == expected


def test_faust_creates_its_own_topics_with_the_same_factor() -> None:
    assert faust_replication(Replication(3, 2)) == {"topic_replication_factor": 3}
    assert list(faust_internal_topics("escalator.worker")) == [
        "escalator.worker-__assignor-__leader"
    ]


def settings(bootstrap: str, prefix: str, **values: int) -> KafkaSettings:
    """Kafka settings for this test's broker and topic prefix (named as in the environment)."""
    kafka = KafkaSettings(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap, ESCALATOR_TOPIC_PREFIX=prefix, **values
    )
    assert kafka.topics.inbound.startswith(prefix)
    return kafka


def broker_count(bootstrap: str) -> int:
    return len(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).brokers)


@pytest.mark.kafka
def test_created_topics_are_replicated_with_min_insync(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    kafka = settings(kafka_bootstrap, topic_prefix)
    replication = ensure_topics(kafka, core_topics(kafka))
    leader = faust_internal_topics(f"{topic_prefix}worker")
    create_missing_topics(kafka.librdkafka(), leader, replication.factor)
    brokers = broker_count(kafka_bootstrap)
    assert replication == replication_for(brokers)
    names = [*core_topics(kafka), *leader]
    expected = (replication.factor, str(replication.min_insync))
    assert topic_replication(kafka_bootstrap, names) == dict.fromkeys(names, expected)


@pytest.mark.kafka
def test_a_topic_keeps_its_own_min_insync(kafka_bootstrap: str, topic_prefix: str) -> None:
    name = f"{topic_prefix}own"
    spec = TopicSpec(partitions=1, config={"min.insync.replicas": "1", "retention.ms": "-1"})
    create_missing_topics({"bootstrap.servers": kafka_bootstrap}, {name: spec})
    assert topic_replication(kafka_bootstrap, [name])[name][1] == "1"


@pytest.mark.kafka
def test_a_configured_factor_is_used_as_configured(kafka_bootstrap: str, topic_prefix: str) -> None:
    brokers = broker_count(kafka_bootstrap)
    kafka = settings(kafka_bootstrap, topic_prefix, replication_factor=brokers + 1)
    # more replicas than brokers: the broker refuses, nothing is silently scaled down
    with pytest.raises(KafkaException, match=r"(?i)replication"):
        ensure_topics(kafka, {kafka.topics.inbound: {}})
