"""The faust-streaming worker app: three stages joined by internal repartition topics.

- stage A `intake` consumes `messages.inbound` (keyed by sender): parse, dead-letter what
  does not parse, resolve the customer, re-key by customer to `messages.resolved`;
- stage B `threading` (keyed by customer): deduplicate, decide the case, re-key by case to
  `messages.threaded`;
- stage C `cases` (keyed by case id): append, evaluate rules, route, emit case events.

Each stage takes batches with `take_events`, which acknowledges a batch only after the
loop body returned. The body writes its outputs with confluent-kafka and waits for the
broker's acknowledgement, then writes the changed state to the stage's changelog the same
way (see `ChangelogState`), and only then returns. A crash anywhere therefore replays
input, never skips it; deterministic ids make the replayed outputs harmless, and state
already written makes the replay a recognised duplicate.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from pydantic import BaseModel, ValidationError

from kafkaio.fencing import FencedWriter
from metricsio import render_metrics
from rules import CompiledRuleSet
from schemas import AgentAction, DeadLetter, Topics, channel_label
from streams import metrics, omni_metrics
from streams.actions import apply_action
from streams.case_entry import entry_for
from streams.case_state import CaseState, shrunk, state_dictionary
from streams.casework import CaseUpdate, apply_message, fire_clocks
from streams.clock import Clock, WallClock
from streams.deadlines import DeadlineIndex
from streams.event_time import EventTimeProgress
from streams.gc_pause import gc_paused
from streams.identity import IdentityDirectory
from streams.intake import RawRecord, dead_letter, intake
from streams.output import MAX_RECORD_BYTES, OutputRecord, Publisher, ReliableWriter
from streams.poison import letter_record, poisoned
from streams.positions import source_positions
from streams.prepared import Firing, PreparedFirings
from streams.progress import StageProgress
from streams.records import ResolvedMessage, ThreadedMessage
from streams.sla import count_events
from streams.state_store import ChangelogState, Deadlines, EncodedState, StateCodec, StateT
from streams.threader import (
    CustomerState,
    NotThreaded,
    ThreadingPolicy,
    shrunk_customer,
    thread,
)
from streams.timer import SlaTimer

log = logging.getLogger(__name__)

CRASH_EXIT_CODE = 70
"""Exit status when a batch fails and the worker dies rather than acknowledge it."""

FIRE_SLICE = 200
"""Cases fired per slice: each slice is written while the next one is computed."""

PREPARE_SLICE = 100
"""Cases prepared between two looks at the clock (a deadline that came goes first)."""


@dataclass(frozen=True)
class WorkerConfig:
    """What the composition root decides for a worker."""

    broker_url: str
    topics: Topics
    partitions: int = 4
    app_id: str = "escalator-worker"
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    data_dir: str = "var/worker"
    batch_max: int = 1000
    batch_within_seconds: float = 0.01
    faust_settings: Mapping[str, Any] = field(default_factory=dict)
    sla_tick_seconds: float = 0.2
    """Longest SLA timer sleep: it wakes at the next deadline, and at least this often."""
    sla_lateness_seconds: float = 0.1
    """How long after a deadline the timer fires it, so actions stamped before it land first."""
    sla_prepare_seconds: float = 60.0
    """How far ahead the timer computes firings while idle (0: never ahead)."""
    sla_prepare_limit: int = 20_000
    """Most firings kept computed ahead (bounds their memory: a few KB each)."""
    connection: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    """librdkafka connection settings, for restoring state from the changelogs."""
    stall_seconds: float = 60.0
    """A stage with input waiting and no progress this long makes `/readyz` fail (0: never)."""
    max_record_bytes: int = MAX_RECORD_BYTES
    """Largest record written; a larger one is replaced by a dead letter referring to it."""


class RuleSetHolder:
    """The rule set in use; swapped atomically between two batches by hot reload."""

    def __init__(self, ruleset: CompiledRuleSet) -> None:
        self._ruleset = ruleset
        metrics.RULES_INFO.labels(ruleset.version).set(1)
        log.info("rule set %s in use", ruleset.version)

    @property
    def current(self) -> CompiledRuleSet:
        """The rule set to evaluate the next message with (and its queues and policies)."""
        return self._ruleset

    def replace(self, ruleset: CompiledRuleSet) -> None:
        """Switch to a new rule set (takes effect from the next batch, between two messages)."""
        if ruleset.version == self._ruleset.version:
            return
        metrics.RULES_INFO.labels(self._ruleset.version).set(0)
        self._ruleset = ruleset
        metrics.RULES_INFO.labels(ruleset.version).set(1)
        log.info("rule set %s in use", ruleset.version)


def _raw_record(message: Any) -> RawRecord:
    """A faust message as the stages' plain record type."""
    return RawRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp=datetime.fromtimestamp(message.timestamp, UTC),
    )


