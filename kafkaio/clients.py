"""Construction of confluent-kafka consumers and admin clients: the only place that builds them.

Callers keep their own logic (what to subscribe, when to commit); this module only puts
together a client from the connection settings and what the caller asks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

Connection = Mapping[str, Any]
"""librdkafka settings: the connection (`KafkaSettings.librdkafka()`), maybe more."""


def consumer(
    connection: Connection, group_id: str, settings: Mapping[str, Any] | None = None
) -> Consumer:
    """A consumer in `group_id` that commits only when told to (no auto-commit).

    `settings` (librdkafka keys) override those defaults and add the caller's own.
    """
    return Consumer(
        {**connection, "group.id": group_id, "enable.auto.commit": False, **(settings or {})}
    )


def admin(connection: Connection) -> AdminClient:
    """An admin client (topics, consumer groups, offsets) on the connection."""
    return AdminClient(dict(connection))
