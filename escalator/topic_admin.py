"""Creating Escalator's topics up front, with the configured partitions and retention.

Relying on broker auto-creation would give every topic the broker's default partition
count; the internal repartition topics must match the inbound topic's count.
"""

from __future__ import annotations

from collections.abc import Iterable

from escalator.settings import KafkaSettings
from kafkaio.admin import Replication, TopicSpec, create_missing_topics


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
        topics.rules_candidate: {"cleanup.policy": "compact"},  # the shadow rule set
        topics.rules_shadow: {},  # the shadow set's disagreements
        topics.identity: {"cleanup.policy": "compact"},
        topics.state_changelog("customers"): {"cleanup.policy": "compact"},
        topics.state_changelog("cases"): {"cleanup.policy": "compact"},
    }
    for queue in queues:
        names[topics.queue(queue)] = {}
    return names


def ensure_topics(
    kafka: KafkaSettings, topics: dict[str, dict[str, str]], timeout_seconds: float = 30.0
) -> Replication:
    """Create the topics that do not exist yet (replicated); existing ones are left as they are.

    Returns the replication new topics get (`ESCALATOR_KAFKA_REPLICATION_FACTOR`, or picked
    from the broker count).
    """
    topics_of = kafka.topics
    single = (
        topics_of.rules,
        topics_of.rules_history,
        topics_of.rules_candidate,
        topics_of.assigner,
    )
    specs = {
        name: TopicSpec(1 if name in single else kafka.partitions, config)
        for name, config in topics.items()
    }
    return create_missing_topics(
        kafka.librdkafka(), specs, kafka.replication_factor, timeout_seconds
    )
