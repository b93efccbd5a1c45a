"""Creating Escalator's topics up front, with the configured partitions and retention.

Relying on broker auto-creation would give every topic the broker's default partition
count; the internal repartition topics must match the inbound topic's count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # confluent_kafka.admin re-exports it untyped

from escalator.settings import KafkaSettings

log = logging.getLogger(__name__)


def core_topics(
    kafka: KafkaSettings, queues: Iterable[str] = ("general",)
) -> dict[str, dict[str, str]]:
    """Every topic a deployment needs, with its topic configuration."""
    topics = kafka.topics
    names: dict[str, dict[str, str]] = {
        topics.inbound: {},
        topics.dlq: {},
        # the audit log: kept forever, so `escalator db rebuild` can replay every case
        topics.case_events: {"retention.ms": "-1"},
        topics.agent_actions: {},
        topics.agent_presence: {"cleanup.policy": "compact"},
        topics.resolved: {},
        topics.threaded: {},
        topics.rules: {"cleanup.policy": "compact"},
        topics.identity: {"cleanup.policy": "compact"},
        topics.state_changelog("customers"): {"cleanup.policy": "compact"},
        topics.state_changelog("cases"): {"cleanup.policy": "compact"},
    }
    for queue in queues:
        names[topics.queue(queue)] = {}
    return names


def ensure_topics(
    kafka: KafkaSettings, topics: dict[str, dict[str, str]], timeout_seconds: float = 30.0
) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AdminClient(kafka.librdkafka())
    existing = set(admin.list_topics(timeout=timeout_seconds).topics)
    missing = [
        NewTopic(
            name,
            num_partitions=1
            if name in (kafka.topics.rules, kafka.topics.assigner)
            else kafka.partitions,
            replication_factor=kafka.replication_factor,
            config=config,
        )
        for name, config in topics.items()
        if name not in existing
    ]
    if not missing:
        return
    for name, future in admin.create_topics(missing, request_timeout=timeout_seconds).items():
        try:
            future.result()
            log.info("created topic %s", name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
