"""Small typed helpers for tests that talk to the real Kafka broker (never a mock).

Create topics, produce bytes or JSON (or in a transaction), read a topic from the beginning
with a fresh consumer group until enough records have arrived, and read high watermarks.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
)
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource
from confluent_kafka.cimpl import NewTopic  # confluent_kafka.admin re-exports it untyped

from kafkaio.watermarks import watermarks

Headers = Sequence[tuple[str, bytes]]
Until = int | Callable[[Sequence["Record"]], bool]


@dataclass(frozen=True)
class Record:
    """One consumed record: where it was, its key, value bytes, headers and timestamp."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp_ms: int = 0

    def json(self) -> Any:
        """The value decoded as JSON."""
        if self.value is None:
            raise ValueError(f"record {self.topic}/{self.partition}@{self.offset} is a tombstone")
        return json.loads(self.value)

    def header(self, name: str) -> bytes | None:
        """The value of the last header called `name`, or None."""
        values = [value for key, value in self.headers if key == name]
        return values[-1] if values else None


def broker_answers(bootstrap: str, timeout: float = 10.0) -> bool:
    """Whether a broker at `bootstrap` answers a metadata request within `timeout`."""
    try:
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 4,
    config: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> None:
    """Create topics (ignoring ones that already exist) and wait until their leaders are known."""
    wanted = list(names)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new_topics = [
        NewTopic(name, num_partitions=partitions, replication_factor=1, config=dict(config or {}))
        for name in wanted
    ]
    for name, future in admin.create_topics(new_topics, operation_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"could not create topic {name}: {error}") from error
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=timeout)
        ready = [
            name
            for name in wanted
            if name in metadata.topics
            and metadata.topics[name].error is None
            and all(p.leader >= 0 for p in metadata.topics[name].partitions.values())
        ]
        if len(ready) == len(wanted):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"topics without leaders after {timeout}s: {set(wanted) - set(ready)}"
            )
        time.sleep(0.1)


def delete_topics_with_prefix(bootstrap: str, prefix: str, timeout: float = 10.0) -> None:
    """Delete every topic whose name starts with `prefix`; errors are ignored (cleanup only)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        names = [
            name for name in admin.list_topics(timeout=timeout).topics if name.startswith(prefix)
        ]
        if names:
            for future in admin.delete_topics(names, operation_timeout=timeout).values():
                future.result(timeout)
    except Exception:  # a test that broke the topics must not fail again in cleanup
        return


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | str | None, bytes | str | None]],
    headers: Headers | None = None,
    timeout: float = 30.0,
) -> int:
    """Produce (key, value) pairs, wait for every delivery report, and return how many."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})
    errors: list[str] = []

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            errors.append(str(error))

    count = 0
    for key, value in records:
        producer.produce(
            topic, key=key, value=value, headers=list(headers or []), on_delivery=on_delivery
        )
        producer.poll(0)
        count += 1
    remaining = producer.flush(timeout)
    if remaining or errors:
        raise RuntimeError(f"{remaining} undelivered, errors: {errors[:5]}")
    return count


def produce_in_a_transaction(
    bootstrap: str,
    records: Iterable[tuple[str, bytes | str | None, bytes | str | None]],
    timeout: float = 30.0,
    partitioner: str | None = None,
) -> None:
    """Produce (topic, key, value) records in one committed transaction: each partition
    written ends with the transaction's commit marker.

    `partitioner` "murmur2_random" puts a key where Escalator's own writers put it.
    """
    settings = {
        "bootstrap.servers": bootstrap,
        "transactional.id": f"test-{uuid.uuid4().hex}",
        "linger.ms": 0,
    }
    if partitioner is not None:
        settings["partitioner"] = partitioner
    producer = Producer(settings)
    producer.init_transactions(timeout)
    producer.begin_transaction()
    for topic, key, value in records:
        producer.produce(topic, key=key, value=value)
    producer.commit_transaction(timeout)


