"""Read the records of whole topics written within a time range (by their Kafka timestamps).

Each partition starts at the first offset stamped at or after the start
(`offsets_for_times`) and is read up to its end offset as measured when reading began,
keeping records stamped before the end of the range. No consumer group is joined and no
offset committed: reading history changes nothing for anyone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from kafkaio.clients import consumer
from kafkaio.record import ConsumedRecord
from kafkaio.watermarks import offsets_for_times, watermarks

QUIET = 2
"""librdkafka log level: failures surface as one exception, not a line every 50 ms."""


class RangeReadError(Exception):
    """A topic could not be read to its end."""


def read_range(
    connection: Mapping[str, Any],
    topics: list[str],
    start: datetime | None,
    end: datetime,
    *,
    timeout_seconds: float = 30.0,
    progress: Callable[[int], None] | None = None,
) -> Iterator[ConsumedRecord]:
    """Every record of `topics` stamped in [start, end), partition by partition order.

    A topic that does not exist has no records. Records of different partitions come
    interleaved: callers put them in event-time order themselves.
    """
    client = consumer(
        connection,
        "escalator-history-read-unused",
        {"enable.partition.eof": True, "log_level": QUIET, "fetch.max.bytes": 52_428_800},
    )
    try:
        bounds = _assign(client, topics, start, timeout_seconds)
        remaining = {tp: end for tp, (first, end) in bounds.items() if first < end}
        read = 0
        while remaining:
            message = client.poll(timeout_seconds)
            if message is None:
                raise RangeReadError(f"timed out reading {sorted(t for t, _ in remaining)}")
            error = message.error()
            tp = (message.topic() or "", message.partition() or 0)
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    remaining.pop(tp, None)
                    continue
                if error.fatal() or error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                    raise RangeReadError(f"cannot read {tp[0]}: {error}")
                continue
            offset = message.offset() or 0
            if tp in remaining and offset + 1 >= remaining[tp]:
                remaining.pop(tp)
            _kind, stamp = message.timestamp()
            at = datetime.fromtimestamp(stamp / 1000, UTC)
            if at < end and (start is None or at >= start):
                read += 1
                if progress is not None and read % 10_000 == 0:
                    progress(read)
                yield ConsumedRecord(
                    topic=tp[0],
                    partition=tp[1],
                    offset=offset,
                    key=message.key(),
                    value=message.value(),
                    timestamp=at,
                )
    finally:
        client.close()


def _assign(
    client: Any, topics: list[str], start: datetime | None, timeout_seconds: float
) -> dict[tuple[str, int], tuple[int, int]]:
    """Assign every partition at the range's first offset; (that offset, the end offset now)."""
    bounds: dict[tuple[str, int], tuple[int, int]] = {}
    for topic in topics:
        metadata = client.list_topics(topic, timeout=timeout_seconds).topics.get(topic)
        if metadata is None or metadata.error is not None:
            continue
        for partition in sorted(metadata.partitions):
            low, high = watermarks(client, topic, partition, timeout_seconds)
            bounds[topic, partition] = (low, high)
    if start is not None and bounds:
        millis = int(start.timestamp() * 1000)
        found = offsets_for_times(
            client, [TopicPartition(t, p, millis) for t, p in bounds], timeout_seconds
        )
        for tp in found:
            low, high = bounds[tp.topic, tp.partition]
            # -1: nothing stamped at or after the start in that partition
            bounds[tp.topic, tp.partition] = (max(low, tp.offset) if tp.offset >= 0 else high, high)
    client.assign([TopicPartition(t, p, first) for (t, p), (first, _end) in bounds.items()])
    return bounds