_NO_KEY = ValueError("the record has no key (this topic is keyed by customer or case id)")


@dataclass(frozen=True)
class _CaseStep:
    """What stage C made of one record: records to write, and the case's change if any."""

    outputs: list[OutputRecord]
    update: CaseUpdate | None = None
    threaded: ThreadedMessage | None = None


def _json_record(topic: str, key: str, model: BaseModel) -> OutputRecord:
    return OutputRecord(
        topic=topic, key=key.encode("utf-8"), value=model.model_dump_json().encode("utf-8")
    )


class Pipeline:
    """The three stages' logic over their changelog state; `build_app` wires it to topics."""

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
        # stage C's agent and the SLA timer both change cases: one at a time
        self.case_lock = asyncio.Lock()
        self.max_record_bytes = config.max_record_bytes
        self.progress = StageProgress(config.stall_seconds)
        self.progress.watch("intake", [config.topics.inbound])
        self.progress.watch("threading", [config.topics.resolved])
        self.progress.watch("cases", [config.topics.threaded, config.topics.agent_actions])
        self.event_time = event_time
        """Stage C's event time per partition: the timer fires no further (None: wall clock)."""
        self.revoked: set[int] = set()
        """Partitions revoked and not assigned again yet: the timer leaves them alone."""

    async def intake_batch(self, events: Iterable[Any]) -> None:
        """Stage A: validate raw records; dead-letter the bad, re-key the good by customer."""
        with self.progress.batch("intake"):
            outputs: list[OutputRecord] = []
            offsets: dict[tuple[str, int], int] = {}
            for event in events:
                record = _raw_record(event.message)
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
        outputs.append(_json_record(self.topics.resolved, resolved.customer_id, resolved))
        return outputs

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

        Notes the record's offset; a record without a key is dead-lettered (None).
        """
        partition: int = message.partition
        offsets[message.topic, partition] = message.offset
        key: bytes | None = message.key
        if key is None:
            outputs.append(self._poisoned(stage, _raw_record(message), _NO_KEY))
            return None
        known = dirty.get(key)
        return key, partition, known[1] if known else store.load(partition, key, model)

    async def threading_batch(self, events: Iterable[Any]) -> None:
        """Stage B: drop duplicates and decide each message's case."""
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
                        output = _json_record(self.topics.threaded, threaded.case_id, threaded)
                except MemoryError:
                    raise
                except Exception as exc:  # the record's content: dead-letter it, go on
                    outputs.append(self._poisoned("threading", _raw_record(message), exc))
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

    async def cases_batch(self, events: Iterable[Any]) -> None:
        """Stage C: messages and agent actions, in order per case; events and queue records."""
        async with self.case_lock:
            with self.progress.batch("cases"):
                dirty: dict[bytes, tuple[int, CaseState]] = {}
                outputs: list[OutputRecord] = []
                updates: list[tuple[CaseUpdate, ThreadedMessage]] = []
                offsets: dict[tuple[str, int], int] = {}
                ruleset = self.rules.current
                for event in events:
                    message = event.message
                    held = self._held(
                        "cases", message, dirty, self.cases, CaseState, offsets, outputs
                    )
                    if held is None:
                        continue
                    key, partition, state = held
                    try:
                        state, fired = self._fire_before(state, message.timestamp, ruleset)
                        step = self._case_step(state, event, ruleset)
                    except MemoryError:
                        raise
                    except Exception as exc:  # the record's content: dead-letter it, go on
                        outputs.append(self._poisoned("cases", _raw_record(message), exc))
                        continue
                    outputs.extend(fired)
                    outputs.extend(step.outputs)
                    if step.update is None:
                        if fired and state is not None:
                            dirty[key] = (partition, state)
                        continue
                    dirty[key] = (partition, step.update.state)
                    count_events(step.update.events)
                    if step.threaded is not None:
                        updates.append((step.update, step.threaded))
                metrics.BATCH_SIZE.labels("cases").observe(len(outputs))
                await self._commit(outputs, dirty)
            self.progress.finished(offsets)
        now = time.time()
        for update, threaded in updates:
            self._count(update, threaded, now)

    def _fire_before(
        self, state: CaseState | None, record_time: float, ruleset: CompiledRuleSet
    ) -> tuple[CaseState | None, list[OutputRecord]]:
        """Fire the case's deadlines that a record stamped `record_time` comes after.

        The timer fires a deadline once stage C's event time passed it by the lateness; a
        record stamped later than that may reach this batch before the timer runs. Firing
        those deadlines here first puts the two in event-time order whenever they are
        processed, so a replay after a crash writes what the first run wrote.
        """
        outputs: list[OutputRecord] = []
        if state is None:
            return state, outputs
        limit = datetime.fromtimestamp(record_time, UTC) - self.lateness
        while state.next_deadline is not None and state.next_deadline <= limit:
            update = fire_clocks(state, ruleset, state.next_deadline)
            if not update.changed:
                break
            count_events(update.events)
            outputs.extend(self._case_outputs(update))
            state = update.state
        return state, outputs

    def _case_step(
        self, state: CaseState | None, event: Any, ruleset: CompiledRuleSet
    ) -> _CaseStep:
        """Stage C for one record: its outputs, and the case's update when it changed."""
        outputs: list[OutputRecord] = []
        if event.message.topic == self.topics.agent_actions:
            update = self._action_update(state, event, ruleset, outputs)
            if update is None or not update.changed:
                return _CaseStep(outputs)
            outputs.extend(self._case_outputs(update))
            return _CaseStep(outputs, update)
        threaded = ThreadedMessage.model_validate_json(event.message.value)
        moved = entry_for(state, threaded, self.threading)
        if moved is not None:
            return _CaseStep(self._moved(threaded, moved))
        update = apply_message(state, threaded, ruleset)
        if not update.changed:
            metrics.MESSAGES_DUPLICATE.labels(channel_label(threaded.message.channel)).inc()
            return _CaseStep(outputs)
        return _CaseStep(self._case_outputs(update), update, threaded)

    async def fire_due(self, now: datetime) -> None:
        """SLA timer: run the clocks of every case whose next deadline is at or before `now`.

        Each case fires as of its deadline (event time), so when it fires does not change
        what it emits. Cases go in slices of `FIRE_SLICE`: a slice's events and queue
        records are written while the next slice is computed, so writing starts with the
        first slice, not after the last; the states follow in one write once every slice's outputs
        are acknowledged (so they never hold up a later slice's events). The garbage collector
        waits until the events are acknowledged. Cases whose next deadline has also passed by
        then fire again in the same call.

        A partition fires only up to `fire_limit`: the event time stage C has reached on it.
        """
        if self.deadlines.next_deadline() is None:
            return
        async with self.case_lock:
            while due := self.deadlines.pop_due_by(
                lambda partition: self.fire_limit(partition, now)
            ):
                ruleset = self.rules.current
                writes: list[asyncio.Future[None]] = []
                dirty: dict[bytes, tuple[int, EncodedState]] = {}
                with gc_paused():  # no full collection between a deadline and its events
                    for start in range(0, len(due), FIRE_SLICE):
                        part = due[start : start + FIRE_SLICE]
                        outputs, changed = self._fire_slice(part, ruleset)
                        dirty.update(changed)
                        writes.append(asyncio.ensure_future(self._fired(outputs, part)))
                        await asyncio.sleep(0)  # let acknowledgements of earlier slices in
                    await asyncio.gather(*writes)
                await self._save_cases(dirty)

    def fire_limit(self, partition: int, now: datetime) -> datetime | None:
        """Fire this partition's deadlines at or before this instant; None: none of them.

        `now` is the timer's time (the clock less the lateness). A partition not held, or
        revoked, fires nothing; with `event_time`, one still replaying fires no further than
        the records stage C has processed on it (see `streams.event_time`).
        """
        if partition in self.revoked or partition not in self.cases.partitions:
            return None
        return now if self.event_time is None else self.event_time.limit(partition, now)

    async def partitions_revoked(self, partitions: Iterable[int]) -> None:
        """Stop firing these partitions (a rebalance begins): waits for a burst in progress.

        Their prepared firings are dropped; their deadlines and states stay until the
        assignment says whether they come back (see `restore_state` in `build_app`).
        """
        gone = set(partitions)
        async with self.case_lock:
            self.revoked |= gone
            if self.event_time is not None:
                self.event_time.revoke(gone)
            self.prepared.drop_partitions(gone)

    def partitions_assigned(self, partitions: Iterable[int]) -> None:
        """These partitions are held again (their state restored): the timer may fire them."""
        self.revoked -= set(partitions)
        self.prepared.clear()

    async def prepare_upcoming(self, now: datetime) -> None:
        """Compute ahead the firings of cases due within `sla_prepare_seconds` of `now`.

        Reads held states without the case lock: a firing records the state it came from
        and is used only if that state is still the one held (see `streams.prepared`).
        Stops as soon as a deadline falls due, so firing always goes first.
        """
        if self.prepare_ahead <= timedelta(0):
            return
        self.prepared.keep_current(self.deadlines.deadline_of)
        ruleset = self.rules.current
        todo = [
            (partition, key, deadline)
            for partition, key, deadline in self.deadlines.upcoming(
                now + self.prepare_ahead, self.prepared.limit
            )
            if not self.prepared.ready(
                partition, key, self.cases.version(partition, key), ruleset.version, deadline
            )
        ]
        for start in range(0, len(todo), PREPARE_SLICE):
            for partition, key, deadline in todo[start : start + PREPARE_SLICE]:
                if self.prepared.full:
                    return
                if self.fire_limit(partition, now) is not None:
                    firing = self._firing(partition, key, deadline, ruleset)
                    if firing is not None:
                        self.prepared.put(partition, key, firing)
            await asyncio.sleep(0)  # let stage C and acknowledgements in
            if self._fire_first(self.clock.now()):
                return

    def _fire_first(self, now: datetime) -> bool:
        """True when some partition has a deadline it may fire by `now`."""
        for partition in self.cases.partitions:
            upcoming = self.deadlines.partition_next(partition)
            if upcoming is not None and upcoming <= now:
                limit = self.fire_limit(partition, now)
                if limit is not None and upcoming <= limit:
                    return True
        return False

    def _firing(
        self, partition: int, key: bytes, deadline: datetime, ruleset: CompiledRuleSet
    ) -> Firing | None:
        """Fire one held case as of its deadline, into ready-to-write records."""
        version = self.cases.version(partition, key)
        if version is None:
            return None
        state = self.cases.load(partition, key, CaseState)
        assert state is not None
        update = fire_clocks(state, ruleset, deadline)
        if not update.changed:
            return Firing(version, ruleset.version, deadline)
        return Firing(
            version,
            ruleset.version,
            deadline,
            self._case_outputs(update),
            update.events,
            self.cases.encode(update.state),
        )

    def _fire_slice(
        self, due: Sequence[tuple[int, bytes, datetime]], ruleset: CompiledRuleSet
    ) -> tuple[list[OutputRecord], dict[bytes, tuple[int, EncodedState]]]:
        dirty: dict[bytes, tuple[int, EncodedState]] = {}
        outputs: list[OutputRecord] = []
        for partition, key, deadline in due:
            if partition not in self.cases.partitions or partition in self.revoked:
                continue  # moved to another worker meanwhile
            version = self.cases.version(partition, key)
            firing = self.prepared.take(
                partition, key, version, ruleset.version, deadline
            ) or self._firing(partition, key, deadline, ruleset)
            if firing is None:
                continue
            if firing.state is None:  # nothing fell due after all (e.g. its policy was removed)
                self.deadlines.schedule(partition, key, None)  # stop timing it
                continue
            count_events(firing.events)
            dirty[key] = (partition, firing.state)
            outputs.extend(firing.outputs)
        return outputs, dirty

    async def _fired(
        self, outputs: list[OutputRecord], due: Sequence[tuple[int, bytes, datetime]]
    ) -> None:
        await self.writer.write(outputs)
        self._fired_out(due)

    def _fired_out(self, due: Sequence[tuple[int, bytes, datetime]]) -> None:
        """The events of these fired deadlines are acknowledged: observe how late they are."""
        written = self.clock.now()
        for _partition, _key, deadline in due:
            metrics.TIMER_LAG.observe(max(0.0, (written - deadline).total_seconds()))

    async def _commit(
        self,
        outputs: list[OutputRecord],
        dirty: Mapping[bytes, tuple[int, CaseState | EncodedState]],
    ) -> None:
        """Outputs first, then state, each acknowledged; then the deadlines they imply."""
        await self.writer.write(outputs)
        await self._save_cases(dirty)

    async def _save_cases(
        self, dirty: Mapping[bytes, tuple[int, CaseState | EncodedState]]
    ) -> None:
        """Write changed cases to their changelog (acknowledged), then index their deadlines."""
        fitted = {
            key: (partition, self._fitted(state)) for key, (partition, state) in dirty.items()
        }
        await self.cases.save(self.writer, fitted)
        held = self.cases.partitions
        for key, (partition, state) in fitted.items():
            if partition not in held:
                continue  # revoked meanwhile: not saved, the next owner fires it
            self.deadlines.schedule(partition, key, state.deadline)

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

    def _fitted(self, state: CaseState | EncodedState) -> EncodedState:
        """A case state encoded under the record limit (its window shrunk if it must be)."""
        if isinstance(state, EncodedState):
            return state
        encoded = self.cases.encode(state)
        while len(encoded.value) > self.max_record_bytes:
            smaller = shrunk(state)
            if smaller is None:
                break  # the writer sets it aside as a dead letter
            state = smaller
            encoded = self.cases.encode(state)
        return encoded

    def _moved(
        self, threaded: ThreadedMessage, moved: ThreadedMessage | NotThreaded
    ) -> list[OutputRecord]:
        """The message goes to another case (through the threaded topic) or is dropped."""
        if isinstance(moved, NotThreaded):
            omni_metrics.not_threaded(threaded.message.channel, moved)
            return []
        omni_metrics.MESSAGES_MOVED.labels(channel_label(threaded.message.channel)).inc()
        return [_json_record(self.topics.threaded, moved.case_id, moved)]

    def _action_update(
        self,
        state: CaseState | None,
        event: Any,
        ruleset: CompiledRuleSet,
        outputs: list[OutputRecord],
    ) -> CaseUpdate | None:
        """Apply an agent action; a bad one or one for an unknown case is dead-lettered."""
        message = event.message
        try:
            action = AgentAction.model_validate_json(message.value)
        except ValidationError as exc:
            outputs.append(self._dead_action(message, "invalid_action", str(exc)))
            return None
        update = apply_action(state, action, ruleset)
        if update is None:
            outputs.append(
                self._dead_action(message, "unknown_case", f"no case {action.case_id} here")
            )
        return update

    def _dead_action(self, message: Any, reason: str, detail: str) -> OutputRecord:
        metrics.MESSAGES_DEAD_LETTERED.labels(reason).inc()
        letter = dead_letter(_raw_record(message), reason, detail, "cases", self.max_record_bytes)
        return letter_record(self.topics.dlq, letter, message.key)

    def _case_outputs(self, update: CaseUpdate) -> list[OutputRecord]:
        case_id = update.state.case_id
        records = [_json_record(self.topics.case_events, case_id, event) for event in update.events]
        if update.routed is not None:
            records.append(
                _json_record(self.topics.queue(update.routed.queue), case_id, update.routed)
            )
            if update.previous_queue:
                records.append(
                    _json_record(self.topics.queue(update.previous_queue), case_id, update.routed)
                )
        return records

    @staticmethod
    def _count(update: CaseUpdate, threaded: ThreadedMessage, now: float) -> None:
        for event in update.events:
            if event.type == "case.opened":
                metrics.CASES_OPENED.labels(channel_label(threaded.message.channel)).inc()
            elif event.type == "case.routed" and update.routed is not None:
                metrics.CASES_ROUTED.labels(update.routed.queue).inc()
        metrics.INGEST_TO_ROUTED.observe(
            max(0.0, now - threaded.ingested_at.timestamp()), {"case_id": update.state.case_id}
        )


