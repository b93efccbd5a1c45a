"""Stage B `threading` (keyed by customer): deduplicate, decide the case, re-key by case."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas import channel_label
from streams import metrics, omni_metrics
from streams.output import OutputRecord
from streams.records import ResolvedMessage
from streams.stage_context import StageContext, json_record, raw_record
from streams.state_store import EncodedState
from streams.threader import (
    CustomerState,
    NotThreaded,
    shrunk_customer,
    thread,
)


class ThreadingStage(StageContext):
    """Stage B over `messages.resolved`, with the customers' changelog state."""

    async def threading_batch(self, events: Iterable[Any]) -> None:
        """Stage B: drop duplicates and decide each message's case."""
        async with self.customer_lock:
            await self._threading_batch(self.current(events))

    async def _threading_batch(self, events: Iterable[Any]) -> None:
        with self.progress.batch("threading"):
            dirty: dict[bytes, tuple[int, CustomerState]] = {}
            outputs: list[OutputRecord] = []
            offsets: dict[tuple[str, int], int] = {}
            wall = self.clock.now()
            for event in events:
                message = event.message
                held = self._held(
                    "threading", message, dirty, self.customers, CustomerState, offsets, outputs
                )
                if held is None:
                    continue
                key, partition, state = held
                try:
                    resolved = ResolvedMessage.model_validate_json(message.value)
                    new_state, threaded = thread(state, resolved, self.threading, wall)
                    if not isinstance(threaded, NotThreaded):
                        output = json_record(self.topics.threaded, threaded.case_id, threaded)
                except MemoryError:
                    raise
                except Exception as exc:  # the record's content: dead-letter it, go on
                    outputs.append(self._poisoned("threading", raw_record(message), exc))
                    continue
                channel = resolved.message.channel
                if isinstance(threaded, NotThreaded):
                    if threaded.reason == "duplicate":
                        metrics.MESSAGES_DUPLICATE.labels(channel_label(channel)).inc()
                        continue
                    omni_metrics.not_threaded(channel, threaded)
                    dirty[key] = (partition, new_state)
                    continue
                metrics.MESSAGES_INGESTED.labels(channel_label(channel)).inc()
                dirty[key] = (partition, new_state)
                outputs.append(output)
            metrics.BATCH_SIZE.labels("threading").observe(len(outputs))
            await self.writer.write(outputs, "threading")
            await self.customers.save(
                self.writer,
                {
                    key: (partition, self._fitted_customer(state))
                    for key, (partition, state) in dirty.items()
                },
            )
        self.progress.finished(offsets)

    def _fitted_customer(self, state: CustomerState) -> EncodedState:
        """A customer state encoded under the record limit (forgetting its oldest if it must)."""
        encoded = self.customers.encode(state)
        while len(encoded.value) > self.max_record_bytes:
            smaller = shrunk_customer(state)
            if smaller is None:
                break  # the writer sets it aside as a dead letter
            state = smaller
            encoded = self.customers.encode(state)
        return encoded
