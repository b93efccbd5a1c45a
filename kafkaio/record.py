"""The one record type every producer of ours writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Record:
    """One record to write: topic, key and value bytes, optional headers and partition.

    `partition` None lets the partitioner choose from the key (murmur2, as Java clients do).
    """

    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()
    partition: int | None = None

    @property
    def size(self) -> int:
        """Bytes of key, value and headers: what counts against the broker's record limit."""
        return (
            len(self.key or b"")
            + len(self.value)
            + sum(len(name) + len(value) for name, value in self.headers)
        )


@dataclass(frozen=True)
class ConsumedRecord:
    """One record as consumed: where it came from, its bytes and its Kafka timestamp."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: datetime
