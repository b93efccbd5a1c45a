"""Topic admin: create the topics that are missing, with their partitions and configuration.

Existing topics are left as they are (a topic an operator created keeps its settings).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from confluent_kafka import KafkaException
from confluent_kafka.cimpl import NewTopic  # confluent_kafka.admin re-exports it untyped

from kafkaio import clients

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    """How to create one topic: its partitions and its topic configuration."""

    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)


def create_missing_topics(
    connection: clients.Connection,
    topics: Mapping[str, TopicSpec],
    replication_factor: int,
    timeout_seconds: float = 30.0,
) -> list[str]:
    """Create the topics that do not exist yet; the names of those created."""
    admin = clients.admin(connection)
    existing = set(admin.list_topics(timeout=timeout_seconds).topics)
    missing = [
        NewTopic(
            name,
            num_partitions=spec.partitions,
            replication_factor=replication_factor,
            config=dict(spec.config),
        )
        for name, spec in topics.items()
        if name not in existing
    ]
    if not missing:
        return []
    created: list[str] = []
    for name, future in admin.create_topics(missing, request_timeout=timeout_seconds).items():
        try:
            future.result()
            log.info("created topic %s", name)
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return created
