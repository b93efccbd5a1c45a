"""One assigner at a time: leadership is holding the only partition of a one-partition topic.

Every desk process joins the same consumer group on `desk.assigner`. Kafka gives the
topic's single partition to exactly one member, so exactly one process assigns; when it
stops or dies, the group's coordinator hands the partition to another member within the
session timeout. No records are ever read: the topic exists only to be owned. Even if two
processes believed they led for a moment (a long pause past the session timeout), stage C
would still refuse the second assignment of any case, because it is the case's only writer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from kafkaio import clients
from queues.desk.metrics import ASSIGNER_LEADER

log = logging.getLogger(__name__)


class Leadership:
    """Membership of the assigner group; `leading` while this member owns partition 0."""

    def __init__(
        self,
        kafka_config: Mapping[str, Any],
        topic: str,
        group_id: str | None = None,
        session_timeout_seconds: float = 10.0,
    ) -> None:
        self.topic = topic
        self._leading = threading.Event()
        self._consumer = clients.consumer(
            kafka_config,
            # one group per deployment: named after its (prefixed) election topic
            group_id or topic,
            {
                "session.timeout.ms": int(session_timeout_seconds * 1000),
                "heartbeat.interval.ms": int(session_timeout_seconds * 1000 / 4),
                # a process joining does not take the partition from the one that holds it
                "partition.assignment.strategy": "cooperative-sticky",
            },
        )
        self._consumer.subscribe(
            [topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    @property
    def leading(self) -> bool:
        """Whether this member holds the partition now."""
        return self._leading.is_set()

    def keep_alive(self, timeout_seconds: float) -> bool:
        """Serve the group protocol for up to `timeout_seconds`; whether this member leads."""
        self._consumer.poll(timeout_seconds)
        return self.leading

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if partitions:
            log.info("this desk process now runs the assigner")
            self._leading.set()
            ASSIGNER_LEADER.set(1)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if partitions and self._leading.is_set():
            log.info("this desk process no longer runs the assigner")
            self._leading.clear()
            ASSIGNER_LEADER.set(0)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._leading.is_set():
            log.warning("this desk process lost the assigner partition (session expired)")
        self._leading.clear()
        ASSIGNER_LEADER.set(0)

    def close(self) -> None:
        """Leave the group, so another member takes over at once."""
        self._leading.clear()
        ASSIGNER_LEADER.set(0)
        self._consumer.close()
