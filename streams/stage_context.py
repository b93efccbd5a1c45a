"""What the worker's stages share.

Their state, writer and clock, and the steps every keyed stage takes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from streams.acknowledge import Acknowledger
from streams.clock import Clock, WallClock
from streams.deadlines import DeadlineIndex
from streams.event_time import EventTimeProgress
from streams.generations import current_events, set_aside
from streams.identity import IdentityDirectory
from streams.intake import RawRecord
from streams.output import OutputRecord, ReliableWriter
from streams.poison import MisroutedError, poisoned
from streams.prepared import PreparedFirings
from streams.progress import StageProgress
from streams.state_store import ChangelogState, PartitionNotHeldError, StateT
from streams.threader import ThreadingPolicy
from streams.waited_lock import WaitedLock
from streams.worker_config import RuleSetHolder, WorkerConfig

log = logging.getLogger(__name__)


def raw_record(message: Any) -> RawRecord:
    """A faust message as the stages' plain record type."""
    return RawRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp=datetime.fromtimestamp(message.timestamp, UTC),
    )


NO_KEY = ValueError("the record has no key (this topic is keyed by customer or case id)")


def json_record(topic: str, key: str, model: BaseModel) -> OutputRecord:
    """A contract model as a JSON record keyed by `key`."""
    return OutputRecord(
        topic=topic, key=key.encode("utf-8"), value=model.__pydantic_serializer__.to_json(model)
    )


class StageContext:
    """The state, writer, clock and rules the stages share (see `streams.pipeline`)."""

    def __init__(
        self,
        config: WorkerConfig,
        rules: RuleSetHolder,
        writer: ReliableWriter,
        customers: ChangelogState,
        cases: ChangelogState,
        deadlines: DeadlineIndex,
        identity: IdentityDirectory | None = None,
        threading: ThreadingPolicy | None = None,
        clock: Clock | None = None,
        event_time: EventTimeProgress | None = None,
    ) -> None:
        self.topics = config.topics
        self.identity = identity or IdentityDirectory()
        self.threading = threading or ThreadingPolicy()
        self.rules = rules
        self.writer = writer
        self.customers = customers
        self.cases = cases
        self.deadlines = deadlines
        self.clock = clock or WallClock()
        self.prepare_ahead = timedelta(seconds=config.sla_prepare_seconds)
        self.lateness = timedelta(seconds=config.sla_lateness_seconds)
        self.prepared = PreparedFirings(config.sla_prepare_limit)
        # stage C's agent and the SLA timer both change cases: one at a time; an
        # assignment swaps a partition's cases only between their batches (and likewise
        # stage B's customers), so no batch sees its state replaced halfway through
        self.case_lock = WaitedLock()
        self.customer_lock = asyncio.Lock()
        self.generation: Callable[[], int | None] = lambda: None
        """The consumer's current generation (faust's), to set stale records aside."""
        self.max_record_bytes = config.max_record_bytes
        self.acknowledger = Acknowledger(config.escalate_links)
        self.progress = StageProgress(config.stall_seconds)
        self.progress.watch("intake", [config.topics.inbound])
        self.progress.watch("threading", [config.topics.resolved])
        self.progress.watch("cases", [config.topics.threaded, config.topics.agent_actions])
        self.event_time = event_time
        """Stage C's event time per partition: the timer fires no further (None: wall clock)."""
        self.revoked: set[int] = set()
        """Partitions revoked and not assigned again yet: the timer leaves them alone."""

    def current(self, events: Iterable[Any]) -> list[Any]:
        """The batch's events of the consumer's current generation (see `streams.generations`).

        Called once the batch holds its stage's lock: a rebalance may have completed while
        it waited.
        """
        return current_events(events, self.generation())

    def _poisoned(self, stage: str, record: RawRecord, error: Exception) -> OutputRecord:
        return poisoned(self.topics.dlq, stage, record, error, self.max_record_bytes)

    def _held(
        self,
        stage: str,
        message: Any,
        dirty: Mapping[bytes, tuple[int, StateT]],
        store: ChangelogState,
        model: type[StateT],
        offsets: dict[tuple[str, int], int],
        outputs: list[OutputRecord],
    ) -> tuple[bytes, int, StateT | None] | None:
        """A keyed stage's record: its key, partition and state (this batch's, else stored).

        Notes the record's offset; a record without a key, or one whose key came on another
        partition earlier in the batch (its producer partitions differently), is
        dead-lettered (None). A record of a partition revoked meanwhile is left to the
        partition's next owner (None).
        """
        partition: int = message.partition
        key: bytes | None = message.key
        offsets[message.topic, partition] = message.offset
        if key is None:
            outputs.append(self._poisoned(stage, raw_record(message), NO_KEY))
            return None
        known = dirty.get(key)
        if known is not None and known[0] != partition:
            wrong = MisroutedError(
                f"key {key[:200]!r} came on partition {partition} of {message.topic} but on "
                f"partition {known[0]} in the same batch: produce with the murmur2 partitioner"
            )
            outputs.append(self._poisoned(stage, raw_record(message), wrong))
            return None
        if known is not None:
            return key, partition, known[1]
        try:
            return key, partition, store.load(partition, key, model)
        except PartitionNotHeldError:
            # revoked while this batch was under way: its next owner processes the record,
            # so it is not acknowledged here either (nor is its offset noted as processed)
            set_aside(message)
            offsets.pop((message.topic, partition), None)
            log.info(
                "%s: %s[%d]@%d skipped, partition revoked",
                stage,
                message.topic,
                partition,
                message.offset,
            )
            return None