def _highwaters(app: faust.App) -> dict[tuple[str, int], int]:
    """End offsets of the partitions the worker's consumer holds (from its last fetches)."""
    consumer = app.consumer
    ends: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        end = consumer.highwater(tp)
        if end is not None:
            ends[tp.topic, tp.partition] = end
    return ends


def case_store(config: WorkerConfig) -> ChangelogState:
    """Stage C's state: cases held compressed, next deadlines in the changelog headers."""
    return ChangelogState(
        "cases",
        config.topics.state_changelog("cases"),
        config.topics.threaded,
        config.connection,
        codec=StateCodec(state_dictionary()),
        deadline_field="next_deadline",
        fencing=_fencing(config, config.topics.state_changelog("cases")),
    )


def _fencing(config: WorkerConfig, changelog_topic: str) -> FencedWriter:
    """Transactional writes of one changelog, under ids unique to the app and the topic."""
    return FencedWriter(config.connection, f"{config.app_id}.{changelog_topic}")


def rebuild_deadlines(deadlines: DeadlineIndex, held: frozenset[int], restored: Deadlines) -> None:
    """After an assignment: forget partitions no longer held, index the restored ones."""
    deadlines.keep_only(held)
    for partition, entries in restored.items():
        deadlines.replace_partition(partition, entries)


