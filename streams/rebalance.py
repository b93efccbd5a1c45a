"""Stage state across rebalances.

The changelog stores, restoring assigned partitions and releasing revoked ones.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kafkaio.fencing import FencedWriter
from metricsio.gc_tuning import freeze_long_lived
from metricsio.malloc_release import release_free_memory
from schemas import Topics
from streams.case_state import state_dictionary
from streams.deadlines import DeadlineIndex
from streams.pipeline import Pipeline
from streams.positions import source_positions
from streams.state_store import ChangelogState, Deadlines, StateCodec
from streams.worker_config import WorkerConfig

log = logging.getLogger(__name__)


def case_store(config: WorkerConfig) -> ChangelogState:
    """Stage C's state: cases held compressed, next deadlines in the changelog headers."""
    return ChangelogState(
        "cases",
        config.topics.state_changelog("cases"),
        config.topics.threaded,
        config.connection,
        codec=StateCodec(state_dictionary()),
        deadline_field="next_deadline",
        fencing=fenced_writer(config, config.topics.state_changelog("cases")),
    )


def customer_store(config: WorkerConfig) -> ChangelogState:
    """Stage B's state: each customer's recent message keys and open cases."""
    topics = config.topics
    return ChangelogState(
        "customers",
        topics.state_changelog("customers"),
        topics.resolved,
        config.connection,
        fencing=fenced_writer(config, topics.state_changelog("customers")),
    )


def fenced_writer(config: WorkerConfig, changelog_topic: str) -> FencedWriter:
    """Transactional writes of one changelog, under ids unique to the app and the topic."""
    return FencedWriter(config.connection, f"{config.app_id}.{changelog_topic}")


def rebuild_deadlines(deadlines: DeadlineIndex, held: frozenset[int], restored: Deadlines) -> None:
    """After an assignment: forget partitions no longer held, index the restored ones."""
    deadlines.keep_only(held)
    for partition, entries in restored.items():
        deadlines.replace_partition(partition, entries)


RESTORE_WAIT_SECONDS = 300.0
"""Longest a batch waits for its partitions' assignment and restore before the worker fails."""

_READY_POLL_SECONDS = 0.02


async def restored_then(
    store: ChangelogState,
    events: Sequence[Any],
    batch: Callable[[Sequence[Any]], Awaitable[None]],
    current: Callable[[Sequence[Any]], list[Any]] = list,
) -> list[Any]:
    """Run a stateful batch once every partition in it is assigned and its state restored.

    faust resumes streams without waiting for the assignment handler that restores state,
    so each batch checks for itself (`ChangelogState.ready`). It waits on the event loop,
    not in a thread, so a worker stopping meanwhile cancels the wait. While it waits,
    `current` (the stages' generation filter) sets aside what a new rebalance made stale:
    a batch of the previous generation never waits for a partition that went elsewhere.
    Returns the events the batch ran with.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + RESTORE_WAIT_SECONDS
    while True:
        events = current(events)
        partitions = {event.message.partition for event in events}
        if store.ready(partitions):
            break
        if loop.time() > give_up:
            raise TimeoutError(f"{store.name}: state of {sorted(partitions)} not restored")
        await asyncio.sleep(_READY_POLL_SECONDS)
    await batch(events)
    return events


@dataclass(frozen=True)
class Fetching:
    """Holding partitions back from the consumer's fetches, and letting them go."""

    hold_back: Callable[[set[Any]], None]
    let_go: Callable[[set[Any]], None]


