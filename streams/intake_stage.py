"""Stage A `intake`: parse, dead-letter what does not parse, resolve the customer.

What parses is re-keyed by customer to `messages.resolved`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas import DeadLetter, channel_label
from streams import metrics, omni_metrics
from streams.intake import RawRecord, intake
from streams.output import OutputRecord
from streams.poison import letter_record
from streams.stage_context import StageContext, json_record, raw_record


class IntakeStage(StageContext):
    """Stage A over `messages.inbound` (keyed by sender)."""

    async def intake_batch(self, events: Iterable[Any]) -> None:
        """Stage A: validate raw records; dead-letter the bad, re-key the good by customer."""
        with self.progress.batch("intake"):
            outputs: list[OutputRecord] = []
            offsets: dict[tuple[str, int], int] = {}
            for event in events:
                record = raw_record(event.message)
                offsets[record.topic, record.partition] = record.offset
                try:
                    outputs.extend(self._admitted(record))
                except MemoryError:
                    raise
                except Exception as exc:  # the record's content: dead-letter it, go on
                    outputs.append(self._poisoned("intake", record, exc))
            metrics.BATCH_SIZE.labels("intake").observe(len(outputs))
            await self.writer.write(outputs, "intake")
        self.progress.finished(offsets)

    def _admitted(self, record: RawRecord) -> list[OutputRecord]:
        """Stage A for one record: its identity links and resolved message, or a dead letter."""
        result = intake(record, self.identity)
        if isinstance(result, DeadLetter):
            metrics.MESSAGES_DEAD_LETTERED.labels(result.reason).inc()
            return [letter_record(self.topics.dlq, result, record.key)]
        outputs: list[OutputRecord] = []
        for link in result.links:
            omni_metrics.IDENTITY_LINKS.labels(channel_label(result.resolved.message.channel)).inc()
            outputs.append(
                OutputRecord(self.topics.identity, link.key, link.model_dump_json().encode())
            )
        resolved = result.resolved
        outputs.append(json_record(self.topics.resolved, resolved.customer_id, resolved))
        return outputs