async def _restored_then(
    store: ChangelogState, events: Sequence[Any], batch: Callable[[Sequence[Any]], Awaitable[None]]
) -> None:
    """Run a stateful batch once the state of every partition in it is restored.

    faust resumes streams without waiting for the assignment handler that restores state,
    so each batch checks for itself.
    """
    partitions = {event.message.partition for event in events}
    if not partitions <= store.partitions:
        await asyncio.get_running_loop().run_in_executor(None, store.wait_until_held, partitions)
    await batch(events)


async def _or_die(batch: Awaitable[None]) -> None:
    """Run a batch; on any error end the process at once, acknowledging nothing.

    faust's `take_events` acknowledges the whole batch when the loop body raises, which
    would commit records that were never processed. Dying without acknowledging means the
    batch is read again by the restarted worker (or the partition's next owner).
    """
    try:
        await batch
    except asyncio.CancelledError:
        log.critical("worker stopping in the middle of a batch: exiting without acking it")
        os._exit(CRASH_EXIT_CODE)
    except BaseException:
        log.critical("batch failed: exiting without acknowledging it", exc_info=True)
        os._exit(CRASH_EXIT_CODE)


async def assign_partitions(
    pipeline: Pipeline, config: WorkerConfig, assigned: Iterable[Any]
) -> None:
    """A rebalance assigned these topic partitions: stage C's offsets, then the states.

    Runs during the rebalance; the stages still wait for their state themselves
    (`_restored_then`). Stage C's starting offsets are read first, because its batches
    wait for the state and not for them.
    """
    assigned = list(assigned)
    loop = asyncio.get_running_loop()
    cases, customers = pipeline.cases, pipeline.customers

    def partitions(store: ChangelogState) -> set[int]:
        return {tp.partition for tp in assigned if tp.topic == store.source_topic}

    wanted = partitions(cases)
    event_time = pipeline.event_time
    if event_time is not None:
        sources = [(topic, p) for topic in event_time.topics for p in wanted]
        positions = await loop.run_in_executor(
            None, source_positions, config.connection, config.app_id, sources
        )
        event_time.keep_only(wanted)
        event_time.assign(positions)
        log.info(
            "stage C replays %s before the SLA timer fires them",
            {f"{t}[{p}]": o.end_offset - o.next_offset for (t, p), o in positions.items()},
        )
    await loop.run_in_executor(None, customers.assign, partitions(customers))
    restored = await loop.run_in_executor(None, cases.assign, wanted)
    rebuild_deadlines(pipeline.deadlines, cases.partitions, restored)
    pipeline.partitions_assigned(cases.partitions)


