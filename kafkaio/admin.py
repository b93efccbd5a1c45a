"""Topic admin: create the topics that are missing, replicated, with their configuration.

Existing topics are left as they are (a topic an operator created keeps its settings).
Replication: a configured factor, or by default 3 where the cluster has 3 or more brokers,
else the broker count; `min.insync.replicas` is the factor minus one (at least 1), so a
write acknowledged with `acks=all` survives the loss of any one broker.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from confluent_kafka import KafkaException
from confluent_kafka.cimpl import NewTopic  # confluent_kafka.admin re-exports it untyped

from kafkaio import clients

log = logging.getLogger(__name__)


DEFAULT_REPLICATION_FACTOR = 3
"""Replicas per partition when the cluster has enough brokers and none is configured."""


@dataclass(frozen=True)
class Replication:
    """How a created topic is replicated: its factor and the replicas a write must reach."""

    factor: int
    min_insync: int

    @property
    def topic_config(self) -> dict[str, str]:
        """The topic configuration that carries `min_insync`."""
        return {"min.insync.replicas": str(self.min_insync)}


def replication_for(brokers: int, configured: int | None = None) -> Replication:
    """The replication of new topics on a cluster of `brokers` (the configured factor wins)."""
    factor = configured if configured is not None else min(DEFAULT_REPLICATION_FACTOR, brokers)
    factor = max(1, factor)
    return Replication(factor=factor, min_insync=max(1, factor - 1))


@dataclass(frozen=True)
class TopicSpec:
    """How to create one topic: its partitions and its topic configuration."""

    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)


def create_missing_topics(
    connection: clients.Connection,
    topics: Mapping[str, TopicSpec],
    replication_factor: int | None = None,
    timeout_seconds: float = 30.0,
) -> Replication:
    """Create the topics that do not exist yet; returns the replication new topics get.

    `replication_factor` None picks it from the cluster's broker count (`replication_for`).
    A topic's own `min.insync.replicas` in its spec wins over the derived one.
    """
    admin = clients.admin(connection)
    metadata = admin.list_topics(timeout=timeout_seconds)
    replication = replication_for(len(metadata.brokers), replication_factor)
    missing = [
        NewTopic(
            name,
            num_partitions=spec.partitions,
            replication_factor=replication.factor,
            config={**replication.topic_config, **spec.config},
        )
        for name, spec in topics.items()
        if name not in metadata.topics
    ]
    if not missing:
        return replication
    for name, future in admin.create_topics(missing, request_timeout=timeout_seconds).items():
        try:
            future.result()
            log.info("created topic %s (replication factor %d)", name, replication.factor)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return replication
