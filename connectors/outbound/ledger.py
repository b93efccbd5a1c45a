"""The reply service's memory of what it has delivered: the dedup state that survives restarts.

Every delivery (a reply by its case event id, a notification by escalation event, target and
medium) has a key. Its outcome is written to the compacted topic
`<prefix>replies.deliveries` and acknowledged by Kafka *before* the service commits the
offset of the `cases.events` record that asked for it, and it is looked up before every
send. So a reply is not sent again when a commit fails, when the service restarts or moves
to another replica, when offsets are reset, or when the worker writes the same event twice.

The memory is bounded: at most `max_entries` keys, none older than `max_age_seconds` by the
wall clock of the service that wrote it (the topic's retention is the same age). On a
partition assignment the service reads the topic to its end before it delivers anything, so
it knows what the previous owner of the partition did up to its last acknowledged write.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from confluent_kafka import KafkaError, TopicPartition
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from connectors.outbound._acked import AckedWriter
from kafkaio import clients
from kafkaio.watermarks import watermarks


class Outcome(StrEnum):
    """Where a delivery stands."""

    SENDING = "sending"
    """Being handed to a provider without idempotency; if nothing follows, it may have arrived."""
    UNSENT = "unsent"
    """Tried and not delivered, no attempt in flight (the service stopped between retries)."""
    SENT = "sent"
    """The provider accepted it."""
    FAILED = "failed"
    """Given up; its `reply.failed` / `notification.failed` event was acknowledged."""


FINAL = frozenset({Outcome.SENT, Outcome.FAILED})
"""Outcomes after which a delivery is never tried again."""


class LedgerEntry(BaseModel):
    """One record of `replies.deliveries` (key = the delivery key)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    key: str
    outcome: Outcome
    at: AwareDatetime
    case_id: str
    source: str = ""
    """`topic/partition/offset` of the `cases.events` record that asked for the delivery."""
    failure_event: str | None = None
    """With `failed`: the failure event, exactly as written to `cases.events` (so a replay
    writes the same event again, never a second version of it)."""


@dataclass(frozen=True)
class LedgerBounds:
    """How much the ledger remembers: keys in memory, and how long (also the topic's retention)."""

    max_entries: int = 200_000
    max_age_seconds: float = 3 * 86_400.0


class LedgerUnavailable(Exception):  # noqa: N818 - a state, not an error of ours
    """The ledger topic could not be read to its end in time; nothing may be delivered yet."""


class DeliveryLedger:
    """Delivery keys and their outcomes: in a bounded memory, and on the ledger topic."""

    def __init__(
        self,
        connection: Mapping[str, str | int | float | bool],
        topic: str,
        writer: AckedWriter,
        bounds: LedgerBounds | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.topic = topic
        self.bounds = bounds or LedgerBounds()
        self._writer = writer
        self._clock = clock
        self._entries: OrderedDict[str, tuple[Outcome, float, str | None]] = OrderedDict()
        self._next_offsets: dict[int, int] = {}
        # assign() only: this group never joins nor commits; it only names the reader
        self._reader = clients.consumer(
            connection,
            f"{topic}.reader",
            {"enable.partition.eof": False, "auto.offset.reset": "earliest"},
        )

    def __len__(self) -> int:
        return len(self._entries)

    def outcome(self, key: str) -> Outcome | None:
        """The recorded outcome of a delivery, or None when it is not remembered."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() - entry[1] > self.bounds.max_age_seconds:
            del self._entries[key]
            return None
        return entry[0]

    def recorded_at(self, key: str) -> float | None:
        """When the outcome of a delivery was recorded (epoch seconds), if it is remembered."""
        entry = self._entries.get(key) if self.outcome(key) is not None else None
        return None if entry is None else entry[1]

    def failure_event(self, key: str) -> str | None:
        """The failure event recorded with a `failed` outcome, if any."""
        entry = self._entries.get(key)
        return None if entry is None else entry[2]

    def record(
        self,
        key: str,
        outcome: Outcome,
        case_id: str,
        source: str,
        failure_event: str | None = None,
    ) -> None:
        """Write an outcome and wait for Kafka's acknowledgement, then remember it."""
        now = self._clock()
        entry = LedgerEntry(
            key=key,
            outcome=outcome,
            at=datetime.fromtimestamp(now, UTC),
            case_id=case_id,
            source=source,
            failure_event=failure_event,
        )
        self._writer.write(
            self.topic, key.encode("utf-8", "surrogatepass"), entry.model_dump_json().encode()
        )
        self._remember(key, outcome, now, failure_event)

    def catch_up(self, timeout_seconds: float = 60.0) -> int:
        """Read the ledger topic from where this reader stands to its current end.

        Returns how many records were read; raises LedgerUnavailable after the timeout.
        """
        deadline = time.monotonic() + timeout_seconds
        ends = self._ends(timeout_seconds)
        if not ends:
            return 0
        self._reader.assign([TopicPartition(self.topic, p, self._next_offsets[p]) for p in ends])
        read = 0
        try:
            while ends:
                if time.monotonic() > deadline:
                    raise LedgerUnavailable(f"{self.topic}: not read to its end in time")
                message = self._reader.poll(0.5)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise LedgerUnavailable(f"{self.topic}: {error}")
                    continue
                partition, offset = message.partition() or 0, message.offset() or 0
                self._next_offsets[partition] = offset + 1
                self._apply(message.value())
                read += 1
                if offset + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
        finally:
            self._reader.unassign()
        return read

    def _ends(self, timeout_seconds: float) -> dict[int, int]:
        """Each partition's end offset, for the partitions with records still to read."""
        try:
            metadata = self._reader.list_topics(self.topic, timeout=timeout_seconds)
            found = metadata.topics.get(self.topic)
            if found is None or found.error is not None:
                raise LedgerUnavailable(f"{self.topic}: {found.error if found else 'missing'}")
            ends: dict[int, int] = {}
            for partition in found.partitions:
                low, high = watermarks(self._reader, self.topic, partition, timeout_seconds)
                start = max(self._next_offsets.get(partition, low), low)
                self._next_offsets[partition] = start
                if high > start:
                    ends[partition] = high
        except LedgerUnavailable:
            raise
        except Exception as exc:  # KafkaException and timeouts of the metadata calls
            raise LedgerUnavailable(f"{self.topic}: {exc}") from exc
        return ends

    def close(self) -> None:
        """Release the reader."""
        self._reader.close()

    def _apply(self, raw: bytes | None) -> None:
        if not raw:
            return
        try:
            entry = LedgerEntry.model_validate_json(raw)
        except ValidationError:
            return  # not ours to judge: a record we cannot read remembers nothing
        self._remember(entry.key, entry.outcome, entry.at.timestamp(), entry.failure_event)

    def _remember(
        self, key: str, outcome: Outcome, at: float, failure_event: str | None = None
    ) -> None:
        now = self._clock()
        if now - at > self.bounds.max_age_seconds:
            return
        self._entries[key] = (outcome, at, failure_event)
        self._entries.move_to_end(key)
        while len(self._entries) > self.bounds.max_entries:
            self._entries.popitem(last=False)
        # the oldest entries sit at the front: drop those past their age
        while self._entries:
            oldest_key, (_, oldest_at, _) = next(iter(self._entries.items()))
            if now - oldest_at <= self.bounds.max_age_seconds:
                break
            del self._entries[oldest_key]
