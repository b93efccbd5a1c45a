"""Writing the worker's outputs: batches produced with confluent-kafka, acknowledged before ack.

The worker never acknowledges an input before every record it caused is written, and it
writes table state only after that. A failed write is retried with backoff, forever:
the stage stalls rather than lose a case. A record that can never be written (larger
than the record limit, or refused by the broker for good: `RecordsRejectedError`) is
not retried: a dead letter referring to it takes its place, and the batch goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from kafkaio import Record, RecordsRejectedError
from schemas import DeadLetter
from streams import metrics

log = logging.getLogger(__name__)


OutputRecord = Record
"""One record the worker writes (kafkaio's one record type)."""

MAX_RECORD_BYTES = 900_000
"""Default largest record written (key, value, headers): under the 1,000,000 bytes that both
librdkafka's `message.max.bytes` and the broker's (1,048,588) allow, with room for framing."""


class Publisher(Protocol):
    """A producer whose `publish` returns once the broker acknowledged every record."""

    async def publish(self, records: Sequence[OutputRecord]) -> None:
        """Write all records or raise."""


class ReliableWriter:
    """Retries a batch until the broker takes it; identical retries are harmless downstream.

    Records that can never be written are replaced by dead letters on `dead_letter_topic`.
    """

    def __init__(
        self,
        publisher: Publisher,
        first_backoff: float = 0.2,
        max_backoff: float = 10.0,
        *,
        dead_letter_topic: str = "escalator.messages.dlq",
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
        self._publisher = publisher
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self.dead_letter_topic = dead_letter_topic
        self.max_record_bytes = max_record_bytes

    async def write(self, records: Sequence[OutputRecord], stage: str = "output") -> None:
        """Write the batch, retrying with exponential backoff until it is acknowledged."""
        if not records:
            return
        pending = self.bounded(records, stage)
        backoff = self._first_backoff
        while pending:
            try:
                await self._publisher.publish(pending)
            except RecordsRejectedError as exc:
                pending = self._after_rejection(pending, exc, stage)
                if exc.transient is not None:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
            except Exception as exc:  # any other failure means "not written": retry
                log.warning("output write failed, retrying in %.1fs: %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            else:
                return

    def bounded(self, records: Sequence[OutputRecord], stage: str = "output") -> list[OutputRecord]:
        """The records, each over the record limit replaced by the dead letter naming it."""
        return [
            record
            if record.size <= self.max_record_bytes
            else self._refused(record, stage, "record_too_large")
            for record in records
        ]

    def _after_rejection(
        self, pending: list[OutputRecord], exc: RecordsRejectedError, stage: str
    ) -> list[OutputRecord]:
        """What still needs writing once the publisher refused some records for good.

        The refused records become dead letters; the others were acknowledged unless the
        error also reports a transient failure, in which case they are written again.
        """
        letters: dict[int, OutputRecord] = {}
        for index, why in sorted(exc.rejected.items()):
            if not 0 <= index < len(pending):
                continue
            refused = pending[index]
            if refused.topic == self.dead_letter_topic:
                # a dead letter refused in turn: the DLQ is misconfigured; say so, go on
                log.error("a dead letter of %d bytes was refused (%s): dropped", refused.size, why)
                metrics.DEAD_LETTERS.labels(stage, "dead_letter_refused").inc()
                continue
            letters[index] = self._refused(refused, stage, _reason_code(why), why)
        if exc.transient is None:
            return [letters[index] for index in sorted(letters)]
        log.warning("output write partly failed, writing the rest again: %s", exc.transient)
        return [
            letters.get(index, record)
            for index, record in enumerate(pending)
            if index not in exc.rejected or index in letters
        ]

    def _refused(
        self, record: OutputRecord, stage: str, reason: str, why: str | None = None
    ) -> OutputRecord:
        """The dead-letter record replacing a record that can never be written."""
        detail = (
            f"a record of {record.size} bytes for {record.topic} cannot be written "
            f"({why or f'over the {self.max_record_bytes} bytes record limit'})"
        )
        letter = DeadLetter.of(
            stage=stage,
            reason=reason,
            detail=detail,
            topic=record.topic,
            partition=-1 if record.partition is None else record.partition,
            offset=-1,
            key=record.key,
            value=record.value,
            at=datetime.now(UTC),
            max_bytes=self.max_record_bytes,
        )
        log.error("%s: %s; dead-lettered", stage, detail)
        metrics.DEAD_LETTERS.labels(stage, reason).inc()
        key = record.key if letter.original_key_b64 is not None else None
        return OutputRecord(self.dead_letter_topic, key, letter.model_dump_json().encode("utf-8"))


def _reason_code(why: str) -> str:
    """A short reason for a publisher's refusal text (too large, invalid topic, other)."""
    lowered = why.lower()
    if "too large" in lowered or "size" in lowered:
        return "record_too_large"
    if "topic" in lowered:
        return "invalid_topic"
    return "record_rejected"