def produce_json(
    bootstrap: str,
    topic: str,
    values: Iterable[Any],
    key: Callable[[Any], str | None] | str | None = None,
    headers: Headers | None = None,
) -> int:
    """Produce JSON values; `key` is a fixed key or a function of the value."""

    def key_of(value: Any) -> str | None:
        return key(value) if callable(key) else key

    pairs = [(key_of(value), json.dumps(value).encode()) for value in values]
    return produce(bootstrap, topic, pairs, headers=headers)


def high_watermarks(
    bootstrap: str, partitions: Iterable[tuple[str, int]], timeout: float = 10.0
) -> dict[tuple[str, int], int]:
    """The high watermark of each of these (topic, partition), as the broker has it now."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"hw-{uuid.uuid4().hex}"})
    try:
        return {
            (topic, partition): watermarks(consumer, topic, partition, timeout)[1]
            for topic, partition in partitions
        }
    finally:
        consumer.close()


def consume_until(
    bootstrap: str,
    topic: str | Sequence[str],
    until: Until,
    timeout: float = 30.0,
    raise_on_timeout: bool = True,
) -> list[Record]:
    """Read `topic` from the beginning with a fresh group until `until` is met.

    `until` is a record count or a predicate over all records read so far. When `timeout`
    passes first this raises AssertionError (listing what was read), or returns the records
    read when `raise_on_timeout` is false.
    """
    done: Callable[[Sequence[Record]], bool] = (
        (lambda records: len(records) >= until) if isinstance(until, int) else until
    )
    topics = [topic] if isinstance(topic, str) else list(topic)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 1000,
            # A short session makes the group join fast on Tansu (it waits about half of it).
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        }
    )
    records: list[Record] = []
    try:
        consumer.subscribe(topics)
        deadline = time.monotonic() + timeout
        while not done(records):
            if time.monotonic() > deadline:
                if raise_on_timeout:
                    raise AssertionError(
                        f"{topics}: condition not met after {timeout}s; "
                        f"read {len(records)} records: {records[-5:]}"
                    )
                break
            message = consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue  # the topic may not exist yet
                raise RuntimeError(f"consume error: {error}")
            records.append(_record(message))
    finally:
        consumer.close()
    return records


def _record(message: Message) -> Record:
    """Copy a confluent-kafka message into a plain Record."""
    key = message.key()
    value = message.value()
    return Record(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=key.encode() if isinstance(key, str) else key,
        value=value.encode() if isinstance(value, str) else value,
        headers=_headers(message),
        timestamp_ms=message.timestamp()[1],
    )


def _headers(message: Message) -> list[tuple[str, bytes]]:
    """A message's headers as (name, bytes) pairs in order; a null header value becomes b""."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [
        (name, data.encode() if isinstance(data, str) else (data or b"")) for name, data in pairs
    ]


def topic_replication(bootstrap: str, names: list[str]) -> dict[str, tuple[int, str]]:
    """Per topic: replicas of partition 0 and the topic's own min.insync.replicas.

    Set on the topic itself, never inherited from the broker's default ("-" when inherited).
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 30
    while True:  # a topic just created may take a moment to be known to every request
        metadata = admin.list_topics(timeout=10)
        try:
            return _replication(admin, metadata, names)
        except (KafkaException, KeyError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _replication(admin: AdminClient, metadata: Any, names: list[str]) -> dict[str, tuple[int, str]]:
    resources = [ConfigResource("topic", name) for name in names]
    found: dict[str, tuple[int, str]] = {}
    for resource, future in admin.describe_configs(resources).items():
        configs = future.result(timeout=10)
        replicas = len(metadata.topics[resource.name].partitions[0].replicas)
        min_insync = configs["min.insync.replicas"]
        own = min_insync.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        found[resource.name] = (replicas, min_insync.value if own else "-")
    return found