class MovedRestore:
    """The restore of the partitions an assignment moved to this worker, after its handler.

    Meanwhile the consumer fetches nothing of those partitions (`Fetching`), and the ones
    the worker kept go on: their batches run and their deadlines fire. A revocation stops
    it first (`stop`): what was half read is dropped, and the next assignment restores
    the partitions again.
    """

    def __init__(self, guard: Callable[[Awaitable[None]], Awaitable[None]] | None = None) -> None:
        """`guard` runs around each restore (the worker's: a failed restore ends the process,
        which a partition held back for ever would otherwise hide)."""
        self._guard = guard
        self._task: asyncio.Task[None] | None = None
        self._cancelled = threading.Event()

    @property
    def running(self) -> bool:
        """Whether a restore is under way."""
        return self._task is not None and not self._task.done()

    def start(self, restore: Callable[[threading.Event], Awaitable[None]]) -> None:
        """Run `restore(cancelled)` in the background (one at a time: `stop` first)."""
        if self.running:
            raise RuntimeError("a restore is under way: stop it first")
        cancelled = self._cancelled = threading.Event()
        work = restore(cancelled)
        guarded = self._guard(work) if self._guard is not None else work
        self._task = asyncio.get_running_loop().create_task(_stopped_with(guarded, cancelled))

    async def stop(self) -> None:
        """Stop the restore under way, if any, and wait until it has (within about a second:
        the changelog read checks between fetches)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._cancelled.set()
        await task


async def _stopped_with(work: Awaitable[None], cancelled: threading.Event) -> None:
    """Await `work`; if the task is cancelled (the worker stops), its thread stops too."""
    try:
        await work
    except asyncio.CancelledError:
        cancelled.set()
        raise


async def assign_partitions(
    pipeline: Pipeline,
    config: WorkerConfig,
    assigned: Iterable[Any],
    moved: tuple[MovedRestore, Fetching] | None = None,
) -> None:
    """A rebalance assigned these topic partitions: stage C's offsets, then the states.

    Runs during the rebalance. Stage C's starting offsets are read first, because its
    batches wait for the state and not for them. The partitions this worker kept stay as
    they are (unless written elsewhere meanwhile); the moved ones are restored from their
    changelogs. With `moved`, that restore runs after the handler and the moved partitions
    are not fetched until their state is held, so the kept ones go on; without, it runs
    here, and every partition waits for it. Once restored, what is held is frozen out of
    the garbage collector's later walks (`metricsio.gc_tuning`), and the pages the
    restore freed go back to the system (`metricsio.malloc_release`).
    """
    assigned = list(assigned)
    if moved is not None:
        await moved[0].stop()  # the revocation stopped it; this only makes sure
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
    # between batches: a batch never sees its partitions' state replaced halfway through
    async with pipeline.customer_lock:
        missing_customers = await loop.run_in_executor(None, customers.keep, partitions(customers))
    async with pipeline.case_lock:
        missing_cases = await loop.run_in_executor(None, cases.keep, wanted)
        rebuild_deadlines(pipeline.deadlines, cases.partitions, {})
    pipeline.partitions_assigned(cases.partitions)
    inputs = {customers: (customers.source_topic,), cases: stage_c_inputs(pipeline.topics)}
    restores = [
        _Moved(
            store,
            missing,
            {tp for tp in assigned if tp.topic in inputs[store] and tp.partition in missing},
        )
        for store, missing in ((customers, missing_customers), (cases, missing_cases))
        if missing
    ]
    if moved is None:
        await _restore_moved(pipeline, restores, None, threading.Event())
        return
    restore, fetching = moved
    held_back = {tp for step in restores for tp in step.inputs}
    fetching.hold_back(held_back)
    # the consumer held back every stateful partition on the assignment: the kept ones go
    fetching.let_go(
        {tp for tp in assigned if tp.topic in stateful_inputs(pipeline.topics)} - held_back
    )
    pipeline.progress.restoring((tp.topic, tp.partition) for tp in held_back)
    restore.start(functools.partial(_restore_moved, pipeline, restores, fetching))


def stage_c_inputs(topics: Topics) -> tuple[str, ...]:
    """The topics stage C reads, whose partitions share the cases' state."""
    return (topics.threaded, topics.agent_actions)


def stateful_inputs(topics: Topics) -> tuple[str, ...]:
    """The topics of the stages with state (B and C): their batches wait for it."""
    return (topics.resolved, *stage_c_inputs(topics))


@dataclass(frozen=True)
class _Moved:
    """A stage's partitions to restore, and the input partitions that wait for them."""

    store: ChangelogState
    partitions: list[int]
    inputs: set[Any]


async def _restore_moved(
    pipeline: Pipeline,
    moved: Sequence[_Moved],
    fetching: Fetching | None,
    cancelled: threading.Event,
) -> None:
    """Restore each stage's moved partitions, then let their inputs be fetched."""
    loop = asyncio.get_running_loop()
    for step in moved:
        store = step.store
        restored = await loop.run_in_executor(None, store.restore, step.partitions, cancelled)
        if restored is None:  # stopped: nothing held
            return
        # held now, even if a revocation comes meanwhile: its deadlines are indexed, so the
        # partition is complete if it is kept on the next assignment
        if store is pipeline.cases:
            async with pipeline.case_lock:
                rebuild_deadlines(pipeline.deadlines, store.partitions, restored)
            pipeline.partitions_assigned(store.partitions)
        pipeline.progress.restored((tp.topic, tp.partition) for tp in step.inputs)
        if fetching is not None:
            fetching.let_go(step.inputs)
    freeze_long_lived()  # the restored states and deadlines live long: out of later collections
    release_free_memory()  # the restore's transient pages back to the system (glibc)
    pipeline.progress.restart_waits()  # a long restore is not a stall of the new partitions


async def release_partitions(
    pipeline: Pipeline, revoked: Iterable[Any], restore: MovedRestore | None = None
) -> None:
    """A rebalance revokes these topic partitions: stop timing them, note their changelogs.

    Waits for a burst the timer is writing; then nothing of these partitions fires. Their
    states stay, kept on return only if nobody wrote their changelog meanwhile.
    """
    revoked = list(revoked)
    if restore is not None:
        await restore.stop()  # a moved partition half restored is restored again if it returns
    case_topics = stage_c_inputs(pipeline.topics)
    await pipeline.partitions_revoked({tp.partition for tp in revoked if tp.topic in case_topics})
    loop = asyncio.get_running_loop()
    for store in (pipeline.cases, pipeline.customers):
        gone = {tp.partition for tp in revoked if tp.topic == store.source_topic}
        await loop.run_in_executor(None, store.release, gone)