async def release_partitions(pipeline: Pipeline, revoked: Iterable[Any]) -> None:
    """A rebalance revokes these topic partitions: stop timing them, note their changelogs.

    Waits for a burst the timer is writing; then nothing of these partitions fires. Their
    states stay, kept on return only if nobody wrote their changelog meanwhile.
    """
    revoked = list(revoked)
    case_topics = (pipeline.topics.threaded, pipeline.topics.agent_actions)
    await pipeline.partitions_revoked({tp.partition for tp in revoked if tp.topic in case_topics})
    loop = asyncio.get_running_loop()
    for store in (pipeline.cases, pipeline.customers):
        gone = {tp.partition for tp in revoked if tp.topic == store.source_topic}
        await loop.run_in_executor(None, store.release, gone)


def _highwater(app: faust.App, topic: str, partition: int) -> int | None:
    """The end of a partition as the worker's consumer last saw it (None: not known)."""
    try:
        found = app.consumer.highwater(faust.types.TP(topic, partition))
    except Exception:  # not assigned (any more), or the consumer is not started
        return None
    return found if isinstance(found, int) else None


def build_app(
    config: WorkerConfig,
    rules: RuleSetHolder,
    publisher: Publisher,
    identity: IdentityDirectory | None = None,
    threading: ThreadingPolicy | None = None,
    clock: Clock | None = None,
) -> faust.App:
    """Create the faust app with its topics, agents, state and `/metrics` page.

    `clock` drives the SLA timer (the wall clock unless given).
    """
    settings: dict[str, Any] = {
        "broker": config.broker_url,
        "store": "memory://",
        "datadir": config.data_dir,
        "topic_partitions": config.partitions,
        "consumer_auto_offset_reset": "earliest",
        "key_serializer": "raw",
        "value_serializer": "raw",
        "web_port": config.web_port,
        "web_host": config.web_host,
        "web_bind": config.web_host,
        "producer_acks": -1,
        "broker_commit_every": 1000,
        "broker_commit_interval": 1.0,
        "stream_buffer_maxsize": 8192,
        # a crashed worker's partitions move to the others after 10 s, not aiokafka's 60 s
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 3.0,
    }
    settings.update(config.faust_settings)
    app = faust.App(config.app_id, **settings)
    topics = config.topics

    def source(*names: str) -> Any:
        return app.topic(
            *names,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=config.partitions,
        )

    customers = ChangelogState(
        "customers",
        topics.state_changelog("customers"),
        topics.resolved,
        config.connection,
        fencing=_fencing(config, topics.state_changelog("customers")),
    )
    cases = case_store(config)
    deadlines = DeadlineIndex()
    clock = clock or WallClock()
    event_time = EventTimeProgress(
        (topics.threaded, topics.agent_actions),
        config.sla_lateness_seconds,
        lambda topic, partition: _highwater(app, topic, partition),
    )
    pipeline = Pipeline(
        config,
        rules,
        ReliableWriter(
            publisher, dead_letter_topic=topics.dlq, max_record_bytes=config.max_record_bytes
        ),
        customers,
        cases,
        deadlines,
        identity,
        threading,
        clock,
        event_time,
    )

    @app.on_partitions_assigned.connect
    async def restore_state(_app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await assign_partitions(pipeline, config, args[0] if args else kwargs["assigned"])

    @app.on_partitions_revoked.connect
    async def stop_timing(_app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await release_partitions(pipeline, args[0] if args else kwargs["revoked"])

    batch, within = config.batch_max, config.batch_within_seconds

    @app.agent(source(topics.inbound), name="intake")
    async def intake_agent(stream: Any) -> None:
        async for events in stream.take_events(batch, within=within):
            await _or_die(pipeline.intake_batch(events))

    @app.agent(source(topics.resolved), name="threading")
    async def threading_agent(stream: Any) -> None:
        async for events in stream.take_events(batch, within=within):
            await _or_die(_restored_then(customers, events, pipeline.threading_batch))

    @app.agent(source(topics.threaded, topics.agent_actions), name="cases")
    async def cases_agent(stream: Any) -> None:
        async for events in stream.take_events(batch, within=within):
            await _or_die(_restored_then(cases, events, pipeline.cases_batch))
            event_time.processed(event.message for event in events)

    timer = SlaTimer(
        lambda now: _or_die(pipeline.fire_due(now)),
        deadlines.next_deadline,
        clock,
        config.sla_tick_seconds,
        prepare=lambda now: _or_die(pipeline.prepare_upcoming(now)),
        lateness_seconds=config.sla_lateness_seconds,
    )

    async def sla_timer() -> None:
        await timer.run()

    app.task(sla_timer)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # OpenMetrics (with exemplars) when the scraper asks for it, else the text format.
        # aiohttp refuses a charset inside `content_type`; the header carries it whole.
        body, content_type = render_metrics(request.headers.get("Accept"))
        return web.bytes(body, headers={"Content-Type": content_type})

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    pipeline.progress.use_highwaters(lambda: _highwaters(app))

    @app.on_partitions_revoked.connect
    async def forget_progress(_app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        pipeline.progress.forget_offsets()  # offsets known again after each stage's next batch

    for stage in ("intake", "threading", "cases"):
        metrics.STAGE_STALLED.labels(stage).set_function(
            functools.partial(pipeline.progress.stalled_for, stage)
        )

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        assigned = app.consumer.assignment() if app.consumer else set()
        ready = bool(assigned) and not app.rebalancing
        stalled = pipeline.progress.stalled()
        body: dict[str, Any] = {
            "status": "ready" if ready else "starting",
            "partitions": len(assigned),
        }
        if stalled:
            body["status"] = "stalled"
            body["reason"] = "; ".join(
                f"stage {stage} made no progress for {seconds:.0f}s with input waiting"
                for stage, seconds in sorted(stalled.items())
            )
        return web.json(body, status=200 if ready and not stalled else 503)

    return app
