"""Kafka side of rule set history: one atomic publish to `rules` and `rules.history`, read back.

A publish writes the active set (compacted `rules`, what workers hot-reload) and its
history entry (`rules.history`, one partition, kept forever) in one Kafka transaction:
both become visible or neither does. Readers use `read_committed`, the librdkafka default,
which is also what the workers' rules follower uses, so an aborted publish is never seen.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # confluent_kafka.admin re-exports it untyped

from kafkaio.errors import PublishError

Connection = Mapping[str, str | int | float | bool]

HISTORY_TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
"""A history topic keeps every record forever: version numbers are positions in it."""


def publisher_transactional_id(rules_topic: str) -> str:
    """The transactional id every rules publisher of a deployment shares (and its ACL names)."""
    return f"escalator-rules-publish:{rules_topic}"


QUIET = 2
"""librdkafka log level of these short-lived clients: failures surface as one exception each,
not as a connection error line every 50 ms."""


class HistoryReadError(Exception):
    """The history topic could not be read to its end."""


def ensure_history_topic(
    connection: Connection, topic: str, replication_factor: int, timeout_seconds: float = 30.0
) -> None:
    """Create the one-partition, keep-forever history topic unless it exists."""
    admin = AdminClient(dict(connection))
    if topic in admin.list_topics(timeout=timeout_seconds).topics:
        return
    created = admin.create_topics(
        [NewTopic(topic, 1, replication_factor, config=dict(HISTORY_TOPIC_CONFIG))],
        request_timeout=timeout_seconds,
    )
    for future in created.values():
        try:
            future.result()
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


def publish_both(
    connection: Connection,
    *,
    active: tuple[str, bytes, bytes],
    history: tuple[str, bytes, bytes],
    transactional_id: str,
    timeout_seconds: float = 30.0,
) -> None:
    """Write `(topic, key, value)` for the history and the active set in one transaction.

    Publishers sharing `transactional_id` fence each other, so two publishes at once
    cannot interleave: the older one fails and nothing of it becomes visible.
    """
    producer = Producer(
        {
            **connection,
            "transactional.id": transactional_id,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "log_level": QUIET,
        }
    )
    try:
        producer.init_transactions(timeout_seconds)
        producer.begin_transaction()
        for topic, key, value in (history, active):
            producer.produce(topic, key=key, value=value)
        producer.commit_transaction(timeout_seconds)
    except KafkaException as exc:
        # if the transaction is already dead, the broker aborts it on its own
        with contextlib.suppress(KafkaException):
            producer.abort_transaction(timeout_seconds)
        raise PublishError(f"rule set not published: {exc.args[0]}") from exc


def read_all(connection: Connection, topic: str, timeout_seconds: float = 10.0) -> list[bytes]:
    """Every committed record value of a one-partition topic, oldest first."""
    consumer = Consumer(
        {
            **connection,
            "group.id": "escalator-rules-history-unused",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "log_level": QUIET,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_seconds)
        if metadata.topics[topic].error is not None:
            return []  # no history yet
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        values: list[bytes] = []
        last_error = "no answer"
        while True:
            message = consumer.poll(timeout_seconds)
            if message is None:
                raise HistoryReadError(f"timed out reading {topic}: {last_error}")
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return values
                if error.fatal() or error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                    raise HistoryReadError(f"cannot read {topic}: {error}")
                # e.g. no rights on the (unused) group's coordinator: reading assigned
                # partitions needs none, so go on
                last_error = str(error)
                continue
            value = message.value()
            if value is not None:
                values.append(value)
    finally:
        consumer.close()
