"""Writing the worker's outputs: batches produced with confluent-kafka, acknowledged before ack.

The worker never acknowledges an input before every record it caused is written, and it
writes table state only after that. A failed write is retried with backoff, forever:
the stage stalls rather than lose a case.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from kafkaio import Record

log = logging.getLogger(__name__)


OutputRecord = Record
"""One record the worker writes (kafkaio's one record type)."""


class Publisher(Protocol):
    """A producer whose `publish` returns once the broker acknowledged every record."""

    async def publish(self, records: Sequence[OutputRecord]) -> None:
        """Write all records or raise."""


class ReliableWriter:
    """Retries a batch until the broker takes it; identical retries are harmless downstream."""

    def __init__(
        self, publisher: Publisher, first_backoff: float = 0.2, max_backoff: float = 10.0
    ) -> None:
        self._publisher = publisher
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff

    async def write(self, records: Sequence[OutputRecord]) -> None:
        """Write the batch, retrying with exponential backoff until it is acknowledged."""
        if not records:
            return
        backoff = self._first_backoff
        while True:
            try:
                await self._publisher.publish(records)
            except Exception as exc:  # any failure means "not written": retry
                log.warning("output write failed, retrying in %.1fs: %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            else:
                return
